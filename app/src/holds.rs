//! Holding seats (streams: the section's buckets `inventory-…`, and a new
//! `reservation-…`), recording a hold's expiry (the same streams), and moving free
//! seats between a section's buckets.
//!
//! A section's seats are shared out between its escrow buckets, each an inventory
//! stream of its own. A hold takes its turn on one bucket at a time, starting from one
//! this process believes has seats (its [`BucketHints`]) and picked at random among
//! those, so concurrent buyers spread over the buckets instead of queueing on one. A
//! hold goes to the first bucket that has the seats; when no single bucket has them
//! but the buckets together do, the hold is split across buckets and appended in one
//! transaction, taking its turns in bucket order (every command that takes several
//! turns takes them in that order, so none waits on another in a circle). The section
//! is sold out only when no bucket can serve the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use serde::{Deserialize, Serialize};
use ticketing_domain::inventory::expiry_slot;
use ticketing_domain::reservation::ReservationDetails;
use ticketing_domain::*;

use crate::execution::{CommandContext, Decision, Idempotency};
use crate::hold_batches::{BatchContext, Ticket, Verdict};
use crate::known::{KnownShow, Versioned};
use crate::repository::{Change, Loaded};
use crate::{AppError, Ticketing};

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

/// Free seats per bucket as this process last saw them, per section (its first
/// bucket's stream id). Only an ordering hint: a bucket believed empty is still tried,
/// last, and may have had seats released into it since.
#[derive(Debug, Default)]
pub(crate) struct BucketHints {
    sections: Mutex<HashMap<String, Vec<Option<u32>>>>,
}

/// Past this many sections known, the hints start over.
const MAX_HINTED_SECTIONS: usize = 4096;

impl BucketHints {
    /// The order in which to try a section's `buckets`: those believed to have seats
    /// (or not seen yet) first, from a random one on; those believed empty last.
    fn order(&self, section: &str, buckets: u32) -> Vec<u32> {
        let known = self
            .sections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(section)
            .cloned()
            .unwrap_or_default();
        let start = rand::rng().random_range(0..buckets.max(1));
        let rotated = (0..buckets).map(|i| (start + i) % buckets);
        let empty = |b: &u32| known.get(*b as usize).copied().flatten() == Some(0);
        let (mut order, last): (Vec<u32>, Vec<u32>) = rotated.partition(|b| !empty(b));
        order.extend(last);
        order
    }

    fn saw(&self, section: &str, buckets: u32, bucket: u32, free: u32) {
        let mut sections = self
            .sections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sections.len() >= MAX_HINTED_SECTIONS && !sections.contains_key(section) {
            sections.clear();
        }
        let seen = sections.entry(section.to_owned()).or_default();
        seen.resize(buckets as usize, None);
        if let Some(slot) = seen.get_mut(bucket as usize) {
            *slot = Some(free);
        }
    }
}

/// The new reservation of a hold of `request` in `shares` of the section's buckets.
fn placing(
    request: &HoldSeats,
    show: &show::ShowDetails,
    spec: &SectionSpec,
    reservation_id: ReservationId,
    expires_at: Timestamp,
    shares: Vec<BucketShare>,
    now: Timestamp,
) -> Result<Change, AppError> {
    let reservation = Loaded::<Reservation>::empty(reservation_stream(reservation_id));
    let placed = reservation.state.decide(
        ReservationCommand::Place {
            reservation_id,
            show_id: show.show_id,
            section: spec.name.clone(),
            customer_id: request.customer_id.clone(),
            quantity: request.quantity,
            unit_price: spec.unit_price,
            expires_at,
            buckets: shares,
        },
        now,
    )?;
    Ok(reservation.change(placed))
}

/// What a granted hold of `request` answers.
fn held_seats(
    request: &HoldSeats,
    show: &show::ShowDetails,
    spec: &SectionSpec,
    reservation_id: ReservationId,
    expires_at: Timestamp,
) -> Result<HeldSeats, AppError> {
    Ok(HeldSeats {
        reservation_id,
        show_id: show.show_id,
        section: spec.name.clone(),
        quantity: request.quantity.get(),
        amount: spec.unit_price.times(request.quantity.get())?,
        expires_at,
    })
}

