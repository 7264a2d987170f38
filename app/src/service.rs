//! The use cases: each loads what it decides on, asks the domain, and appends.

use std::sync::Arc;

use chrono::TimeDelta;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use ticketing_bus::EventBus;
use ticketing_domain::payment::PaymentDetails;
use ticketing_domain::show::ShowDetails;
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::command::{CommandContext, Decision, Idempotency, RetryPolicy};
use crate::payments::{
    CardToken, ChargeOutcome, ChargeRequest, PaymentGateway, RefundReceipt, RefundRequest,
};
use crate::repository::{load, Change, Loaded};
use crate::{AppError, Clock};

/// Tunables of the command layer.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long seats stay held for an unpaid reservation.
    pub hold_duration: TimeDelta,
    pub retry: RetryPolicy,
    /// Snapshot a stream every this many events (0: never).
    pub snapshot_every: u64,
    /// How long a command waits for its turn on a section before it answers with
    /// contention. Commands that change a section take turns on it, across processes,
    /// instead of racing for its version.
    pub section_wait: std::time::Duration,
    /// How long a command waits for the bus to acknowledge its events after the
    /// commit before it answers and leaves them to the relay: a broker that is down or
    /// hanging costs a buyer this much, not the bus's own timeout.
    pub publish_budget: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hold_duration: TimeDelta::minutes(10),
            retry: RetryPolicy::default(),
            snapshot_every: 50,
            section_wait: std::time::Duration::from_secs(2),
            publish_budget: std::time::Duration::from_millis(300),
        }
    }
}

/// The command layer: every write of the system goes through here.
pub struct Ticketing {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) payments: Arc<dyn PaymentGateway>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    /// Where appended events are published right after their commit; `None` leaves
    /// them all to the relay.
    pub(crate) bus: Option<Arc<dyn EventBus>>,
    /// The same bus without the breaker: the relay is how the bus is found working
    /// again, so it must not be turned away by the breaker.
    relay_bus: Option<Arc<dyn EventBus>>,
    /// Which buckets of a section this process last saw with free seats.
    pub(crate) bucket_hints: Arc<crate::holds::BucketHints>,
    /// What signs and checks ticket codes; `None`: no ticket is issued.
    pub(crate) ticket_keys: Option<Arc<crate::tickets::codes::TicketKeys>>,
}

/// A request to hold seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSeats {
    pub show_id: ShowId,
    pub section: SectionName,
    pub customer_id: CustomerId,
    pub quantity: Quantity,
}

/// Seats held for a new reservation, to be paid before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSeats {
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub quantity: u32,
    pub amount: Money,
    pub expires_at: Timestamp,
}

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

/// A cancelled reservation, with the refund if it had been paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    pub reservation_id: ReservationId,
    pub refunded: Option<Money>,
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

fn ensure<T>(value: Option<T>, error: DomainError) -> Result<T, AppError> {
    value.ok_or(AppError::Domain(error))
}

