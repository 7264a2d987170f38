//! The reservation aggregate (stream `reservation-<reservation_id>`): one purchase
//! process, the saga that ties a hold, a payment and the confirmation together.
//!
//! ```text
//! held ──payment requested──> payment pending ──captured──> paid ──> confirmed
//!  │                               │   ↺ action required       │          │
//!  ├─ expired (hold ran out)        └─ payment declined        │          └─ cancelled + refunded
//!  └─ cancelled (by the customer)                              └─ refunded (seats lost while paying)
//! ```
//!
//! A payment the provider cannot finish without the customer (3-D Secure) stays
//! pending, with the provider's reference recorded (`PaymentActionRequired`), until the
//! provider reports its outcome or the hold runs out.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    Aggregate, CustomerId, DomainError, Money, PaymentId, Quantity, ReservationId, SectionName,
    ShowId, TicketId, Timestamp,
};

/// Where a purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    PaymentPending,
    Paid,
    Confirmed,
    Expired,
    Cancelled,
    PaymentDeclined,
    Refunded,
}

impl ReservationStatus {
    /// Whether the purchase has ended and no command can move it on.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Expired | Self::Cancelled | Self::PaymentDeclined | Self::Refunded
        )
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Held => "held",
            Self::PaymentPending => "payment pending",
            Self::Paid => "paid",
            Self::Confirmed => "confirmed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::PaymentDeclined => "payment declined",
            Self::Refunded => "refunded",
        };
        f.write_str(name)
    }
}

/// Why money went back to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The customer cancelled a confirmed purchase.
    CancelledByCustomer,
    /// The organizer (or an admin) refunded the payment.
    RefundedByOrganizer,
    /// The show was cancelled.
    ShowCancelled,
    /// The payment was captured after the hold expired and its seats were gone.
    SeatsUnavailable,
    /// The payment was refunded in full at the provider (in its dashboard), outside
    /// this system; the provider reported it.
    RefundedAtProvider,
}