/// When no single bucket had the seats (`free` per bucket): `Ok` if the buckets have
/// them together, so the hold may be split across them, else sold out.
fn split_or_sold_out(free: &[u32], quantity: Quantity) -> Result<(), AppError> {
    let total: u32 = free.iter().sum();
    if free.len() <= 1 || total < quantity.get() {
        return Err(DomainError::SoldOut {
            requested: quantity.get(),
            available: total,
        }
        .into());
    }
    Ok(())
}

/// A hold decided on one or several buckets, each loaded in its turn.
struct Taken {
    changes: Vec<Change>,
    shares: Vec<BucketShare>,
}

impl Ticketing {
    /// Holds seats in a section for a new reservation, atomically: the buckets'
    /// `SeatsHeld` and the reservation's `ReservationPlaced` are appended together,
    /// each bucket decided in its turn.
    ///
    /// # Errors
    /// [`DomainError::SoldOut`] (with the seats left in the whole section),
    /// [`DomainError::SalesNotOpen`], [`DomainError::QuantityAboveLimit`],
    /// [`DomainError::UnknownSection`], [`DomainError::ShowNotFound`],
    /// [`AppError::Contention`] when a turn does not come within the section wait.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, show_id = %request.show_id))]
    pub async fn hold_seats(
        &self,
        ctx: &CommandContext,
        request: HoldSeats,
    ) -> Result<HeldSeats, AppError> {
        let idempotency = Idempotency::of(ctx, "hold_seats", &request);
        let held = self
            .once(idempotency.as_ref(), async {
                let reservation_id = ReservationId::new();
                let request = &request;
                if self.holds_join_batches() {
                    let show = self.show_for_hold(request.show_id).await?;
                    let batched = self
                        .hold_in_batches(ctx, idempotency.as_ref(), request, &show, reservation_id)
                        .await?;
                    if let Some(held) = batched {
                        return Ok(held);
                    }
                }
                let mut tried = false;
                self.execute(ctx, idempotency.as_ref(), move || {
                    let retrying = std::mem::replace(&mut tried, true);
                    async move {
                        // The show as the process knows it (unless a batch found it
                        // moved, and forgot it); on a retry after a conflict, which may
                        // have been on the show, as it is now.
                        let known = if retrying {
                            self.load_show_for_holds(request.show_id).await?
                        } else {
                            self.show_for_hold(request.show_id).await?
                        };
                        match self.decide_hold(request, &known, reservation_id).await {
                            // A refusal stands only on the show as it is now.
                            Err(AppError::Domain(_)) if self.show_has_moved(&known).await? => {
                                let current = self.load_show_for_holds(request.show_id).await?;
                                self.decide_hold(request, &current, reservation_id).await
                            }
                            decided => decided,
                        }
                    }
                })
                .await
            })
            .await;
        crate::metrics::hold_answered(&held);
        held
    }

    /// Decides a hold on its own, on `known`: the buckets' seats taken in their turns,
    /// the reservation placed, and the show's stream expected where `known` found it.
    async fn decide_hold(
        &self,
        request: &HoldSeats,
        known: &KnownShow,
        reservation_id: ReservationId,
    ) -> Result<Decision<HeldSeats>, AppError> {
        let show = &known.value;
        let spec = show
            .section(&request.section)
            .ok_or(DomainError::UnknownSection)?;
        let now = self.clock.now();
        let expires_at = self.hold_expiry(now);
        let Taken {
            mut changes,
            shares,
        } = self
            .take_seats(show, spec, reservation_id, request.quantity, expires_at)
            .await?;
        changes.push(placing(
            request,
            show,
            spec,
            reservation_id,
            expires_at,
            shares,
            now,
        )?);
        // The hold commits only on the show it was decided on.
        changes.push(Change::condition(show_stream(show.show_id), known.version));
        Ok(Decision {
            completes: true,
            changes,
            outcome: held_seats(request, show, spec, reservation_id, expires_at)?,
        })
    }

