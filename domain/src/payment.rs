//! The payment aggregate (stream `payment-<payment_id>`): what the payment provider
//! did with one charge. The provider call itself happens in the application layer;
//! this records its outcome and refuses to record a charge or a refund twice.

use serde::{Deserialize, Serialize};

use crate::{Aggregate, DomainError, Money, PaymentId, ReservationId, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Captured,
    Declined,
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommand {
    RecordCapture {
        payment_id: PaymentId,
        reservation_id: ReservationId,
        amount: Money,
        provider_reference: String,
    },
    RecordDecline {
        payment_id: PaymentId,
        reservation_id: ReservationId,
        amount: Money,
        reason: String,
    },
    RecordRefund {
        provider_reference: String,
    },
    /// Record part of a captured payment given back at the provider (in its
    /// dashboard): `refunded` in total so far, less than the payment. The purchase
    /// stands.
    RecordPartialRefund {
        refunded: Money,
        provider_reference: String,
    },
    /// Record that the cardholder disputed the payment with their bank.
    RecordDispute {
        dispute_reference: String,
        reason: String,
        amount: Money,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    pub amount: Money,
    pub provider_reference: String,
    pub captured_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    pub amount: Money,
    pub reason: String,
    pub declined_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    pub amount: Money,
    pub provider_reference: String,
    pub refunded_at: Timestamp,
}

/// Part of a payment given back at the provider; the purchase stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPartiallyRefunded {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    /// Given back in total so far.
    pub refunded: Money,
    pub provider_reference: String,
    pub refunded_at: Timestamp,
}

/// The cardholder disputed the payment (a chargeback): the provider takes the amount
/// back unless the dispute is won, which is answered at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDisputed {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    pub dispute_reference: String,
    pub reason: String,
    pub amount: Money,
    pub disputed_at: Timestamp,
}

/// The events of a payment's stream. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    PaymentCaptured(PaymentCaptured),
    PaymentDeclined(PaymentDeclined),
    PaymentRefunded(PaymentRefunded),
    PaymentPartiallyRefunded(PaymentPartiallyRefunded),
    PaymentDisputed(PaymentDisputed),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    pub amount: Money,
    pub status: PaymentStatus,
    pub provider_reference: Option<String>,
    /// Given back at the provider so far, while less than the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partially_refunded: Option<Money>,
    /// The provider's references of the disputes of this payment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputes: Vec<String>,
}

/// The payment aggregate's state: `None` until an outcome is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment(pub Option<PaymentDetails>);

impl Aggregate for Payment {
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    const KIND: &'static str = "payment";
    /// 2: `PaymentDetails` gained `partially_refunded` and `disputes`.
    const SNAPSHOT_VERSION: u32 = 2;

