//! Checkout: paying for a hold, and every way a payment's outcome gets recorded (its
//! own answer, the provider's report, the customer's next attempt, the sweeper):
//! confirmed seats with their tickets, released seats, a payment that waits for the
//! customer's authentication, or a refund when the seats are gone or the show was
//! cancelled. Streams: `reservation-<id>`, `payment-<id>`, the section's buckets, and
//! on confirmation `ticket-<id>` (one per seat).

use serde::{Deserialize, Serialize};
use ticketing_domain::*;

use crate::execution::{CommandContext, Decision, Idempotency};
use crate::payments::{CardToken, ChargeOutcome, ChargeRequest};
use crate::repository::Change;
use crate::{AppError, Ticketing};

/// How a payment attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentResult {
    /// Charged, and the seats are the customer's.
    Confirmed {
        reservation_id: ReservationId,
        payment_id: PaymentId,
        amount: Money,
    },
    /// The card was refused; the seats went back on sale.
    Declined {
        reservation_id: ReservationId,
        payment_id: PaymentId,
        reason: String,
    },
    /// Charged after the hold had expired and its seats were gone: refunded at once.
    Refunded {
        reservation_id: ReservationId,
        payment_id: PaymentId,
        amount: Money,
    },
    /// The provider waits for the customer to authenticate (3-D Secure): the payment
    /// is pending and the seats stay held until `expires_at`. The customer's browser
    /// finishes it with `client_secret`; the outcome arrives from the provider.
    ActionRequired {
        reservation_id: ReservationId,
        payment_id: PaymentId,
        client_secret: String,
        expires_at: Timestamp,
    },
}

/// What settling a capture decided. Untagged, so that a confirmation is stored as the
/// command's idempotency outcome in exactly the form `pay` replays: a [`PaymentResult`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Settled {
    Confirmed(PaymentResult),
    /// The capture is recorded alone; the payment is refunded next.
    Refund {
        refund_reason: RefundReason,
    },
}

/// Whether a paid reservation's seats can be confirmed.
enum Seats {
    /// The section's `SeatsConfirmed`, to append with the confirmation.
    Confirmable(Vec<Change>),
    /// They cannot: the payment is refunded for this reason.
    Refund(RefundReason),
}