    /// Whether the show's stream has moved past `known`, which is then forgotten.
    async fn show_has_moved(&self, known: &KnownShow) -> Result<bool, AppError> {
        let show_id = known.value.show_id;
        let current = self.store.stream_version(&show_stream(show_id)).await?;
        let moved = current != known.version;
        if moved {
            self.known_shows.forget(&show_id, known.version);
        }
        Ok(moved)
    }

    /// The show a hold decides on: as this process last loaded it
    /// ([`crate::known`]), else loaded now. Whatever the hold appends carries the
    /// show's version, and commits only if the show is still there.
    async fn show_for_hold(&self, show_id: ShowId) -> Result<KnownShow, AppError> {
        match self.known_shows.get(&show_id) {
            Some(known) => Ok(known),
            None => self.load_show_for_holds(show_id).await,
        }
    }

    /// Loads the show afresh, and remembers it for the holds that follow.
    async fn load_show_for_holds(&self, show_id: ShowId) -> Result<KnownShow, AppError> {
        let (loaded, details) = self.load_existing_show(show_id).await?;
        let known = Versioned {
            value: details,
            version: loaded.version,
        };
        self.known_shows.remember(show_id, known.clone());
        Ok(known)
    }

    /// Holds the seats in one bucket through its batch ([`crate::hold_batches`]),
    /// trying the buckets in the order [`Ticketing::take_seats`] does, when holds join
    /// batches ([`Ticketing::holds_join_batches`]). `None` when the hold must run on
    /// its own: no single bucket has the seats though the section does (a split hold),
    /// a batch could not be stored, or the show as `known` (see
    /// [`Ticketing::show_for_hold`]) has changed since (and is forgotten) or lacks the
    /// section.
    async fn hold_in_batches(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        request: &HoldSeats,
        known: &KnownShow,
        reservation_id: ReservationId,
    ) -> Result<Option<HeldSeats>, AppError> {
        let show = &known.value;
        // The lone path refuses a section the show lacks, on the show as it is now.
        let Some(spec) = show.section(&request.section) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let deadline = std::time::Instant::now() + self.settings.section_wait;
        let expires_at = self.hold_expiry(now);
        let quantity = request.quantity;
        let outcome = held_seats(request, show, spec, reservation_id, expires_at)?;
        let record = idempotency.map(|i| i.record(&outcome));
        let context = BatchContext {
            store: Arc::clone(&self.store),
            publisher: Arc::clone(&self.publisher),
            known_buckets: Arc::clone(&self.known_buckets),
            clock: Arc::clone(&self.clock),
            max_batch: self.settings.hold_batch_max,
            snapshot_every: self.settings.snapshot_every,
        };
        let buckets = spec.buckets.max(1);
        let section_key = inventory_stream(show.show_id, &spec.name);
        let mut free = vec![0u32; buckets as usize];
        for bucket in self.bucket_hints.order(&section_key, buckets) {
            let shares = vec![BucketShare {
                bucket,
                quantity: quantity.get(),
            }];
            let reservation =
                placing(request, show, spec, reservation_id, expires_at, shares, now)?;
            let ticket = Ticket {
                hold: InventoryCommand::Hold {
                    reservation_id,
                    quantity,
                    expires_at,
                    sales: show.status,
                },
                reservation,
                show: (show_stream(show.show_id), known.version),
                metadata: ctx.metadata(),
                record: record.clone(),
                deadline,
                span: tracing::Span::current(),
            };
            let stream = bucket_stream(show.show_id, &spec.name, bucket);
            match self.hold_batches.hold(&context, &stream, ticket).await {
                Verdict::Held {
                    publication,
                    available,
                } => {
                    if let Some(idempotency) = idempotency {
                        idempotency.mark_recorded();
                    }
                    self.bucket_hints
                        .saw(&section_key, buckets, bucket, available);
                    publication.wait(self.settings.publish_budget).await;
                    return Ok(Some(outcome));
                }
                Verdict::NotHere { available } => {
                    self.bucket_hints
                        .saw(&section_key, buckets, bucket, available);
                    free[bucket as usize] = available;
                }
                Verdict::Refused(refusal) => return Err(refusal.into()),
                Verdict::ShowMoved => {
                    self.known_shows.forget(&show.show_id, known.version);
                    return Ok(None);
                }
                Verdict::NoTurn => {
                    return Err(AppError::Contention {
                        stream_id: stream,
                        attempts: 1,
                    })
                }
                Verdict::Alone => return Ok(None),
                Verdict::Lost => return Err(AppError::OutcomeUnknown),
            }
        }
        split_or_sold_out(&free, quantity)?;
        Ok(None)
    }