    fn decide(
        &self,
        command: PaymentCommand,
        now: Timestamp,
    ) -> Result<Vec<PaymentEvent>, DomainError> {
        match (&self.0, command) {
            (
                None,
                PaymentCommand::RecordCapture {
                    payment_id,
                    reservation_id,
                    amount,
                    provider_reference,
                },
            ) => Ok(vec![PaymentEvent::PaymentCaptured(PaymentCaptured {
                payment_id,
                reservation_id,
                amount,
                provider_reference,
                captured_at: now,
            })]),
            (
                None,
                PaymentCommand::RecordDecline {
                    payment_id,
                    reservation_id,
                    amount,
                    reason,
                },
            ) => Ok(vec![PaymentEvent::PaymentDeclined(PaymentDeclined {
                payment_id,
                reservation_id,
                amount,
                reason: reason.chars().take(200).collect(),
                declined_at: now,
            })]),
            (None, PaymentCommand::RecordRefund { .. }) => Err(DomainError::PaymentNotFound),
            (
                Some(_),
                PaymentCommand::RecordCapture { .. } | PaymentCommand::RecordDecline { .. },
            ) => Err(DomainError::PaymentAlreadyRecorded),
            (Some(p), PaymentCommand::RecordRefund { provider_reference }) => match p.status {
                PaymentStatus::Captured => {
                    Ok(vec![PaymentEvent::PaymentRefunded(PaymentRefunded {
                        payment_id: p.payment_id,
                        reservation_id: p.reservation_id,
                        amount: p.amount,
                        provider_reference,
                        refunded_at: now,
                    })])
                }
                PaymentStatus::Refunded => Err(DomainError::AlreadyRefunded),
                PaymentStatus::Declined => Err(DomainError::NotRefundable),
            },
            (
                None,
                PaymentCommand::RecordPartialRefund { .. } | PaymentCommand::RecordDispute { .. },
            ) => Err(DomainError::PaymentNotFound),
            (
                Some(p),
                PaymentCommand::RecordPartialRefund {
                    refunded,
                    provider_reference,
                },
            ) => match p.status {
                PaymentStatus::Captured => {
                    if refunded.currency != p.amount.currency
                        || refunded.amount_minor <= 0
                        || refunded.amount_minor >= p.amount.amount_minor
                    {
                        return Err(DomainError::NotRefundable);
                    }
                    let before = p.partially_refunded.map_or(0, |m| m.amount_minor);
                    if refunded.amount_minor <= before {
                        return Ok(vec![]);
                    }
                    Ok(vec![PaymentEvent::PaymentPartiallyRefunded(
                        PaymentPartiallyRefunded {
                            payment_id: p.payment_id,
                            reservation_id: p.reservation_id,
                            refunded,
                            provider_reference: provider_reference.chars().take(200).collect(),
                            refunded_at: now,
                        },
                    )])
                }
                PaymentStatus::Refunded => Err(DomainError::AlreadyRefunded),
                PaymentStatus::Declined => Err(DomainError::NotRefundable),
            },
            (
                Some(p),
                PaymentCommand::RecordDispute {
                    dispute_reference,
                    reason,
                    amount,
                },
            ) => {
                if p.status == PaymentStatus::Declined {
                    return Err(DomainError::NotRefundable);
                }
                if p.disputes.contains(&dispute_reference) {
                    return Ok(vec![]);
                }
                Ok(vec![PaymentEvent::PaymentDisputed(PaymentDisputed {
                    payment_id: p.payment_id,
                    reservation_id: p.reservation_id,
                    dispute_reference: dispute_reference.chars().take(200).collect(),
                    reason: reason.chars().take(200).collect(),
                    amount,
                    disputed_at: now,
                })])
            }
        }
    }

    fn evolve(self, event: &PaymentEvent) -> Self {
        match (self.0, event) {
            (_, PaymentEvent::PaymentCaptured(e)) => Payment(Some(PaymentDetails {
                payment_id: e.payment_id,
                reservation_id: e.reservation_id,
                amount: e.amount,
                status: PaymentStatus::Captured,
                provider_reference: Some(e.provider_reference.clone()),
                partially_refunded: None,
                disputes: Vec::new(),
            })),
            (_, PaymentEvent::PaymentDeclined(e)) => Payment(Some(PaymentDetails {
                payment_id: e.payment_id,
                reservation_id: e.reservation_id,
                amount: e.amount,
                status: PaymentStatus::Declined,
                provider_reference: None,
                partially_refunded: None,
                disputes: Vec::new(),
            })),
            (Some(mut p), PaymentEvent::PaymentRefunded(_)) => {
                p.status = PaymentStatus::Refunded;
                Payment(Some(p))
            }
            (Some(mut p), PaymentEvent::PaymentPartiallyRefunded(e)) => {
                p.partially_refunded = Some(e.refunded);
                Payment(Some(p))
            }
            (Some(mut p), PaymentEvent::PaymentDisputed(e)) => {
                p.disputes.push(e.dispute_reference.clone());
                Payment(Some(p))
            }
            (
                None,
                PaymentEvent::PaymentRefunded(_)
                | PaymentEvent::PaymentPartiallyRefunded(_)
                | PaymentEvent::PaymentDisputed(_),
            ) => Payment(None),
        }
    }
}

/// The stream id of a payment.
pub fn payment_stream(payment_id: PaymentId) -> String {
    format!("payment-{payment_id}")
}
