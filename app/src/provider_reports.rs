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
//!
//! What happens to a captured charge at the provider afterwards, outside this system
//! ([`ChargeReport`]: a refund made in the provider's dashboard, a dispute), is
//! recorded on the payment's stream (`payment-<id>`); a refund of the whole amount
//! also refunds the purchase (its reservation, its seats back on sale, its tickets
//! revoked), as a refund through the API does.

use ticketing_domain::payment::PaymentDetails;
use ticketing_domain::{
    payment_stream, Aggregate, DomainError, Money, Payment, PaymentCommand, PaymentId,
    PaymentStatus, RefundReason, ReservationStatus,
};

use crate::execution::Decision;
use crate::payments::stripe_webhook::PaymentUpdate;
use crate::payments::RefundReceipt;
use crate::{AppError, CommandContext, PaymentResult, Ticketing};

/// What the provider reports about one of its charges after it was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeReport {
    /// Money given back: `refunded_minor` in total so far, in the charge's currency.
    Refunded {
        refunded_minor: i64,
        refund_reference: String,
    },
    /// The cardholder disputed the charge with their bank.
    Disputed {
        dispute_reference: String,
        reason: String,
        amount_minor: i64,
    },
}

/// What a provider's report did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReportOutcome {
    /// The payment was pending: the reported outcome is recorded.
    Settled(PaymentResult),
    /// The payment was settled already; nothing changed.
    AlreadySettled,
    /// Not a payment of ours, or not the reservation's current payment.
    NotOurs,
    /// Recorded on the payment (a partial refund, a dispute).
    Recorded,
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

impl Ticketing {
    /// Records what the provider reports about one of its charges (`charge_reference`,
    /// its id of the charge) after the capture, once: a report sent again, or about a
    /// refund already recorded, changes nothing.
    ///
    /// # Errors
    /// Transient failures (the report should be sent again): the provider cannot say
    /// whose charge it is, the store is unavailable.
    #[tracing::instrument(skip_all, fields(charge_reference))]
    pub async fn apply_charge_report(
        &self,
        ctx: &CommandContext,
        charge_reference: &str,
        report: ChargeReport,
    ) -> Result<ReportOutcome, AppError> {
        let Some(payment_id) = self
            .payments
            .payment_of(charge_reference)
            .await
            .map_err(AppError::PaymentProvider)?
            .and_then(|key| key.parse::<PaymentId>().ok())
        else {
            return Ok(ReportOutcome::NotOurs);
        };
        let payment = self.load::<Payment>(&payment_stream(payment_id)).await?;
        let Some(details) = payment.state.0.clone() else {
            return Ok(ReportOutcome::NotOurs);
        };
        let money = |amount_minor| Money {
            amount_minor,
            currency: details.amount.currency,
        };
        let command = match report {
            ChargeReport::Refunded {
                refunded_minor,
                refund_reference,
            } => {
                if details.status == PaymentStatus::Refunded {
                    return Ok(ReportOutcome::AlreadySettled);
                }
                if refunded_minor >= details.amount.amount_minor {
                    return self
                        .refunded_at_provider(ctx, &details, refund_reference)
                        .await;
                }
                PaymentCommand::RecordPartialRefund {
                    refunded: money(refunded_minor),
                    provider_reference: refund_reference,
                }
            }
            ChargeReport::Disputed {
                dispute_reference,
                reason,
                amount_minor,
            } => PaymentCommand::RecordDispute {
                dispute_reference,
                reason,
                amount: money(amount_minor),
            },
        };
        let command = &command;
        self.execute(ctx, None, move || async move {
            let payment = self.load::<Payment>(&payment_stream(payment_id)).await?;
            let events = payment.state.decide(command.clone(), self.clock.now())?;
            let outcome = if events.is_empty() {
                ReportOutcome::AlreadySettled
            } else {
                ReportOutcome::Recorded
            };
            Ok(Decision {
                completes: true,
                changes: vec![payment.change(events)],
                outcome,
            })
        })
        .await
    }

    /// A payment refunded in full at the provider: the purchase is refunded here too.
    async fn refunded_at_provider(
        &self,
        ctx: &CommandContext,
        details: &PaymentDetails,
        refund_reference: String,
    ) -> Result<ReportOutcome, AppError> {
        let receipt = RefundReceipt {
            reference: refund_reference,
        };
        let result = PaymentResult::Refunded {
            reservation_id: details.reservation_id,
            payment_id: details.payment_id,
            amount: details.amount,
        };
        match self
            .record_refund(
                ctx,
                None,
                details,
                RefundReason::RefundedAtProvider,
                &receipt,
                &result,
            )
            .await
        {
            Ok(result) => Ok(ReportOutcome::Settled(result)),
            // Refunded through the API meanwhile.
            Err(AppError::Domain(DomainError::AlreadyRefunded)) => {
                Ok(ReportOutcome::AlreadySettled)
            }
            Err(error) => Err(error),
        }
    }
}