impl Ticketing {
    /// Pays for a reservation and confirms its seats.
    ///
    /// The payment is recorded as requested before the provider is called, and the
    /// provider is called with the payment id as its idempotency key: a retry after a
    /// timeout or a crash reuses the same payment and can never charge twice.
    ///
    /// # Errors
    /// [`DomainError::HoldExpired`] when the hold ran out and its seats are gone
    /// (the expiry is recorded), [`DomainError::ShowCancelled`] (nothing is charged),
    /// [`DomainError::AlreadyPaid`],
    /// [`DomainError::ReservationClosed`], [`AppError::PaymentProvider`] when the
    /// provider does not answer (the payment stays pending).
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %reservation_id))]
    pub async fn pay(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
        card: CardToken,
    ) -> Result<PaymentResult, AppError> {
        let idempotency = Idempotency::of(ctx, "pay", &(&reservation_id, &card));
        self.once(idempotency.as_ref(), async {
            let (_, details) = self.load_existing_reservation(reservation_id).await?;
            if details.status == ReservationStatus::Held {
                // Charging for a cancelled show, or for seats that are gone, would only mean
                // refunding at once. (A pending payment goes on: it may already be charged.)
                let (_, show) = self.load_existing_show(details.show_id).await?;
                if show.status == SalesStatus::Cancelled {
                    return Err(DomainError::ShowCancelled.into());
                }
                let now = self.clock.now();
                let confirmable = self
                    .decide_on_shares(&details, now, false, |share| InventoryCommand::Confirm {
                        reservation_id,
                        quantity: share.quantity,
                        expires_at: details.expires_at,
                    })
                    .await;
                if let Err(AppError::Domain(DomainError::HoldExpired)) = confirmable {
                    self.expire(ctx, reservation_id).await?;
                    return Err(DomainError::HoldExpired.into());
                }
            }
            let payment_id = self.request_payment(ctx, reservation_id).await?;
            let outcome = match &details.payment_action_reference {
                // The customer was asked to authenticate this payment: where it stands
                // now is the answer, whichever card this request names.
                Some(reference) if details.payment_id == Some(payment_id) => {
                    self.payments.charge_status(reference).await
                }
                _ => {
                    self.payments
                        .charge(ChargeRequest {
                            idempotency_key: payment_id.to_string(),
                            amount: details.amount,
                            card,
                            description: format!(
                                "{} x {} ({})",
                                details.quantity, details.section, details.show_id
                            ),
                            reservation_id: Some(reservation_id),
                        })
                        .await
                }
            }
            .map_err(AppError::PaymentProvider)?;
            self.record_charge(
                ctx,
                idempotency.as_ref(),
                reservation_id,
                payment_id,
                outcome,
            )
            .await
        })
        .await
    }

    /// Records that a payment is about to be charged; a pending one is reused.
    async fn request_payment(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
    ) -> Result<PaymentId, AppError> {
        let fresh = PaymentId::new();
        self.execute(ctx, None, move || async move {
            let (reservation, details) = self.load_existing_reservation(reservation_id).await?;
            let events = reservation.state.decide(
                ReservationCommand::RequestPayment { payment_id: fresh },
                self.clock.now(),
            )?;
            let payment_id = match details.status {
                ReservationStatus::PaymentPending => details.payment_id.unwrap_or(fresh),
                _ => fresh,
            };
            Ok(Decision {
                completes: true,
                changes: vec![reservation.change(events)],
                outcome: payment_id,
            })
        })
        .await
    }

    /// Records what the provider did with a requested payment, and its consequences:
    /// confirmed seats, released seats, or a refund when the seats are gone or the show
    /// was cancelled.
    ///
    /// This is also how a purchase left pending by a crash or a timeout is finished,
    /// once the provider's answer is known (the sweeper asks it with `find_charge`).
    ///
    /// # Errors
    /// The store's errors; [`AppError::PaymentProvider`] when a needed refund fails.
    pub(crate) async fn record_charge(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        reservation_id: ReservationId,
        payment_id: PaymentId,
        outcome: ChargeOutcome,
    ) -> Result<PaymentResult, AppError> {
        let recorded = match &outcome {
            ChargeOutcome::Declined { reason } => {
                self.record_decline(ctx, idempotency, reservation_id, payment_id, reason)
                    .await
            }
            ChargeOutcome::Captured { reference } => {
                self.settle_capture(
                    ctx,
                    idempotency,
                    reservation_id,
                    payment_id,
                    Some(reference),
                )
                .await
            }
            ChargeOutcome::ActionRequired {
                reference,
                client_secret,
            } => {
                self.record_action_required(
                    ctx,
                    reservation_id,
                    payment_id,
                    reference,
                    client_secret,
                )
                .await
            }
        };
        match recorded {
            // The provider's report of this outcome (a webhook) was recorded first:
            // the answer is the same.
            Err(AppError::Domain(_)) => match self
                .settled_as(reservation_id, payment_id, &outcome)
                .await?
            {
                Some(settled) => Ok(settled),
                None => recorded,
            },
            recorded => recorded,
        }
    }

    /// The result of `payment_id` when the reservation already records `outcome` for
    /// it; `None` otherwise.
    async fn settled_as(
        &self,
        reservation_id: ReservationId,
        payment_id: PaymentId,
        outcome: &ChargeOutcome,
    ) -> Result<Option<PaymentResult>, AppError> {
        let details = self.reservation(reservation_id).await?;
        if details.payment_id != Some(payment_id) {
            return Ok(None);
        }
        Ok(match (details.status, outcome) {
            (
                ReservationStatus::Confirmed,
                ChargeOutcome::Captured { .. } | ChargeOutcome::ActionRequired { .. },
            ) => Some(PaymentResult::Confirmed {
                reservation_id,
                payment_id,
                amount: details.amount,
            }),
            (ReservationStatus::PaymentDeclined, ChargeOutcome::Declined { reason }) => {
                Some(PaymentResult::Declined {
                    reservation_id,
                    payment_id,
                    reason: reason.clone(),
                })
            }
            _ => None,
        })
    }

    /// Finishes a purchase whose capture is recorded (`ReservationPaid`) but that was
    /// neither confirmed nor refunded: the process died between the two, or the refund
    /// went unanswered. It takes the same path as a fresh capture, minus recording it.
    ///
    /// # Errors
    /// As [`Ticketing::record_charge`].
    pub(crate) async fn finish_paid(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
        payment_id: PaymentId,
    ) -> Result<PaymentResult, AppError> {
        self.settle_capture(ctx, None, reservation_id, payment_id, None)
            .await
    }

    /// Records that the provider waits for the customer to authenticate the payment.
    /// The answer carries the client secret, which is not stored (not even as an
    /// idempotent outcome): a retry asks the provider again.
    async fn record_action_required(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
        payment_id: PaymentId,
        reference: &str,
        client_secret: &str,
    ) -> Result<PaymentResult, AppError> {
        self.execute(ctx, None, move || async move {
            let (reservation, details) = self.load_existing_reservation(reservation_id).await?;
            let events = reservation.state.decide(
                ReservationCommand::RecordPaymentActionRequired {
                    payment_id,
                    provider_reference: reference.to_owned(),
                },
                self.clock.now(),
            )?;
            Ok(Decision {
                completes: false,
                changes: vec![reservation.change(events)],
                outcome: PaymentResult::ActionRequired {
                    reservation_id,
                    payment_id,
                    client_secret: client_secret.to_owned(),
                    expires_at: details.expires_at,
                },
            })
        })
        .await
    }

    /// Records a declined charge and puts the seats back on sale, in one transaction.
    async fn record_decline(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        reservation_id: ReservationId,
        payment_id: PaymentId,
        reason: &str,
    ) -> Result<PaymentResult, AppError> {
        self.execute(ctx, idempotency, move || async move {
            let now = self.clock.now();
            let (reservation, details) = self.load_existing_reservation(reservation_id).await?;
            let declined = reservation.state.decide(
                ReservationCommand::RecordPaymentDeclined {
                    payment_id,
                    reason: reason.to_owned(),
                },
                now,
            )?;
            let payment = self.load::<Payment>(&payment_stream(payment_id)).await?;
            let recorded = payment.state.decide(
                PaymentCommand::RecordDecline {
                    payment_id,
                    reservation_id,
                    amount: details.amount,
                    reason: reason.to_owned(),
                },
                now,
            )?;
            let released = self
                .decide_on_shares(&details, now, true, |share| InventoryCommand::Release {
                    reservation_id,
                    quantity: share.quantity,
                    expires_at: details.expires_at,
                    reason: ReleaseReason::PaymentDeclined,
                })
                .await?;
            let mut changes = vec![reservation.change(declined), payment.change(recorded)];
            changes.extend(released);
            Ok(Decision {
                completes: true,
                changes,
                outcome: PaymentResult::Declined {
                    reservation_id,
                    payment_id,
                    reason: reason.to_owned(),
                },
            })
        })
        .await
    }

    /// The one place a captured payment turns into confirmed seats or a refund.
    ///
    /// With a `reference`, the capture is recorded first (the reservation must be
    /// waiting for it); without one, it must already be recorded. If the seats can
    /// still be had and the show is not cancelled, they are confirmed in the same
    /// transaction as the capture; otherwise the capture is recorded alone and the
    /// payment refunded.
    async fn settle_capture(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        reservation_id: ReservationId,
        payment_id: PaymentId,
        reference: Option<&str>,
    ) -> Result<PaymentResult, AppError> {
        let settled = self
            .execute(ctx, idempotency, move || async move {
                let now = self.clock.now();
                let (reservation, details) = self.load_existing_reservation(reservation_id).await?;
                let mut changes = Vec::new();
                let mut reservation_events = match (details.status, reference) {
                    // Captured earlier: only the confirmation or the refund is missing.
                    (ReservationStatus::Paid, _) if details.payment_id == Some(payment_id) => {
                        Vec::new()
                    }
                    (_, Some(reference)) => {
                        let paid = reservation.state.decide(
                            ReservationCommand::RecordPaymentCaptured { payment_id },
                            now,
                        )?;
                        let payment = self.load::<Payment>(&payment_stream(payment_id)).await?;
                        let captured = payment.state.decide(
                            PaymentCommand::RecordCapture {
                                payment_id,
                                reservation_id,
                                amount: details.amount,
                                provider_reference: reference.to_owned(),
                            },
                            now,
                        )?;
                        changes.push(payment.change(captured));
                        paid
                    }
                    // Nothing captured to settle.
                    (status, None) => {
                        return Err(match status {
                            ReservationStatus::Held | ReservationStatus::PaymentPending => {
                                DomainError::NotPaid
                            }
                            ReservationStatus::Paid => DomainError::PaymentMismatch,
                            ReservationStatus::Confirmed => DomainError::AlreadyPaid,
                            closed => DomainError::ReservationClosed(closed),
                        }
                        .into())
                    }
                };
                let outcome = match self.seats_for(&details, now).await? {
                    Seats::Confirmable(seats) => {
                        let paid = reservation.state.clone().fold(&reservation_events);
                        let confirm = paid.decide(ReservationCommand::Confirm, now)?;
                        let confirmed = paid.fold(&confirm);
                        reservation_events.extend(confirm);
                        let (issued, tickets) = self.issue_tickets(&confirmed, now)?;
                        reservation_events.extend(issued);
                        changes.extend(tickets);
                        changes.extend(seats);
                        Settled::Confirmed(PaymentResult::Confirmed {
                            reservation_id,
                            payment_id,
                            amount: details.amount,
                        })
                    }
                    Seats::Refund(refund_reason) => Settled::Refund { refund_reason },
                };
                changes.push(reservation.change(reservation_events));
                Ok(Decision {
                    completes: matches!(outcome, Settled::Confirmed(_)),
                    changes,
                    outcome,
                })
            })
            .await?;
        match settled {
            Settled::Confirmed(confirmed) => self.unless_show_cancelled(ctx, confirmed).await,
            Settled::Refund { refund_reason } => {
                self.refund(ctx, idempotency, payment_id, refund_reason, |amount| {
                    PaymentResult::Refunded {
                        reservation_id,
                        payment_id,
                        amount,
                    }
                })
                .await
            }
        }
    }

    /// Whether a paid reservation's seats can be confirmed at `now`: the section's
    /// change if so, or why the payment must be refunded instead.
    async fn seats_for(
        &self,
        details: &reservation::ReservationDetails,
        now: Timestamp,
    ) -> Result<Seats, AppError> {
        let (_, show) = self.load_existing_show(details.show_id).await?;
        if show.status == SalesStatus::Cancelled {
            return Ok(Seats::Refund(RefundReason::ShowCancelled));
        }
        let confirmed = self
            .decide_on_shares(details, now, true, |share| InventoryCommand::Confirm {
                reservation_id: details.reservation_id,
                quantity: share.quantity,
                expires_at: details.expires_at,
            })
            .await;
        match confirmed {
            Ok(changes) => Ok(Seats::Confirmable(changes)),
            Err(AppError::Domain(DomainError::HoldExpired)) => {
                Ok(Seats::Refund(RefundReason::SeatsUnavailable))
            }
            Err(other) => Err(other),
        }
    }

    /// Refunds a purchase that was just confirmed if its show was cancelled meanwhile.
    ///
    /// The confirmation reads the show without checking its version (that would make
    /// every purchase of a show contend on one stream). A cancellation that commits
    /// between that read and the confirmation's commit is seen here, read after the
    /// commit; one that commits later finds the seats sold when `cancel_show` reads the
    /// sections, and refunds them itself. One of the two always sees the other.
    async fn unless_show_cancelled(
        &self,
        ctx: &CommandContext,
        confirmed: PaymentResult,
    ) -> Result<PaymentResult, AppError> {
        let PaymentResult::Confirmed {
            reservation_id,
            payment_id,
            amount,
        } = confirmed
        else {
            return Ok(confirmed);
        };
        let (_, details) = self.load_existing_reservation(reservation_id).await?;
        let (_, show) = self.load_existing_show(details.show_id).await?;
        if show.status != SalesStatus::Cancelled {
            return Ok(confirmed);
        }
        // No idempotency key: the confirmation already stored the command's record.
        match self
            .refund(
                ctx,
                None,
                payment_id,
                RefundReason::ShowCancelled,
                |amount| amount,
            )
            .await
        {
            // `cancel_show` refunded it first.
            Ok(_) | Err(AppError::Domain(DomainError::AlreadyRefunded)) => {
                Ok(PaymentResult::Refunded {
                    reservation_id,
                    payment_id,
                    amount,
                })
            }
            Err(other) => Err(other),
        }
    }
}