    /// Whether holds join their bucket's batch: `hold_batch_max` 1 runs each alone.
    fn holds_join_batches(&self) -> bool {
        self.settings.hold_batch_max >= 2
    }

    /// When a hold placed at `now` expires: in whole seconds, because a bucket counts
    /// held seats per expiry second.
    fn hold_expiry(&self, now: Timestamp) -> Timestamp {
        expiry_slot(now + self.settings.hold_duration)
    }

    /// Finds the seats: one bucket that has them all, else several that do together.
    async fn take_seats(
        &self,
        show: &show::ShowDetails,
        spec: &SectionSpec,
        reservation_id: ReservationId,
        quantity: Quantity,
        expires_at: Timestamp,
    ) -> Result<Taken, AppError> {
        let buckets = spec.buckets.max(1);
        let section_key = inventory_stream(show.show_id, &spec.name);
        let hold = |quantity| InventoryCommand::Hold {
            reservation_id,
            quantity,
            expires_at,
            sales: show.status,
        };
        let mut free = vec![0u32; buckets as usize];
        for bucket in self.bucket_hints.order(&section_key, buckets) {
            let inventory = self
                .load_buckets_to_change(show.show_id, &spec.name, &[bucket])
                .await?
                .remove(0);
            let now = self.clock.now();
            let available = inventory.state.0.as_ref().map_or(0, |s| s.available(now));
            self.bucket_hints
                .saw(&section_key, buckets, bucket, available);
            match inventory.state.decide(hold(quantity), now) {
                Ok(held) => {
                    self.bucket_hints.saw(
                        &section_key,
                        buckets,
                        bucket,
                        available - quantity.get(),
                    );
                    return Ok(Taken {
                        changes: vec![inventory.change(held)],
                        shares: vec![BucketShare {
                            bucket,
                            quantity: quantity.get(),
                        }],
                    });
                }
                Err(DomainError::SoldOut { available, .. }) => free[bucket as usize] = available,
                Err(other) => return Err(other.into()),
            }
        }
        split_or_sold_out(&free, quantity)?;
        self.take_seats_across_buckets(show, spec, quantity, &free, hold)
            .await
    }

    /// Splits a hold across buckets that each have some of the seats: their turns are
    /// taken in bucket order, and what they have is read again in those turns.
    async fn take_seats_across_buckets(
        &self,
        show: &show::ShowDetails,
        spec: &SectionSpec,
        quantity: Quantity,
        free: &[u32],
        hold: impl Fn(Quantity) -> InventoryCommand,
    ) -> Result<Taken, AppError> {
        let buckets: Vec<u32> = (0u32..)
            .zip(free)
            .filter(|(_, free)| **free > 0)
            .map(|(bucket, _)| bucket)
            .collect();
        let inventories = self
            .load_buckets_to_change(show.show_id, &spec.name, &buckets)
            .await?;
        let inventories = buckets.into_iter().zip(inventories);
        let now = self.clock.now();
        let mut wanted = quantity.get();
        let mut taken = Taken {
            changes: Vec::new(),
            shares: Vec::new(),
        };
        for (bucket, inventory) in inventories {
            let available = inventory.state.0.as_ref().map_or(0, |s| s.available(now));
            let part = available.min(wanted);
            let Ok(part_quantity) = Quantity::new(part) else {
                continue;
            };
            let held = inventory.state.decide(hold(part_quantity), now)?;
            taken.changes.push(inventory.change(held));
            taken.shares.push(BucketShare {
                bucket,
                quantity: part,
            });
            wanted -= part;
            if wanted == 0 {
                return Ok(taken);
            }
        }
        Err(DomainError::SoldOut {
            requested: quantity.get(),
            available: quantity.get() - wanted,
        }
        .into())
    }

