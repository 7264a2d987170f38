//! Refunds and cancellations by the customer: a held reservation cancelled (its seats
//! released), a confirmed one refunded, and the refund of a payment by its organizer
//! or reported by the provider. Streams: `payment-<id>`, `reservation-<id>` and the
//! section's buckets, in one transaction once the provider has refunded.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use ticketing_domain::payment::PaymentDetails;
use ticketing_domain::*;

use crate::execution::{CommandContext, Decision, Idempotency};
use crate::payments::{RefundReceipt, RefundRequest};
use crate::service::ensure;
use crate::{AppError, Ticketing};

/// A cancelled reservation, with the refund if it had been paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    pub reservation_id: ReservationId,
    pub refunded: Option<Money>,
}

impl Ticketing {
    /// Cancels a reservation for its customer: a held one releases its seats; a
    /// confirmed one is refunded and its seats go back on sale.
    ///
    /// # Errors
    /// [`DomainError::AlreadyCancelled`], [`DomainError::AlreadyRefunded`],
    /// [`DomainError::PaymentInProgress`], [`DomainError::ReservationClosed`],
    /// [`AppError::PaymentProvider`] when the refund cannot be made.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %reservation_id))]
    pub async fn cancel(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
    ) -> Result<Cancelled, AppError> {
        let idempotency = Idempotency::of(ctx, "cancel", &reservation_id);
        self.once(idempotency.as_ref(), async {
            let (_, details) = self.load_existing_reservation(reservation_id).await?;
            if details.status == ReservationStatus::Confirmed {
                let payment_id = ensure(details.payment_id, DomainError::NotPaid)?;
                return self
                    .refund(
                        ctx,
                        idempotency.as_ref(),
                        payment_id,
                        RefundReason::CancelledByCustomer,
                        |amount| Cancelled {
                            reservation_id,
                            refunded: Some(amount),
                        },
                    )
                    .await;
            }
            self.cancel_hold(
                ctx,
                idempotency.as_ref(),
                reservation_id,
                ReleaseReason::CancelledByCustomer,
            )
            .await
        })
        .await
    }

    /// Cancels an unpaid reservation and puts its seats back on sale, in one
    /// transaction: for its customer, or because its show was cancelled.
    pub(crate) async fn cancel_hold(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        reservation_id: ReservationId,
        reason: ReleaseReason,
    ) -> Result<Cancelled, AppError> {
        self.execute(ctx, idempotency, move || async move {
            let now = self.clock.now();
            let (reservation, details) = self.load_existing_reservation(reservation_id).await?;
            let cancelled = reservation
                .state
                .decide(ReservationCommand::Cancel { refund: None }, now)?;
            let mut changes = vec![reservation.change(cancelled)];
            changes.extend(
                self.decide_on_shares(&details, now, true, |share| InventoryCommand::Release {
                    reservation_id,
                    quantity: share.quantity,
                    expires_at: details.expires_at,
                    reason,
                })
                .await?,
            );
            Ok(Decision {
                completes: true,
                changes,
                outcome: Cancelled {
                    reservation_id,
                    refunded: None,
                },
            })
        })
        .await
    }

