//! The timeout sweeper: finishes what nobody else will. Streams: it finds
//! `reservation-…` streams by their last event and acts through the other use cases,
//! which touch what they touch (the reservation, its payment, the section's buckets).
//!
//! A run asks the store's stream index ([`EventStore::find_streams`]) for reservations
//! by their last event, oldest first, and handles each on its own:
//!
//! | last event           | state                             | what the sweeper does |
//! |----------------------|-----------------------------------|-----------------------|
//! | `ReservationPaid`    | captured, never confirmed/refunded | confirm if the seats can be had and the show is on, else refund |
//! | `PaymentRequested`   | payment outcome unknown            | after a grace period, ask the provider (`find_charge`) and record its answer; no charge at all is recorded as declined, `abandoned` |
//! | `PaymentActionRequired` | waiting for the customer's 3-D Secure | once the hold expired, cancel it at the provider (`cancel_charge`) and record how it ended: declined (seats released), or captured if the customer finished first |
//! | `ReservationPlaced`  | unpaid hold                        | once expired, record the expiry and release the seats |
//!
//! Correctness never depends on it: an expired hold is already free when seats are
//! decided, and a pending payment is finished by the customer's retry as well. The
//! sweeper records what happened and settles money whose owner went away. Every action
//! goes through the same command-layer path as the customer's own request
//! ([`Ticketing::expire`], `record_charge`), so there is one way to confirm, decline
//! or refund.
//!
//! [`EventStore::find_streams`]: ticketing_store::EventStore::find_streams

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use ticketing_domain::*;
use ticketing_store::StreamHead;

use crate::payments::ChargeOutcome;
use crate::{AppError, CommandContext, PaymentResult, Ticketing};

/// The decline reason recorded for a payment the provider never saw: the customer's
/// request died before the card was charged, so the seats are released.
pub const ABANDONED: &str = "abandoned";

/// The prefix of every reservation stream.
const RESERVATION_STREAMS: &str = "reservation-";

/// How much one sweep may do, and how patient it is with payments in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// The most reservations one run acts on, across all kinds of work, so that a
    /// run fits in a scheduled function's time limit. What is left is found next run.
    pub max_items: usize,
    /// How long after a payment was requested the sweeper leaves it alone. The
    /// customer's own request may still be waiting for the provider: asking the
    /// provider before it answered would find no charge and release seats that are
    /// about to be paid for.
    pub payment_grace: TimeDelta,
}

impl Default for SweepLimits {
    /// 100 items a run, and two minutes of grace: far longer than any provider call.
    fn default() -> Self {
        Self {
            max_items: 100,
            payment_grace: TimeDelta::minutes(2),
        }
    }
}

/// What one sweep did, for its log line and the scheduled function's answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Unpaid holds whose expiry was recorded and whose seats were released.
    pub holds_expired: u32,
    /// Captured payments whose purchase was confirmed.
    pub payments_confirmed: u32,
    /// Pending payments the provider had declined.
    pub payments_declined: u32,
    /// Pending payments the provider never saw, released as [`ABANDONED`].
    pub payments_abandoned: u32,
    /// Payments still waiting for the customer's authentication when their hold ran
    /// out: cancelled at the provider, their seats released.
    #[serde(default)]
    pub authentications_cancelled: u32,
    /// Captured payments refunded because the seats were gone or the show cancelled.
    pub purchases_refunded: u32,
    /// Reservations that could not be handled (each logged with its cause); they are
    /// tried again next run.
    pub failures: u32,
}

impl SweepReport {
    /// Whether the run changed nothing and nothing failed.
    pub fn is_idle(&self) -> bool {
        *self == Self::default()
    }
}

/// The kinds of work, in the order a run takes them: money first, then seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Last event `ReservationPaid`.
    Captured,
    /// Last event `PaymentRequested`.
    PendingPayment,
    /// Last event `PaymentActionRequired`.
    AwaitingCustomer,
    /// Last event `ReservationPlaced`.
    Hold,
}

impl Work {
    const ALL: [Work; 4] = [
        Work::Captured,
        Work::PendingPayment,
        Work::AwaitingCustomer,
        Work::Hold,
    ];