    /// Decides `command` for each bucket that holds a reservation's seats (with that
    /// bucket's share), each loaded in its turn when `to_change`, in bucket order.
    pub(crate) async fn decide_on_shares(
        &self,
        details: &ReservationDetails,
        now: Timestamp,
        to_change: bool,
        command: impl Fn(BucketShare) -> InventoryCommand,
    ) -> Result<Vec<Change>, AppError> {
        let shares = details.shares();
        let inventories = if to_change {
            let buckets: Vec<u32> = shares.iter().map(|share| share.bucket).collect();
            self.load_buckets_to_change(details.show_id, &details.section, &buckets)
                .await?
        } else {
            let mut inventories = Vec::new();
            for share in &shares {
                let stream = bucket_stream(details.show_id, &details.section, share.bucket);
                inventories.push(self.load::<Inventory>(&stream).await?);
            }
            inventories
        };
        let mut changes = Vec::new();
        for (share, inventory) in shares.into_iter().zip(inventories) {
            let events = inventory.state.decide(command(share), now)?;
            changes.push(inventory.change(events));
        }
        Ok(changes)
    }

    /// Loads some buckets of a section (in bucket order) to change them together: one
    /// turn, taken on the first and extended to the others, so that the change holds
    /// one database connection however many buckets it spans. The turn travels with
    /// the first bucket's change.
    ///
    /// # Errors
    /// [`AppError::Contention`] when a turn did not come in time.
    pub(crate) async fn load_buckets_to_change(
        &self,
        show_id: ShowId,
        section: &SectionName,
        buckets: &[u32],
    ) -> Result<Vec<Loaded<Inventory>>, AppError> {
        let streams: Vec<String> = buckets
            .iter()
            .map(|bucket| bucket_stream(show_id, section, *bucket))
            .collect();
        let Some((first, others)) = streams.split_first() else {
            return Ok(Vec::new());
        };
        let wait = self.settings.section_wait;
        let waiting = std::time::Instant::now();
        let mut turn = self.store.lock_stream(first, wait).await?;
        for stream in others {
            turn.extend(stream, wait).await?;
        }
        crate::metrics::turn_waited(waiting.elapsed());
        let mut loaded = Vec::with_capacity(streams.len());
        for stream in &streams {
            loaded.push(
                self.known_buckets
                    .load_in_turn(turn.as_mut(), stream)
                    .await?,
            );
        }
        let first = loaded.remove(0).in_turn(turn);
        loaded.insert(0, first);
        Ok(loaded)
    }

