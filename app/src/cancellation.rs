//! Cancelling a show: the cancellation itself, then its fan-out over every section of
//! the show, releasing each hold and refunding each purchase. Streams: `show-…`, then
//! per hold or purchase its `reservation-…`, `payment-…` and the section's buckets.
//!
//! The fan-out is not one transaction (a show may have thousands of purchases, each
//! with a refund at the provider). Instead every step is idempotent and the whole is
//! repeatable: calling [`Ticketing::cancel_show`] again on a cancelled show skips the
//! cancellation and finishes whatever a crashed or failed run left, because the
//! sections themselves say what is still held or sold.

use serde::{Deserialize, Serialize};
use ticketing_domain::*;

use crate::execution::{CommandContext, Decision};
use crate::{AppError, Ticketing};

/// What one call of [`Ticketing::cancel_show`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowCancellation {
    pub show_id: ShowId,
    /// Whether this call recorded the cancellation; `false` when the show was already
    /// cancelled and the call only finished the fan-out.
    pub newly_cancelled: bool,
    /// Unpaid holds cancelled and their seats released.
    pub holds_released: u32,
    /// Paid purchases refunded and their seats returned.
    pub purchases_refunded: u32,
    /// Reservations whose payment outcome is not known yet. They are left to the
    /// sweeper, which asks the provider and refunds what was captured, since the show
    /// is cancelled.
    pub payments_pending: u32,
    /// Reservations that could not be released or refunded this time (each is logged
    /// with its cause). Calling [`Ticketing::cancel_show`] again retries them.
    pub failures: u32,
}

impl ShowCancellation {
    /// Whether the fan-out is finished: nothing failed and no payment is pending.
    pub fn is_complete(&self) -> bool {
        self.failures == 0 && self.payments_pending == 0
    }
}

/// What the fan-out did with one reservation.
enum Unwound {
    Released,
    Refunded,
    Pending,
    /// Already settled (expired, declined, cancelled or refunded): nothing to do.
    Settled,
}

impl Ticketing {
    /// Cancels a show, releases every hold on it and refunds every purchase of it
    /// (with [`RefundReason::ShowCancelled`]).
    ///
    /// Calling it again on a cancelled show does not fail: it finishes the fan-out and
    /// reports what it did, so a run that crashed or met a provider outage half-way is
    /// completed by retrying. For the same reason an idempotency key in `ctx` is not
    /// used: a replayed answer would stop a retry from finishing the work. Reservations
    /// whose payment is pending are left to the sweeper ([`Ticketing::sweep`]).
    ///
    /// Each reservation is released or refunded in its own transaction, and a failure
    /// is logged and counted ([`ShowCancellation::failures`]) while the others go on.
    ///
    /// # Errors
    /// [`DomainError::ShowNotFound`], and the store's errors while recording the
    /// cancellation or reading the sections.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %show_id))]
    pub async fn cancel_show(
        &self,
        ctx: &CommandContext,
        show_id: ShowId,
        reason: String,
    ) -> Result<ShowCancellation, AppError> {
        let reason = &reason;
        let newly_cancelled = self
            .execute(ctx, None, move || async move {
                let show = self.load::<Show>(&show_stream(show_id)).await?;
                let cancel = ShowCommand::Cancel {
                    reason: reason.clone(),
                };
                let (changes, newly_cancelled) = match show.state.decide(cancel, self.now()) {
                    Ok(events) => (vec![show.change(events)], true),
                    Err(DomainError::ShowCancelled) => (Vec::new(), false),
                    Err(other) => return Err(other.into()),
                };
                Ok(Decision {
                    completes: true,
                    changes,
                    outcome: newly_cancelled,
                })
            })
            .await?;

        let mut report = ShowCancellation {
            show_id,
            newly_cancelled,
            holds_released: 0,
            purchases_refunded: 0,
            payments_pending: 0,
            failures: 0,
        };
        // Read after the cancellation committed: a purchase confirmed concurrently is
        // either sold here or sees the cancellation itself (see `record_charge`).
        let show = self.show(show_id).await?;
        for spec in &show.sections {
            for reservation_id in self.reservations_in_section(show_id, spec).await? {
                match self.unwind(ctx, reservation_id).await {
                    Ok(Unwound::Released) => report.holds_released += 1,
                    Ok(Unwound::Refunded) => report.purchases_refunded += 1,
                    Ok(Unwound::Pending) => report.payments_pending += 1,
                    Ok(Unwound::Settled) => {}
                    // Settled by someone else (the customer, the sweeper) meanwhile.
                    Err(AppError::Domain(
                        DomainError::AlreadyCancelled | DomainError::AlreadyRefunded,
                    )) => {}
                    Err(error) => {
                        tracing::warn!(
                            error.cause_chain = ?error,
                            %reservation_id,
                            "reservation of a cancelled show not settled; cancelling again retries it"
                        );
                        report.failures += 1;
                    }
                }
            }
        }
        tracing::info!(
            newly_cancelled,
            holds_released = report.holds_released,
            purchases_refunded = report.purchases_refunded,
            payments_pending = report.payments_pending,
            failures = report.failures,
            "show cancelled"
        );
        Ok(report)
    }

    /// Every reservation that ever held seats in a section, from its buckets' streams:
    /// a bucket's state counts seats, not reservations. A reservation split across
    /// buckets is listed once. Those already settled are skipped by
    /// [`Ticketing::unwind`].
    async fn reservations_in_section(
        &self,
        show_id: ShowId,
        section: &SectionSpec,
    ) -> Result<Vec<ReservationId>, AppError> {
        let mut reservations = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for bucket in 0..section.buckets.max(1) {
            let stream_id = bucket_stream(show_id, &section.name, bucket);
            for recorded in self.store.read_stream(&stream_id, 0).await? {
                if recorded.event_type != "SeatsHeld" {
                    continue;
                }
                let event = InventoryEvent::decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    recorded.data,
                )
                .map_err(|source| AppError::Decode {
                    stream_id: stream_id.clone(),
                    source,
                })?;
                if let InventoryEvent::SeatsHeld(held) = event {
                    if seen.insert(held.reservation_id) {
                        reservations.push(held.reservation_id);
                    }
                }
            }
        }
        Ok(reservations)
    }

    /// Releases or refunds one reservation of a cancelled show, as its status requires.
    async fn unwind(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
    ) -> Result<Unwound, AppError> {
        let (_, details) = self.load_existing_reservation(reservation_id).await?;
        match details.status {
            ReservationStatus::Held => {
                self.cancel_hold(ctx, None, reservation_id, ReleaseReason::ShowCancelled)
                    .await?;
                Ok(Unwound::Released)
            }
            ReservationStatus::PaymentPending => Ok(Unwound::Pending),
            ReservationStatus::Paid | ReservationStatus::Confirmed => {
                let payment_id = details.payment_id.ok_or(DomainError::NotPaid)?;
                self.refund(
                    ctx,
                    None,
                    payment_id,
                    RefundReason::ShowCancelled,
                    |amount| amount,
                )
                .await?;
                Ok(Unwound::Refunded)
            }
            ReservationStatus::Expired
            | ReservationStatus::Cancelled
            | ReservationStatus::PaymentDeclined
            | ReservationStatus::Refunded => Ok(Unwound::Settled),
        }
    }
}
