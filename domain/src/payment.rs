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

/// The events of a payment's stream. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    PaymentCaptured(PaymentCaptured),
    PaymentDeclined(PaymentDeclined),
    PaymentRefunded(PaymentRefunded),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    pub payment_id: PaymentId,
    pub reservation_id: ReservationId,
    pub amount: Money,
    pub status: PaymentStatus,
    pub provider_reference: Option<String>,
}

/// The payment aggregate's state: `None` until an outcome is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment(pub Option<PaymentDetails>);

impl Aggregate for Payment {
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    const KIND: &'static str = "payment";
    const SNAPSHOT_VERSION: u32 = 1;

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
            })),
            (_, PaymentEvent::PaymentDeclined(e)) => Payment(Some(PaymentDetails {
                payment_id: e.payment_id,
                reservation_id: e.reservation_id,
                amount: e.amount,
                status: PaymentStatus::Declined,
                provider_reference: None,
            })),
            (Some(mut p), PaymentEvent::PaymentRefunded(_)) => {
                p.status = PaymentStatus::Refunded;
                Payment(Some(p))
            }
            (None, PaymentEvent::PaymentRefunded(_)) => Payment(None),
        }
    }
}

/// The stream id of a payment.
pub fn payment_stream(payment_id: PaymentId) -> String {
    format!("payment-{payment_id}")
}