/// Seats of a reservation held (or sold) in one bucket of its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketShare {
    pub bucket: u32,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationCommand {
    Place {
        reservation_id: ReservationId,
        show_id: ShowId,
        section: SectionName,
        customer_id: CustomerId,
        quantity: Quantity,
        unit_price: Money,
        expires_at: Timestamp,
        /// Where the seats are held, when not all in the section's first bucket.
        buckets: Vec<BucketShare>,
    },
    /// Record that a payment is about to be charged, before the provider is called, so
    /// that a crash mid-payment leaves a trace to finish from.
    RequestPayment {
        payment_id: PaymentId,
    },
    RecordPaymentCaptured {
        payment_id: PaymentId,
    },
    RecordPaymentDeclined {
        payment_id: PaymentId,
        reason: String,
    },
    /// Record that the provider waits for the customer (3-D Secure) to finish the
    /// payment `payment_id`, known to it as `provider_reference`.
    RecordPaymentActionRequired {
        payment_id: PaymentId,
        provider_reference: String,
    },
    Confirm,
    /// Record that the hold ran out before payment.
    Expire,
    /// Cancel by the customer: a held reservation is simply cancelled; a confirmed
    /// one only together with the refund that the caller has already obtained.
    Cancel {
        refund: Option<RefundReason>,
    },
    /// Refund a paid or confirmed purchase (the caller has obtained the refund).
    Refund {
        reason: RefundReason,
    },
    /// Issue a confirmed purchase's tickets, one per seat (their streams are started
    /// by the caller in the same append). Once: a purchase's tickets are issued once.
    IssueTickets {
        tickets: Vec<TicketId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPlaced {
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub customer_id: CustomerId,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
    pub expires_at: Timestamp,
    pub placed_at: Timestamp,
    /// The buckets of the section that hold the seats. Absent (empty) when they are all
    /// in the first bucket, as in every reservation placed before buckets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<BucketShare>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub reservation_id: ReservationId,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub requested_at: Timestamp,
}

/// The provider waits for the customer to authenticate the payment (3-D Secure). The
/// payment stays pending; the hold keeps its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentActionRequired {
    pub reservation_id: ReservationId,
    pub payment_id: PaymentId,
    /// The provider's id of the payment (a Stripe PaymentIntent `pi_...`).
    pub provider_reference: String,
    pub required_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPaid {
    pub reservation_id: ReservationId,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub paid_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationConfirmed {
    pub reservation_id: ReservationId,
    pub confirmed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationExpired {
    pub reservation_id: ReservationId,
    pub expired_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationCancelled {
    pub reservation_id: ReservationId,
    pub cancelled_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPaymentDeclined {
    pub reservation_id: ReservationId,
    pub payment_id: PaymentId,
    pub reason: String,
    pub declined_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRefunded {
    pub reservation_id: ReservationId,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub reason: RefundReason,
    pub refunded_at: Timestamp,
}

/// The tickets of a confirmed purchase, one per seat, each its own stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketsIssued {
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub tickets: Vec<TicketId>,
    pub issued_at: Timestamp,
}

/// The events of a reservation's stream. Variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    ReservationPlaced(ReservationPlaced),
    PaymentRequested(PaymentRequested),
    PaymentActionRequired(PaymentActionRequired),
    ReservationPaid(ReservationPaid),
    ReservationConfirmed(ReservationConfirmed),
    ReservationExpired(ReservationExpired),
    ReservationCancelled(ReservationCancelled),
    ReservationPaymentDeclined(ReservationPaymentDeclined),
    ReservationRefunded(ReservationRefunded),
    TicketsIssued(TicketsIssued),
}

/// A purchase as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationDetails {
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub customer_id: CustomerId,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
    pub expires_at: Timestamp,
    pub placed_at: Timestamp,
    pub status: ReservationStatus,
    /// The payment requested for it, once one is.
    pub payment_id: Option<PaymentId>,
    /// When that payment was requested: the sweeper leaves a pending payment alone for
    /// a grace period after it, so that it never races a request still in flight.
    pub payment_requested_at: Option<Timestamp>,
    /// The provider's reference of a pending payment that waits for the customer
    /// (3-D Secure), once the provider said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_action_reference: Option<String>,
    /// Where its seats are held; empty when all are in the section's first bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<BucketShare>,
    /// Its tickets, once issued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<TicketId>,
}

impl ReservationDetails {
    /// The buckets holding its seats and how many each holds, in bucket order.
    pub fn shares(&self) -> Vec<BucketShare> {
        if self.buckets.is_empty() {
            vec![BucketShare {
                bucket: 0,
                quantity: self.quantity,
            }]
        } else {
            self.buckets.clone()
        }
    }
}

/// The reservation aggregate's state: `None` until placed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation(pub Option<ReservationDetails>);

impl Aggregate for Reservation {
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    const KIND: &'static str = "reservation";
    /// 2: `ReservationDetails` gained `payment_requested_at`; 3: `tickets`;
    /// 4: `payment_action_reference`.
    const SNAPSHOT_VERSION: u32 = 4;

    fn decide(
        &self,
        command: ReservationCommand,
        now: Timestamp,
    ) -> Result<Vec<ReservationEvent>, DomainError> {
        use ReservationStatus as S;

        if let ReservationCommand::Place {
            reservation_id,
            show_id,
            section,
            customer_id,
            quantity,
            unit_price,
            expires_at,
            buckets,
        } = command
        {
            if self.0.is_some() {
                return Err(DomainError::ReservationAlreadyExists);
            }
            if expires_at <= now {
                return Err(DomainError::InvalidHoldExpiry);
            }
            let spread: u32 = buckets.iter().map(|b| b.quantity).sum();
            if !buckets.is_empty() && spread != quantity.get() {
                return Err(DomainError::QuantityAboveLimit {
                    requested: spread,
                    limit: quantity.get(),
                });
            }
            // All in the first bucket is said by saying nothing, as before buckets.
            let buckets = if buckets.iter().all(|b| b.bucket == 0) {
                Vec::new()
            } else {
                let mut buckets = buckets;
                buckets.sort_by_key(|b| b.bucket);
                buckets
            };
            return Ok(vec![ReservationEvent::ReservationPlaced(
                ReservationPlaced {
                    reservation_id,
                    show_id,
                    section,
                    customer_id,
                    quantity: quantity.get(),
                    unit_price,
                    amount: unit_price.times(quantity.get())?,
                    expires_at,
                    placed_at: now,
                    buckets,
                },
            )]);
        }
        let r = self.0.as_ref().ok_or(DomainError::ReservationNotFound)?;
        let reservation_id = r.reservation_id;
        let own_payment = |payment_id: PaymentId| {
            if r.payment_id == Some(payment_id) {
                Ok(())
            } else {
                Err(DomainError::PaymentMismatch)
            }
        };
        let refunded = |reason| {
            Ok(ReservationEvent::ReservationRefunded(ReservationRefunded {
                reservation_id,
                payment_id: r.payment_id.ok_or(DomainError::NotPaid)?,
                amount: r.amount,
                reason,
                refunded_at: now,
            }))
        };
        match (r.status, command) {
            (_, ReservationCommand::Place { .. }) => Err(DomainError::ReservationAlreadyExists),

            (S::Held, ReservationCommand::RequestPayment { payment_id }) => {
                Ok(vec![ReservationEvent::PaymentRequested(PaymentRequested {
                    reservation_id,
                    payment_id,
                    amount: r.amount,
                    requested_at: now,
                })])
            }
            // A retry while the payment is pending reuses it: nothing new to record.
            (S::PaymentPending, ReservationCommand::RequestPayment { .. }) => Ok(vec![]),
            (S::Paid | S::Confirmed, ReservationCommand::RequestPayment { .. }) => {
                Err(DomainError::AlreadyPaid)
            }

            (S::PaymentPending, ReservationCommand::RecordPaymentCaptured { payment_id }) => {
                own_payment(payment_id)?;
                Ok(vec![ReservationEvent::ReservationPaid(ReservationPaid {
                    reservation_id,
                    payment_id,
                    amount: r.amount,
                    paid_at: now,
                })])
            }
            (
                S::PaymentPending,
                ReservationCommand::RecordPaymentDeclined { payment_id, reason },
            ) => {
                own_payment(payment_id)?;
                Ok(vec![ReservationEvent::ReservationPaymentDeclined(
                    ReservationPaymentDeclined {
                        reservation_id,
                        payment_id,
                        reason: reason.chars().take(200).collect(),
                        declined_at: now,
                    },
                )])
            }
            (
                S::PaymentPending,
                ReservationCommand::RecordPaymentActionRequired {
                    payment_id,
                    provider_reference,
                },
            ) => {
                own_payment(payment_id)?;
                if r.payment_action_reference.as_deref() == Some(provider_reference.as_str()) {
                    return Ok(vec![]);
                }
                Ok(vec![ReservationEvent::PaymentActionRequired(
                    PaymentActionRequired {
                        reservation_id,
                        payment_id,
                        provider_reference: provider_reference.chars().take(200).collect(),
                        required_at: now,
                    },
                )])
            }
            (
                S::Paid | S::Confirmed,
                ReservationCommand::RecordPaymentCaptured { .. }
                | ReservationCommand::RecordPaymentDeclined { .. }
                | ReservationCommand::RecordPaymentActionRequired { .. },
            ) => Err(DomainError::AlreadyPaid),
            (
                S::Held,
                ReservationCommand::RecordPaymentCaptured { .. }
                | ReservationCommand::RecordPaymentDeclined { .. }
                | ReservationCommand::RecordPaymentActionRequired { .. },
            ) => Err(DomainError::PaymentMismatch),

            (S::Paid, ReservationCommand::Confirm) => {
                Ok(vec![ReservationEvent::ReservationConfirmed(
                    ReservationConfirmed {
                        reservation_id,
                        confirmed_at: now,
                    },
                )])
            }
            (S::Confirmed, ReservationCommand::Confirm) => Ok(vec![]),
            (S::Held | S::PaymentPending, ReservationCommand::Confirm) => Err(DomainError::NotPaid),

            (S::Held, ReservationCommand::Expire) if now >= r.expires_at => {
                Ok(vec![ReservationEvent::ReservationExpired(
                    ReservationExpired {
                        reservation_id,
                        expired_at: now,
                    },
                )])
            }
            (S::Held, ReservationCommand::Expire) => Err(DomainError::HoldNotExpired),
            (S::PaymentPending, ReservationCommand::Expire | ReservationCommand::Cancel { .. }) => {
                Err(DomainError::PaymentInProgress)
            }
            (S::Paid | S::Confirmed, ReservationCommand::Expire) => Err(DomainError::AlreadyPaid),

            (S::Held, ReservationCommand::Cancel { .. }) => {
                Ok(vec![ReservationEvent::ReservationCancelled(
                    ReservationCancelled {
                        reservation_id,
                        cancelled_at: now,
                    },
                )])
            }
            (S::Confirmed, ReservationCommand::Cancel { refund: None }) => {
                Err(DomainError::RefundRequired)
            }
            (
                S::Confirmed,
                ReservationCommand::Cancel {
                    refund: Some(reason),
                },
            ) => Ok(vec![
                ReservationEvent::ReservationCancelled(ReservationCancelled {
                    reservation_id,
                    cancelled_at: now,
                }),
                refunded(reason)?,
            ]),
            (S::Paid, ReservationCommand::Cancel { .. }) => Err(DomainError::PaymentInProgress),

            (S::Paid | S::Confirmed, ReservationCommand::Refund { reason }) => {
                Ok(vec![refunded(reason)?])
            }

            (S::Confirmed, ReservationCommand::IssueTickets { .. }) if !r.tickets.is_empty() => {
                Err(DomainError::TicketsAlreadyIssued)
            }
            (S::Confirmed, ReservationCommand::IssueTickets { tickets }) => {
                if tickets.len() != r.quantity as usize {
                    return Err(DomainError::TicketCountMismatch {
                        quantity: r.quantity,
                        tickets: tickets.len(),
                    });
                }
                Ok(vec![ReservationEvent::TicketsIssued(TicketsIssued {
                    reservation_id,
                    show_id: r.show_id,
                    tickets,
                    issued_at: now,
                })])
            }
            (S::Held | S::PaymentPending, ReservationCommand::IssueTickets { .. }) => {
                Err(DomainError::NotPaid)
            }
            (S::Held | S::PaymentPending, ReservationCommand::Refund { .. }) => {
                Err(DomainError::NotPaid)
            }

            (
                S::Refunded,
                ReservationCommand::Refund { .. } | ReservationCommand::Cancel { .. },
            ) => Err(DomainError::AlreadyRefunded),
            (S::Cancelled, ReservationCommand::Cancel { .. }) => Err(DomainError::AlreadyCancelled),
            (S::Refunded | S::Cancelled, ReservationCommand::RequestPayment { .. })
                if r.payment_id.is_some() =>
            {
                Err(DomainError::AlreadyPaid)
            }
            (S::Expired, ReservationCommand::RequestPayment { .. }) => {
                Err(DomainError::HoldExpired)
            }
            (status, _) => Err(DomainError::ReservationClosed(status)),
        }
    }

    fn evolve(self, event: &ReservationEvent) -> Self {
        use ReservationStatus as S;
        let mut r = match (self.0, event) {
            (_, ReservationEvent::ReservationPlaced(e)) => {
                return Reservation(Some(ReservationDetails {
                    reservation_id: e.reservation_id,
                    show_id: e.show_id,
                    section: e.section.clone(),
                    customer_id: e.customer_id.clone(),
                    quantity: e.quantity,
                    unit_price: e.unit_price,
                    amount: e.amount,
                    expires_at: e.expires_at,
                    placed_at: e.placed_at,
                    status: S::Held,
                    payment_id: None,
                    payment_requested_at: None,
                    payment_action_reference: None,
                    buckets: e.buckets.clone(),
                    tickets: Vec::new(),
                }))
            }
            (None, _) => return Reservation(None),
            (Some(r), _) => r,
        };
        match event {
            ReservationEvent::ReservationPlaced(_) => {}
            ReservationEvent::PaymentRequested(e) => {
                r.status = S::PaymentPending;
                r.payment_id = Some(e.payment_id);
                r.payment_requested_at = Some(e.requested_at);
                r.payment_action_reference = None;
            }
            ReservationEvent::PaymentActionRequired(e) => {
                r.payment_action_reference = Some(e.provider_reference.clone());
            }
            ReservationEvent::ReservationPaid(_) => r.status = S::Paid,
            ReservationEvent::ReservationConfirmed(_) => r.status = S::Confirmed,
            ReservationEvent::ReservationExpired(_) => r.status = S::Expired,
            ReservationEvent::ReservationCancelled(_) => r.status = S::Cancelled,
            ReservationEvent::ReservationPaymentDeclined(_) => r.status = S::PaymentDeclined,
            ReservationEvent::ReservationRefunded(_) => r.status = S::Refunded,
            ReservationEvent::TicketsIssued(e) => r.tickets.clone_from(&e.tickets),
        }
        Reservation(Some(r))
    }
}

/// The stream id of a reservation.
pub fn reservation_stream(reservation_id: ReservationId) -> String {
    format!("reservation-{reservation_id}")
}