    /// Moves free seats between a section's buckets so that each has as many free
    /// seats as the others (give or take one): seats stranded in a few buckets by
    /// releases and expiries can serve any hold again. Every bucket's turn is taken,
    /// in bucket order, for the one transaction that moves the seats.
    ///
    /// Returns how many seats moved.
    ///
    /// # Errors
    /// [`DomainError::ShowNotFound`], [`DomainError::UnknownSection`],
    /// [`AppError::Contention`].
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %show_id))]
    pub async fn rebalance_section(
        &self,
        ctx: &CommandContext,
        show_id: ShowId,
        section: &SectionName,
    ) -> Result<u32, AppError> {
        let idempotency = Idempotency::of(ctx, "rebalance_section", &(&show_id, section));
        self.once(idempotency.as_ref(), async {
            self.execute(ctx, idempotency.as_ref(), move || async move {
                let (_, show) = self.load_existing_show(show_id).await?;
                let spec = show.section(section).ok_or(DomainError::UnknownSection)?;
                let buckets: Vec<u32> = (0..spec.buckets.max(1)).collect();
                let inventories = self
                    .load_buckets_to_change(show_id, &spec.name, &buckets)
                    .await?;
                let states: Vec<Inventory> = inventories.iter().map(|i| i.state.clone()).collect();
                let (events, moves) = evening_out(&states, self.clock.now())?;
                let moved = moves.iter().map(|(_, _, seats)| seats).sum();
                let changes = inventories
                    .iter()
                    .zip(events)
                    .map(|(inventory, events)| inventory.change(events))
                    .collect();
                Ok(Decision {
                    completes: true,
                    changes,
                    outcome: moved,
                })
            })
            .await
        })
        .await
    }
}

/// A section's buckets after [`Ticketing::split_section`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectionBuckets {
    pub section: SectionName,
    pub buckets: u32,
    /// Free seats moved into the new buckets.
    pub moved: u32,
}

impl Ticketing {
    /// Splits a section into more escrow buckets, on sale or not, so that more holds
    /// proceed side by side. The new buckets start empty and the free seats are spread
    /// evenly over all of them, in one transaction taken in a turn on every existing
    /// bucket (holds wait for it, they do not fail); held and sold seats stay in their
    /// buckets. Holds read the bucket count from the show, so they use the new buckets
    /// from the next hold on.
    ///
    /// # Errors
    /// [`DomainError::BucketsNotRaised`] unless `buckets` is more than the section has;
    /// [`DomainError::InvalidBucketCount`] past 64 or the section's seats;
    /// [`DomainError::UnknownSection`], [`DomainError::ShowCancelled`].
    pub async fn split_section(
        &self,
        ctx: &CommandContext,
        show_id: ShowId,
        section: &SectionName,
        buckets: u32,
    ) -> Result<SectionBuckets, AppError> {
        let idempotency = Idempotency::of(ctx, "split_section", &(&show_id, section, buckets));
        self.once(idempotency.as_ref(), async {
            self.execute(ctx, idempotency.as_ref(), move || async move {
                let (show, details) = self.load_existing_show(show_id).await?;
                let spec = details
                    .section(section)
                    .ok_or(DomainError::UnknownSection)?;
                let now = self.clock.now();
                let split = show.state.decide(
                    ShowCommand::SplitSection {
                        section: spec.name.clone(),
                        buckets,
                    },
                    now,
                )?;
                let existing: Vec<u32> = (0..spec.buckets.max(1)).collect();
                let mut inventories = self
                    .load_buckets_to_change(show_id, &spec.name, &existing)
                    .await?;
                let mut events: Vec<Vec<InventoryEvent>> = vec![Vec::new(); inventories.len()];
                for bucket in spec.buckets.max(1)..buckets {
                    let added =
                        Loaded::<Inventory>::empty(bucket_stream(show_id, &spec.name, bucket));
                    events.push(added.state.decide(
                        InventoryCommand::Initialize {
                            show_id,
                            section: spec.name.clone(),
                            capacity: 0,
                            unit_price: spec.unit_price,
                            max_per_order: details.max_per_order,
                        },
                        now,
                    )?);
                    inventories.push(added);
                }
                // What each bucket is once the new ones exist, to decide the moves on.
                let states: Vec<Inventory> = inventories
                    .iter()
                    .zip(&events)
                    .map(|(inventory, events)| inventory.state.clone().fold(events))
                    .collect();
                let (moving, moves) = evening_out(&states, now)?;
                for (events, moving) in events.iter_mut().zip(moving) {
                    events.extend(moving);
                }
                let moved = moves
                    .iter()
                    .filter(|(_, to, _)| *to >= spec.buckets.max(1))
                    .map(|(_, _, seats)| seats)
                    .sum();
                let mut changes = vec![show.change(split)];
                changes.extend(
                    inventories
                        .iter()
                        .zip(events)
                        .map(|(inventory, events)| inventory.change(events)),
                );
                Ok(Decision {
                    completes: true,
                    changes,
                    outcome: SectionBuckets {
                        section: spec.name.clone(),
                        buckets,
                        moved,
                    },
                })
            })
            .await
        })
        .await
    }
}