impl Ticketing {
    pub fn new(
        store: Arc<dyn EventStore>,
        payments: Arc<dyn PaymentGateway>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            payments: Arc::new(crate::payments::Measured(payments)),
            clock,
            settings,
            bus: None,
            relay_bus: None,
            bucket_hints: Arc::default(),
            ticket_keys: None,
        }
    }

    /// Publishes every command's events to `bus` right after their commit, and marks
    /// them published in the store's outbox. A failed publish does not fail the
    /// command: the events stay in the outbox and the relay publishes them
    /// (`ticketing_bus::relay`).
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        // A command waits for the bus within its publish budget. Behind a breaker, a
        // broker that is down costs the commands in flight their budget until a
        // publish has failed, and then nothing (the relay publishes meanwhile).
        let cool_down = ticketing_bus::CircuitBreaker::<()>::DEFAULT_COOL_DOWN;
        let breaker = ticketing_bus::CircuitBreaker::new(bus.clone(), cool_down);
        self.relay_bus = Some(bus);
        self.bus = Some(Arc::new(breaker));
        self
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Publishes what commands left in the outbox that is older than `grace` (a
    /// function that died between its commit and its publish, a broker that was
    /// down), and returns how many events it published: 0 without a bus. The grace
    /// leaves events of commands still publishing to them; publishing twice would
    /// be harmless, only wasteful. What the scheduled sweeper function runs after its
    /// sweep, so that a deployment without a long-running relay still keeps the
    /// store -> bus guarantee.
    ///
    /// # Errors
    /// [`ticketing_bus::RelayError`] when the outbox cannot be read or the bus refuses;
    /// the events stay in the outbox for the next run.
    pub async fn relay_outbox(
        &self,
        grace: std::time::Duration,
        batch: usize,
    ) -> Result<usize, ticketing_bus::RelayError> {
        let Some(bus) = &self.relay_bus else {
            return Ok(0);
        };
        // Wall-clock time, not the injected clock: the outbox's times are the
        // database's commit times.
        let older_than = chrono::Utc::now()
            - chrono::TimeDelta::from_std(grace).unwrap_or(chrono::TimeDelta::zero());
        ticketing_bus::relay_once(self.store.as_ref(), bus.as_ref(), Some(older_than), batch).await
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, AppError> {
        load::<A>(self.store.as_ref(), stream_id).await
    }

    pub(crate) async fn load_existing_show(
        &self,
        show_id: ShowId,
    ) -> Result<(Loaded<Show>, ShowDetails), AppError> {
        let show = self.load::<Show>(&show_stream(show_id)).await?;
        let details = ensure(show.state.0.clone(), DomainError::ShowNotFound)?;
        Ok((show, details))
    }

    pub(crate) async fn load_existing_reservation(
        &self,
        reservation_id: ReservationId,
    ) -> Result<(Loaded<Reservation>, reservation::ReservationDetails), AppError> {
        let reservation = self
            .load::<Reservation>(&reservation_stream(reservation_id))
            .await?;
        let details = ensure(
            reservation.state.0.clone(),
            DomainError::ReservationNotFound,
        )?;
        Ok((reservation, details))
    }

    /// Creates a show and the inventory of each of its sections, atomically.
    ///
    /// # Errors
    /// [`DomainError::ShowStartsInPast`], or the store's errors.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor))]
    pub async fn create_show(
        &self,
        ctx: &CommandContext,
        organizer_id: OrganizerId,
        plan: ShowPlan,
    ) -> Result<ShowId, AppError> {
        let idempotency = Idempotency::of(ctx, "create_show", &(&organizer_id, &plan));
        self.once(idempotency.as_ref(), async {
            let show_id = ShowId::new();
            let (organizer_id, plan) = (&organizer_id, &plan);
            self.execute(ctx, idempotency.as_ref(), move || async move {
                let now = self.clock.now();
                let show = Loaded::<Show>::empty(show_stream(show_id));
                let created = show.state.decide(
                    ShowCommand::Create {
                        show_id,
                        organizer_id: organizer_id.clone(),
                        plan: plan.clone(),
                    },
                    now,
                )?;
                let mut changes = vec![show.change(created)];
                for spec in &plan.sections {
                    for (bucket, capacity) in (0..).zip(spec.bucket_capacities()) {
                        let inventory =
                            Loaded::<Inventory>::empty(bucket_stream(show_id, &spec.name, bucket));
                        let initialized = inventory.state.decide(
                            InventoryCommand::Initialize {
                                show_id,
                                section: spec.name.clone(),
                                capacity,
                                unit_price: spec.unit_price,
                                max_per_order: plan.max_per_order,
                            },
                            now,
                        )?;
                        changes.push(inventory.change(initialized));
                    }
                }
                Ok(Decision {
                    completes: true,
                    changes,
                    outcome: show_id,
                })
            })
            .await
        })
        .await
    }

    /// Opens, closes or cancels sales of a show.
    ///
    /// Cancelling through this records the cancellation only; [`Ticketing::cancel_show`]
    /// also releases the show's holds and refunds its purchases, and is what callers
    /// should use.
    ///
    /// # Errors
    /// [`DomainError::ShowNotFound`], [`DomainError::SalesAlreadyOpen`],
    /// [`DomainError::SalesNotOpen`], [`DomainError::ShowCancelled`].
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %show_id))]
    pub async fn change_sales(
        &self,
        ctx: &CommandContext,
        show_id: ShowId,
        command: ShowCommand,
    ) -> Result<(), AppError> {
        let idempotency = Idempotency::of(ctx, "change_sales", &(&show_id, &command));
        self.once(idempotency.as_ref(), async {
            let command = &command;
            self.execute(ctx, idempotency.as_ref(), move || async move {
                let show = self.load::<Show>(&show_stream(show_id)).await?;
                let events = show.state.decide(command.clone(), self.clock.now())?;
                Ok(Decision {
                    completes: true,
                    changes: vec![show.change(events)],
                    outcome: (),
                })
            })
            .await
        })
        .await
    }

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
            if let (Some(reference), Some(waiting)) =
                (&details.payment_action_reference, details.payment_id)
            {
                if waiting == payment_id {
                    // The customer was asked to authenticate this payment: where it
                    // stands now is the answer, whichever card this request names.
                    let outcome = self
                        .payments
                        .charge_status(reference)
                        .await
                        .map_err(AppError::PaymentProvider)?;
                    return self
                        .record_charge(
                            ctx,
                            idempotency.as_ref(),
                            reservation_id,
                            payment_id,
                            outcome,
                        )
                        .await;
                }
            }
            let charge = ChargeRequest {
                idempotency_key: payment_id.to_string(),
                amount: details.amount,
                card,
                description: format!(
                    "{} x {} ({})",
                    details.quantity, details.section, details.show_id
                ),
                reservation_id: Some(reservation_id),
            };
            let outcome = self
                .payments
                .charge(charge)
                .await
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

    /// Records that an unpaid hold ran out and puts its seats back on sale.
    ///
    /// # Errors
    /// [`DomainError::HoldNotExpired`], [`DomainError::PaymentInProgress`],
    /// [`DomainError::ReservationClosed`], [`DomainError::ReservationNotFound`].
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %reservation_id))]
    pub async fn expire(
        &self,
        ctx: &CommandContext,
        reservation_id: ReservationId,
    ) -> Result<(), AppError> {
        self.execute(ctx, None, move || async move {
            let now = self.clock.now();
            let (reservation, details) = self.load_existing_reservation(reservation_id).await?;
            let expired = reservation.state.decide(ReservationCommand::Expire, now)?;
            let mut changes = vec![reservation.change(expired)];
            changes.extend(
                self.decide_on_shares(&details, now, true, |share| InventoryCommand::Release {
                    reservation_id,
                    quantity: share.quantity,
                    expires_at: details.expires_at,
                    reason: ReleaseReason::Expired,
                })
                .await?,
            );
            Ok(Decision {
                completes: true,
                changes,
                outcome: (),
            })
        })
        .await
    }

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

impl<A: Aggregate> Loaded<A> {
    /// A stream that must not exist yet.
    pub fn empty(stream_id: String) -> Self {
        Self {
            stream_id,
            state: A::default(),
            version: 0,
            turn: None,
        }
    }
}