    fn last_event_type(self) -> &'static str {
        match self {
            Work::Captured => "ReservationPaid",
            Work::PendingPayment => "PaymentRequested",
            Work::AwaitingCustomer => "PaymentActionRequired",
            Work::Hold => "ReservationPlaced",
        }
    }

    fn status(self) -> ReservationStatus {
        match self {
            Work::Captured => ReservationStatus::Paid,
            Work::PendingPayment | Work::AwaitingCustomer => ReservationStatus::PaymentPending,
            Work::Hold => ReservationStatus::Held,
        }
    }
}

/// What the sweeper did with one reservation.
enum Swept {
    /// Not due yet (a hold before its expiry, a payment within its grace period).
    NotDue,
    /// Its state changed since it was found: someone else handled it.
    MovedOn,
    Expired,
    Charge {
        result: PaymentResult,
        abandoned: bool,
    },
    /// A payment that waited for the customer past its hold's expiry, cancelled.
    AuthenticationCancelled,
}

impl SweepReport {
    fn count(&mut self, swept: &Swept) {
        match swept {
            Swept::NotDue | Swept::MovedOn => {}
            Swept::Expired => self.holds_expired += 1,
            Swept::AuthenticationCancelled => self.authentications_cancelled += 1,
            Swept::Charge { result, abandoned } => match result {
                PaymentResult::Confirmed { .. } => self.payments_confirmed += 1,
                PaymentResult::Declined { .. } if *abandoned => self.payments_abandoned += 1,
                PaymentResult::Declined { .. } => self.payments_declined += 1,
                PaymentResult::Refunded { .. } => self.purchases_refunded += 1,
                // Recorded as waiting for the customer: settled in a later run.
                PaymentResult::ActionRequired { .. } => {}
            },
        }
    }
}

impl Ticketing {
    /// Runs the timeout sweeper once: finishes captured purchases, resolves payments
    /// pending past their grace period, and records expired holds, at most
    /// `limits.max_items` of them.
    ///
    /// Work is found through the store's stream index, oldest first, one kind of last
    /// event at a time. Each reservation is handled on its own: one that fails is
    /// logged and counted in [`SweepReport::failures`], and the run goes on. One
    /// whose state moved on since it was found (the customer paid or cancelled
    /// meanwhile) is left alone. Running it again right away does nothing new.
    ///
    /// # Errors
    /// Only when the stream index cannot be read ([`AppError::Store`]); failures of
    /// single reservations are counted instead.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, max_items = limits.max_items))]
    pub async fn sweep(
        &self,
        ctx: &CommandContext,
        limits: SweepLimits,
    ) -> Result<SweepReport, AppError> {
        let swept = self.sweep_due(ctx, limits).await;
        crate::metrics::swept(&swept);
        swept
    }

    async fn sweep_due(
        &self,
        ctx: &CommandContext,
        limits: SweepLimits,
    ) -> Result<SweepReport, AppError> {
        let now = self.now();
        let mut report = SweepReport::default();
        let mut budget = limits.max_items;
        for work in Work::ALL {
            if budget == 0 {
                break;
            }
            // One type per query, so that the index hands the heads over in order.
            let heads = self
                .store
                .find_streams(RESERVATION_STREAMS, &[work.last_event_type()], budget)
                .await?;
            for head in heads {
                if budget == 0 {
                    break;
                }
                match self.sweep_one(ctx, &head, work, now, limits).await {
                    Ok(Swept::NotDue | Swept::MovedOn) => {}
                    Ok(swept) => {
                        budget -= 1;
                        report.count(&swept);
                    }
                    Err(error) => {
                        budget -= 1;
                        if self.moved_on(&head, &error).await {
                            tracing::debug!(
                                stream_id = %head.stream_id,
                                %error,
                                "reservation settled by someone else meanwhile"
                            );
                        } else {
                            tracing::warn!(
                                error.cause_chain = ?error,
                                stream_id = %head.stream_id,
                                work = ?work,
                                "sweeper could not handle a reservation; next run tries again"
                            );
                            report.failures += 1;
                        }
                    }
                }
            }
        }
        tracing::info!(
            holds_expired = report.holds_expired,
            payments_confirmed = report.payments_confirmed,
            payments_declined = report.payments_declined,
            payments_abandoned = report.payments_abandoned,
            authentications_cancelled = report.authentications_cancelled,
            purchases_refunded = report.purchases_refunded,
            failures = report.failures,
            "sweep finished"
        );
        Ok(report)
    }