    /// Refunds a captured payment in full and records it on the payment, the
    /// reservation and the section (whose seats go back on sale).
    ///
    /// The provider is asked first, with a key derived from the payment id, so a
    /// retried refund never pays back twice.
    ///
    /// # Errors
    /// [`DomainError::PaymentNotFound`], [`DomainError::AlreadyRefunded`],
    /// [`DomainError::NotRefundable`], [`AppError::PaymentProvider`].
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %payment_id))]
    pub async fn refund_payment(
        &self,
        ctx: &CommandContext,
        payment_id: PaymentId,
        reason: RefundReason,
    ) -> Result<Money, AppError> {
        let idempotency = Idempotency::of(ctx, "refund", &(&payment_id, &reason));
        self.once(idempotency.as_ref(), async {
            self.refund(ctx, idempotency.as_ref(), payment_id, reason, |amount| {
                amount
            })
            .await
        })
        .await
    }

    /// Refunds a payment and records it. `answer` turns the refunded amount into the
    /// outcome of the command that asked for the refund: it is what an idempotency
    /// record stores, so that a retry of that command replays its own answer.
    pub(crate) async fn refund<T>(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        payment_id: PaymentId,
        reason: RefundReason,
        answer: impl FnOnce(Money) -> T,
    ) -> Result<T, AppError>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let payment = self.load::<Payment>(&payment_stream(payment_id)).await?;
        let details = ensure(payment.state.0.clone(), DomainError::PaymentNotFound)?;
        // Refuse what the domain would refuse before money moves.
        payment.state.decide(
            PaymentCommand::RecordRefund {
                provider_reference: String::new(),
            },
            self.clock.now(),
        )?;
        let receipt = self
            .payments
            .refund(RefundRequest {
                idempotency_key: format!("refund-{payment_id}"),
                charge_reference: details.provider_reference.clone().unwrap_or_default(),
                amount: details.amount,
            })
            .await
            .map_err(AppError::PaymentProvider)?;
        let outcome = answer(details.amount);
        match self
            .record_refund(ctx, idempotency, &details, reason, &receipt, &outcome)
            .await
        {
            // The provider reported this refund first (a webhook): it is recorded.
            Err(AppError::Domain(DomainError::AlreadyRefunded)) => Ok(outcome),
            recorded => recorded,
        }
    }

    /// Records a refund the provider made (`receipt`), with its consequences: the
    /// purchase refunded or cancelled, its seats back on sale.
    pub(crate) async fn record_refund<T>(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        details: &PaymentDetails,
        reason: RefundReason,
        receipt: &RefundReceipt,
        outcome: &T,
    ) -> Result<T, AppError>
    where
        T: Serialize + DeserializeOwned + Clone,
    {
        let payment_id = details.payment_id;
        self.execute(ctx, idempotency, move || async move {
            let now = self.clock.now();
            let payment = self.load::<Payment>(&payment_stream(payment_id)).await?;
            let refunded = payment.state.decide(
                PaymentCommand::RecordRefund {
                    provider_reference: receipt.reference.clone(),
                },
                now,
            )?;
            let (reservation, booking) = self
                .load_existing_reservation(details.reservation_id)
                .await?;
            // The reservation's status before this refund says where its seats are: a
            // confirmed purchase bought them, a paid one still holds them.
            let (reservation_events, sold) = match booking.status {
                ReservationStatus::Confirmed if reason == RefundReason::CancelledByCustomer => (
                    reservation.state.decide(
                        ReservationCommand::Cancel {
                            refund: Some(reason),
                        },
                        now,
                    )?,
                    true,
                ),
                ReservationStatus::Confirmed => (
                    reservation
                        .state
                        .decide(ReservationCommand::Refund { reason }, now)?,
                    true,
                ),
                // Paid but never confirmed: the seats were still held (or gone).
                _ => (
                    reservation
                        .state
                        .decide(ReservationCommand::Refund { reason }, now)?,
                    false,
                ),
            };
            let release_reason = if reason == RefundReason::ShowCancelled {
                ReleaseReason::ShowCancelled
            } else {
                ReleaseReason::Expired
            };
            let seats_back = self
                .decide_on_shares(&booking, now, true, |share| {
                    if sold {
                        InventoryCommand::ReturnSold {
                            reservation_id: booking.reservation_id,
                            quantity: share.quantity,
                        }
                    } else {
                        InventoryCommand::Release {
                            reservation_id: booking.reservation_id,
                            quantity: share.quantity,
                            expires_at: booking.expires_at,
                            reason: release_reason,
                        }
                    }
                })
                .await?;
            let mut changes = vec![
                payment.change(refunded),
                reservation.change(reservation_events),
            ];
            changes.extend(seats_back);
            Ok(Decision {
                completes: true,
                changes,
                outcome: outcome.clone(),
            })
        })
        .await
    }
}