/// A move of free seats between two buckets: `(from, to, seats)`.
type Move = (u32, u32, u32);

/// The events that leave every bucket of `states` (in bucket order) with as many free
/// seats as the others, give or take one, with the moves they make.
fn evening_out(
    states: &[Inventory],
    now: Timestamp,
) -> Result<(Vec<Vec<InventoryEvent>>, Vec<Move>), DomainError> {
    let free: Vec<u32> = states
        .iter()
        .map(|s| s.0.as_ref().map_or(0, |s| s.available(now)))
        .collect();
    let moves = rebalancing_moves(&free);
    let mut events: Vec<Vec<InventoryEvent>> = vec![Vec::new(); states.len()];
    for &(from, to, seats) in &moves {
        let (from_index, to_index) = (from as usize, to as usize);
        events[from_index].extend(states[from_index].decide(
            InventoryCommand::GiveSeats {
                seats,
                to_bucket: to,
            },
            now,
        )?);
        events[to_index].extend(states[to_index].decide(
            InventoryCommand::TakeSeats {
                seats,
                from_bucket: from,
            },
            now,
        )?);
    }
    Ok((events, moves))
}

/// The moves `(from, to, seats)` that leave every bucket with the same free seats,
/// give or take one (the first buckets keeping the extra ones). Each bucket gives or
/// takes, never both, so a bucket's free seats are checked once.
pub(crate) fn rebalancing_moves(free: &[u32]) -> Vec<Move> {
    let buckets = u32::try_from(free.len()).unwrap_or(u32::MAX);
    if buckets < 2 {
        return Vec::new();
    }
    let total: u64 = free.iter().map(|f| u64::from(*f)).sum();
    let target = |b: u32| {
        let (share, rest) = (total / u64::from(buckets), total % u64::from(buckets));
        u32::try_from(share + u64::from(u64::from(b) < rest)).unwrap_or(u32::MAX)
    };
    let mut surplus: Vec<(u32, u32)> = Vec::new();
    let mut deficit: Vec<(u32, u32)> = Vec::new();
    for (b, f) in (0..buckets).zip(free) {
        let goal = target(b);
        if *f > goal {
            surplus.push((b, f - goal));
        } else if *f < goal {
            deficit.push((b, goal - f));
        }
    }
    let mut moves = Vec::new();
    let (mut s, mut d) = (0, 0);
    while s < surplus.len() && d < deficit.len() {
        let seats = surplus[s].1.min(deficit[d].1);
        moves.push((surplus[s].0, deficit[d].0, seats));
        surplus[s].1 -= seats;
        deficit[d].1 -= seats;
        if surplus[s].1 == 0 {
            s += 1;
        }
        if deficit[d].1 == 0 {
            d += 1;
        }
    }
    moves
}

impl Ticketing {
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
}

#[cfg(test)]
mod tests {
    use super::rebalancing_moves;

    fn after(free: &[u32]) -> Vec<u32> {
        let mut free = free.to_vec();
        for (from, to, seats) in rebalancing_moves(&free) {
            free[from as usize] -= seats;
            free[to as usize] += seats;
        }
        free
    }

    #[test]
    fn rebalancing_evens_out_free_seats_and_moves_none_when_even() {
        assert_eq!(after(&[10, 0, 0, 2]), vec![3, 3, 3, 3]);
        assert_eq!(after(&[0, 0, 1, 4]), vec![2, 1, 1, 1]);
        assert!(rebalancing_moves(&[3, 3, 2]).is_empty());
        assert!(rebalancing_moves(&[7]).is_empty());
        assert_eq!(after(&[0, 5]), vec![3, 2]);
    }
}