    /// Handles one reservation found by its last event.
    async fn sweep_one(
        &self,
        ctx: &CommandContext,
        head: &StreamHead,
        work: Work,
        now: Timestamp,
        limits: SweepLimits,
    ) -> Result<Swept, AppError> {
        let reservation_id = head
            .stream_id
            .strip_prefix(RESERVATION_STREAMS)
            .and_then(|id| id.parse::<ReservationId>().ok())
            .ok_or(DomainError::ReservationNotFound)?;
        let details = self.reservation(reservation_id).await?;
        if details.status != work.status() {
            return Ok(Swept::MovedOn);
        }
        match work {
            Work::Hold => {
                if details.expires_at > now {
                    return Ok(Swept::NotDue);
                }
                self.expire(ctx, reservation_id).await?;
                Ok(Swept::Expired)
            }
            Work::PendingPayment => {
                let requested_at = details.payment_requested_at.unwrap_or(details.placed_at);
                if now < requested_at + limits.payment_grace {
                    return Ok(Swept::NotDue);
                }
                let payment_id = details.payment_id.ok_or(DomainError::NotPaid)?;
                let found = self
                    .payments
                    .find_charge(&payment_id.to_string())
                    .await
                    .map_err(AppError::PaymentProvider)?;
                let abandoned = found.is_none();
                let outcome = found.unwrap_or_else(|| ChargeOutcome::Declined {
                    reason: ABANDONED.to_owned(),
                });
                let result = self
                    .record_charge(ctx, None, reservation_id, payment_id, outcome)
                    .await?;
                Ok(Swept::Charge { result, abandoned })
            }
            Work::AwaitingCustomer => {
                if details.expires_at > now {
                    return Ok(Swept::NotDue);
                }
                let payment_id = details.payment_id.ok_or(DomainError::NotPaid)?;
                let reference = details
                    .payment_action_reference
                    .as_deref()
                    .ok_or(DomainError::NotPaid)?;
                let outcome = self
                    .payments
                    .cancel_charge(reference)
                    .await
                    .map_err(AppError::PaymentProvider)?;
                let result = self
                    .record_charge(ctx, None, reservation_id, payment_id, outcome)
                    .await?;
                Ok(match result {
                    PaymentResult::Declined { .. } => Swept::AuthenticationCancelled,
                    result => Swept::Charge {
                        result,
                        abandoned: false,
                    },
                })
            }
            Work::Captured => {
                let payment_id = details.payment_id.ok_or(DomainError::NotPaid)?;
                let result = self.finish_paid(ctx, reservation_id, payment_id).await?;
                Ok(Swept::Charge {
                    result,
                    abandoned: false,
                })
            }
        }
    }

    /// Whether a failure only means that someone else got there first: the domain
    /// refused, and the stream has moved on from the head the sweeper found.
    async fn moved_on(&self, head: &StreamHead, error: &AppError) -> bool {
        if !matches!(error, AppError::Domain(_)) {
            return false;
        }
        match self.store.stream_version(&head.stream_id).await {
            Ok(version) => version != head.version,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_work_names_a_reservation_event_type() {
        for work in Work::ALL {
            assert!(
                ReservationEvent::EVENT_TYPES.contains(&work.last_event_type()),
                "{work:?}"
            );
        }
    }

    #[test]
    fn a_report_counts_each_outcome_in_its_own_field() {
        let (reservation_id, payment_id) = (ReservationId::new(), PaymentId::new());
        let amount = Money::unit_price(100, Currency::parse("EUR").unwrap()).unwrap();
        let mut report = SweepReport::default();
        let declined = PaymentResult::Declined {
            reservation_id,
            payment_id,
            reason: ABANDONED.into(),
        };
        for swept in [
            Swept::NotDue,
            Swept::MovedOn,
            Swept::Expired,
            Swept::AuthenticationCancelled,
            Swept::Charge {
                result: declined.clone(),
                abandoned: true,
            },
            Swept::Charge {
                result: declined,
                abandoned: false,
            },
            Swept::Charge {
                result: PaymentResult::Refunded {
                    reservation_id,
                    payment_id,
                    amount,
                },
                abandoned: false,
            },
        ] {
            report.count(&swept);
        }
        assert_eq!(
            report,
            SweepReport {
                holds_expired: 1,
                payments_confirmed: 0,
                payments_declined: 1,
                payments_abandoned: 1,
                authentications_cancelled: 1,
                purchases_refunded: 1,
                failures: 0,
            }
        );
        assert!(!report.is_idle());
        assert!(SweepReport::default().is_idle());
    }
}
