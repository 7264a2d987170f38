//! What the payment provider reports on its own (Stripe's webhooks): the outcome of one
//! of our payments, which may arrive before the payment's own answer, after it, twice,
//! or out of order. Streams: those the payment's own answer writes
//! ([`Ticketing::record_charge`]: the reservation, the payment, the section's buckets
//! and, on confirmation, the tickets).
//!
//! Every report ends in the state the first outcome recorded: a payment still pending
//! takes the reported outcome, one already settled (by its own answer, the sweeper or
//! an earlier report) is left as it is. A succeeded payment cannot fail afterwards at
//! the provider, so nothing is lost by ignoring a late contrary report.

use ticketing_domain::{DomainError, ReservationStatus};

use crate::payments::stripe_webhook::PaymentUpdate;
use crate::{AppError, CommandContext, PaymentResult, Ticketing};

/// What a provider's report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The payment was pending: the reported outcome is recorded.
    Settled(PaymentResult),
    /// The payment was settled already; nothing changed.
    AlreadySettled,
    /// Not a payment of ours, or not the reservation's current payment.
    NotOurs,
}

impl Ticketing {
    /// Records what the provider reports about a payment, once.
    ///
    /// # Errors
    /// Transient failures (the report should be sent again); a domain refusal of the
    /// outcome itself, as [`Ticketing::record_charge`] gives it.
    #[tracing::instrument(skip_all, fields(reservation_id = %update.reservation_id, payment_id = %update.payment_id))]
    pub async fn apply_payment_report(
        &self,
        ctx: &CommandContext,
        update: PaymentUpdate,
    ) -> Result<ReportOutcome, AppError> {
        let details = match self.reservation(update.reservation_id).await {
            Ok(details) => details,
            Err(AppError::Domain(DomainError::ReservationNotFound)) => {
                return Ok(ReportOutcome::NotOurs)
            }
            Err(error) => return Err(error),
        };
        if details.payment_id != Some(update.payment_id) {
            return Ok(ReportOutcome::NotOurs);
        }
        if details.status != ReservationStatus::PaymentPending {
            return Ok(ReportOutcome::AlreadySettled);
        }
        match self
            .record_charge(
                ctx,
                None,
                update.reservation_id,
                update.payment_id,
                update.outcome,
            )
            .await
        {
            Ok(result) => Ok(ReportOutcome::Settled(result)),
            // Settled meanwhile by the payment's own answer or the sweeper.
            Err(AppError::Domain(_))
                if self.reservation(update.reservation_id).await?.status
                    != ReservationStatus::PaymentPending =>
            {
                Ok(ReportOutcome::AlreadySettled)
            }
            Err(error) => Err(error),
        }
    }
}
