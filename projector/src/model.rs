//! The read models' rows and the pure fold that moves them on by one event.
//!
//! Every row belongs to exactly one stream: a section's seats and sales to its
//! `inventory-` stream, a purchase in the customer history to its `reservation-`
//! stream, a ticket to its `ticket-` stream, and a ticket's revocation by its
//! purchase's refund or cancellation to that purchase's `reservation-` stream. A row is therefore a function of the prefix of its stream applied so far,
//! which is what makes the projection idempotent (see [`crate::Projector`]). The only
//! rows that several events add to are the hourly sales buckets, and they are written
//! as deltas of newly applied events only.
//!
//! Nothing here does I/O: [`BatchFold`] starts from the rows the read-model store
//! loaded and ends with the rows to write.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DurationRound, TimeDelta};
use serde::{Deserialize, Serialize};
use ticketing_domain::inventory::expiry_slot;
use ticketing_domain::ticket::{Revocation, TicketEvent};
use ticketing_domain::{
    Currency, CustomerId, DomainEvent, InventoryEvent, Money, ReservationEvent, ReservationId,
    ReservationStatus, SectionName, ShowId, TicketId, Timestamp,
};
use ticketing_store::{GlobalPosition, RecordedEvent, StreamVersion};

/// One hold of a section as the read model keeps it: with its expiry, so that a
/// reader decides at its own `now` whether it still counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    pub reservation_id: ReservationId,
    pub quantity: u32,
    pub expires_at: Timestamp,
}

/// A section's row: its seats (`read_section_availability`) and its sales totals
/// (`read_section_sales`), both from the section's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionView {
    pub stream_id: String,
    pub show_id: ShowId,
    pub section: SectionName,
    pub capacity: u32,
    /// Seats sold and not returned.
    pub sold: u32,
    pub unit_price: Money,
    /// Seats in holds neither confirmed nor released, by expiry second.
    pub holds: SectionHolds,
    pub sales: SalesTotals,
}

impl SectionView {
    /// Seats in holds that have not expired at `now`.
    pub fn held_at(&self, now: Timestamp) -> u32 {
        self.holds.held_at(now)
    }
}

/// A section's open holds, counted as the domain counts them (ADR 14): seats per
/// expiry second, so that a row stays as small in a sold-out section of 50,000 seats
/// as in an empty one, and folding a hold costs the same whatever the section holds.
/// A slot that has expired is dropped at the next hold; a hold that ends later finds
/// nothing to take off.
///
/// Holds recorded before schema v3 of `SeatsHeld` (no `held_at`) are also kept one
/// by one (`legacy`): their confirmation or release may be from before schema v2 and
/// not say when they expire, so their own record says which slot to take them off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SectionHolds {
    /// Seats held, by expiry second (`ticketing_domain::inventory::expiry_slot`).
    pub held_until: BTreeMap<Timestamp, u32>,
    /// Holds recorded without `held_at`, by reservation.
    pub legacy: Vec<HoldView>,
}

impl SectionHolds {
    /// Seats in slots that have not expired at `now`.
    pub fn held_at(&self, now: Timestamp) -> u32 {
        self.held_until
            .range(now..)
            .filter(|(slot, _)| **slot > now)
            .map(|(_, seats)| seats)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.held_until.is_empty() && self.legacy.is_empty()
    }

    fn hold(&mut self, hold: &ticketing_domain::inventory::SeatsHeld) {
        match hold.held_at {
            Some(held_at) => self.forget_expired(held_at),
            None => {
                self.legacy
                    .retain(|h| h.reservation_id != hold.reservation_id);
                self.legacy.push(HoldView {
                    reservation_id: hold.reservation_id,
                    quantity: hold.quantity,
                    expires_at: hold.expires_at,
                });
            }
        }
        *self
            .held_until
            .entry(expiry_slot(hold.expires_at))
            .or_default() += hold.quantity;
    }

    /// Takes a confirmed or released hold off its slot.
    fn end(&mut self, reservation_id: ReservationId, quantity: u32, expires_at: Option<Timestamp>) {
        let legacy = self
            .legacy
            .iter()
            .position(|h| h.reservation_id == reservation_id)
            .map(|at| self.legacy.remove(at));
        let (quantity, slot) = match (legacy, expires_at) {
            (Some(hold), _) => (hold.quantity, expiry_slot(hold.expires_at)),
            (None, Some(expires_at)) => (quantity, expiry_slot(expires_at)),
            // Ended before v2 and held before v3: nothing of it is counted.
            (None, None) => return,
        };
        if let Some(seats) = self.held_until.get_mut(&slot) {
            *seats = seats.saturating_sub(quantity);
            if *seats == 0 {
                self.held_until.remove(&slot);
            }
        }
    }

    /// Drops the slots, and the legacy holds, that had expired at `instant`.
    fn forget_expired(&mut self, instant: Timestamp) {
        let mut later = self.held_until.split_off(&instant);
        later.remove(&instant);
        self.held_until = later;
        self.legacy
            .retain(|hold| expiry_slot(hold.expires_at) > instant);
    }

    /// Holds stored one by one, as rows written before the slots were: each is legacy
    /// (its end takes it off by its own record) and counted in its slot.
    pub(crate) fn from_holds(holds: Vec<HoldView>) -> Self {
        let mut held_until = BTreeMap::new();
        for hold in &holds {
            *held_until.entry(expiry_slot(hold.expires_at)).or_default() += hold.quantity;
        }
        Self {
            held_until,
            legacy: holds,
        }
    }
}

/// How [`SectionHolds`] is stored in JSON (the SQL read models' `holds` column).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredHolds {
    Slots {
        held_until: Vec<(Timestamp, u32)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        legacy: Vec<HoldView>,
    },
    /// Rows written before the slots: every open hold.
    Holds(Vec<HoldView>),
}

impl Serialize for SectionHolds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredHolds::Slots {
            held_until: self
                .held_until
                .iter()
                .map(|(slot, seats)| (*slot, *seats))
                .collect(),
            legacy: self.legacy.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SectionHolds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match StoredHolds::deserialize(deserializer)? {
            StoredHolds::Slots { held_until, legacy } => Self {
                held_until: held_until.into_iter().collect(),
                legacy,
            },
            StoredHolds::Holds(holds) => Self::from_holds(holds),
        })
    }
}

/// Tickets and money of a section (or of an hour of it), in the section's currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesTotals {
    /// Seats confirmed minus seats returned.
    pub tickets_sold: i64,
    /// Value of every seat ever confirmed, at the section's unit price.
    pub gross_minor: i64,
    /// How many times sold seats were returned (one per refunded purchase).
    pub refunds_count: i64,
    /// Value of the returned seats.
    pub refunds_minor: i64,
}

impl SalesTotals {
    /// Adds `other`'s figures to these.
    pub(crate) fn add(&mut self, other: SalesTotals) {
        self.tickets_sold += other.tickets_sold;
        self.gross_minor += other.gross_minor;
        self.refunds_count += other.refunds_count;
        self.refunds_minor += other.refunds_minor;
    }
}

/// The key of an hourly sales bucket: show, section and the hour (truncated
/// `recorded_at` of the events).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HourKey {
    pub show_id: String,
    pub section: String,
    pub hour: Timestamp,
}

/// The hourly bucket an instant falls in: the hour it starts in.
pub(crate) fn hour_of(at: Timestamp) -> Timestamp {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// What a batch adds to one hourly bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourDelta {
    pub currency: Currency,
    pub totals: SalesTotals,
}

/// A purchase in the customer history (`read_customer_reservations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationView {
    pub stream_id: String,
    pub reservation_id: ReservationId,
    pub customer_id: CustomerId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub quantity: u32,
    pub amount: Money,
    pub state: ReservationStatus,
    pub placed_at: Timestamp,
    pub expires_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub refunded_at: Option<Timestamp>,
    /// When the purchase last changed (the instant its last event carries).
    pub updated_at: Timestamp,
    /// Its tickets, once issued, in seat order: what its refund or cancellation
    /// revokes.
    #[serde(default)]
    pub ticket_ids: Vec<TicketId>,
}

/// A ticket as its own stream describes it (`read_tickets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    pub stream_id: String,
    pub ticket_id: TicketId,
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    /// The buyer, or whoever it was last transferred to.
    pub holder: CustomerId,
    /// The generation of its current code: 0 when issued, one more per transfer.
    pub generation: u32,
    /// Since when its holder holds it: its issue, or its last transfer.
    pub held_since: Timestamp,
    /// The scan that let it in (the earliest, once late uploads are in).
    pub admitted_at: Option<Timestamp>,
    pub gate: Option<String>,
    /// When it last changed (the instant its last event carries).
    pub updated_at: Timestamp,
}

/// A ticket revoked by its purchase's refund or cancellation
/// (`read_ticket_revocations`): a row of the purchase's stream, written when the
/// purchase ends, whether or not the ticket's own row is projected yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRevocationView {
    /// The purchase's stream, which the row belongs to.
    pub stream_id: String,
    pub ticket_id: TicketId,
    pub reservation_id: ReservationId,
    pub show_id: ShowId,
    pub section: SectionName,
    pub reason: Revocation,
    pub revoked_at: Timestamp,
}

/// The stored rows a batch starts from: those of the batch's streams.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedRows {
    pub sections: Vec<SectionView>,
    pub reservations: Vec<ReservationView>,
    pub tickets: Vec<TicketView>,
}

/// An event the projector could not decode, kept for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub stream_id: String,
    pub version: StreamVersion,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: serde_json::Value,
    pub error: String,
}

/// Everything one batch writes, in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchWrite {
    /// Each touched section once, in its final state for the batch.
    pub sections: Vec<SectionView>,
    /// Each touched purchase once.
    pub reservations: Vec<ReservationView>,
    /// Each touched ticket once.
    pub tickets: Vec<TicketView>,
    /// Tickets revoked by the purchases of this batch (written again, they change
    /// nothing).
    pub revocations: Vec<TicketRevocationView>,
    /// Additions to hourly buckets.
    pub hours: Vec<(HourKey, HourDelta)>,
    /// `(stream, applied before, applied after)` for every stream that moved on: the
    /// store refuses the write if another writer moved a stream first.
    pub applied: Vec<(String, StreamVersion, StreamVersion)>,
    pub dead_letters: Vec<DeadLetter>,
    /// A reader of the global order records how far it got, in the same transaction.
    pub checkpoint: Option<(String, GlobalPosition)>,
}

/// The in-memory fold of one batch: rows as loaded, moved on event by event.
#[derive(Debug, Default)]
pub struct BatchFold {
    sections: BTreeMap<String, SectionView>,
    reservations: BTreeMap<String, ReservationView>,
    tickets: BTreeMap<String, TicketView>,
    /// By ticket: a purchase revoked twice in one batch writes its last word once.
    revocations: BTreeMap<TicketId, TicketRevocationView>,
    hours: BTreeMap<HourKey, HourDelta>,
    applied_before: BTreeMap<String, StreamVersion>,
    applied: BTreeMap<String, StreamVersion>,
    touched: BTreeSet<String>,
    dead_letters: Vec<DeadLetter>,
}

impl BatchFold {
    /// Starts from the stored rows and applied versions of the batch's streams.
    pub fn new(rows: LoadedRows, applied: BTreeMap<String, StreamVersion>) -> Self {
        Self {
            sections: rows
                .sections
                .into_iter()
                .map(|s| (s.stream_id.clone(), s))
                .collect(),
            reservations: rows
                .reservations
                .into_iter()
                .map(|r| (r.stream_id.clone(), r))
                .collect(),
            tickets: rows
                .tickets
                .into_iter()
                .map(|t| (t.stream_id.clone(), t))
                .collect(),
            applied_before: applied.clone(),
            applied,
            ..Self::default()
        }
    }

    /// The last version of `stream_id` applied so far (0 for none).
    pub fn applied_version(&self, stream_id: &str) -> StreamVersion {
        self.applied.get(stream_id).copied().unwrap_or(0)
    }

    /// Applies the next event of its stream, and says whether it did.
    ///
    /// Only the event right after the stream's applied version is applied; any other
    /// (a duplicate, or one beyond a gap) is refused and changes nothing: ordering and
    /// gap filling are the caller's job ([`crate::Projector::apply_batch`]). An event
    /// that cannot be decoded becomes a dead letter and still counts as applied, so
    /// that its stream is not stuck behind it.
    pub fn apply(&mut self, event: &RecordedEvent) -> bool {
        if event.version != self.applied_version(&event.stream_id) + 1 {
            return false;
        }
        self.applied.insert(event.stream_id.clone(), event.version);
        self.touched.insert(event.stream_id.clone());
        match DomainEvent::decode(&event.event_type, event.schema_version, event.data.clone()) {
            Ok(DomainEvent::Inventory(e)) => self.apply_inventory(event, e),
            Ok(DomainEvent::Reservation(e)) => self.apply_reservation(&event.stream_id, e),
            Ok(DomainEvent::Ticket(e)) => self.apply_ticket(&event.stream_id, e),
            // Shows and payments have no read model of their own: a section's seats
            // and sales come from its stream, purchases from theirs.
            Ok(DomainEvent::Show(_) | DomainEvent::Payment(_)) => {}
            Err(error) => self.dead_letters.push(DeadLetter {
                stream_id: event.stream_id.clone(),
                version: event.version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                payload: event.data.clone(),
                error: error.to_string(),
            }),
        }
        true
    }

    fn apply_inventory(&mut self, recorded: &RecordedEvent, event: InventoryEvent) {
        let stream_id = &recorded.stream_id;
        if let InventoryEvent::SectionInitialized(e) = &event {
            self.sections.insert(
                stream_id.clone(),
                SectionView {
                    stream_id: stream_id.clone(),
                    show_id: e.show_id,
                    section: e.section.clone(),
                    capacity: e.capacity,
                    sold: 0,
                    unit_price: e.unit_price,
                    holds: SectionHolds::default(),
                    sales: SalesTotals::default(),
                },
            );
            return;
        }
        // Any other event before the section was initialised cannot happen in a
        // stream the domain wrote; it changes nothing.
        let Some(view) = self.sections.get_mut(stream_id) else {
            return;
        };
        let price = view.unit_price.amount_minor;
        let mut delta = SalesTotals::default();
        match event {
            InventoryEvent::SectionInitialized(_) => {}
            InventoryEvent::SeatsHeld(e) => view.holds.hold(&e),
            InventoryEvent::SeatsConfirmed(e) => {
                view.holds.end(e.reservation_id, e.quantity, e.expires_at);
                view.sold += e.quantity;
                delta.tickets_sold = i64::from(e.quantity);
                delta.gross_minor = i64::from(e.quantity) * price;
            }
            InventoryEvent::SeatsReleased(e) => {
                view.holds.end(e.reservation_id, e.quantity, e.expires_at);
            }
            InventoryEvent::SeatsReturned(e) => {
                view.sold = view.sold.saturating_sub(e.quantity);
                delta.tickets_sold = -i64::from(e.quantity);
                delta.refunds_count = 1;
                delta.refunds_minor = i64::from(e.quantity) * price;
            }
            // Seats moved between a section's buckets: each bucket's view keeps its
            // own capacity; the section's is their sum.
            InventoryEvent::SeatsMovedOut(e) => {
                view.capacity = view.capacity.saturating_sub(e.seats);
            }
            InventoryEvent::SeatsMovedIn(e) => {
                view.capacity = view.capacity.saturating_add(e.seats);
            }
        }
        if delta == SalesTotals::default() {
            return;
        }
        view.sales.add(delta);
        let hour = hour_of(recorded.recorded_at);
        let key = HourKey {
            show_id: view.show_id.0.to_string(),
            section: view.section.as_str().to_owned(),
            hour,
        };
        let currency = view.unit_price.currency;
        self.hours
            .entry(key)
            .or_insert(HourDelta {
                currency,
                totals: SalesTotals::default(),
            })
            .totals
            .add(delta);
    }

    fn apply_reservation(&mut self, stream_id: &str, event: ReservationEvent) {
        if let ReservationEvent::ReservationPlaced(e) = &event {
            self.reservations.insert(
                stream_id.to_owned(),
                ReservationView {
                    stream_id: stream_id.to_owned(),
                    reservation_id: e.reservation_id,
                    customer_id: e.customer_id.clone(),
                    show_id: e.show_id,
                    section: e.section.clone(),
                    quantity: e.quantity,
                    amount: e.amount,
                    state: ReservationStatus::Held,
                    placed_at: e.placed_at,
                    expires_at: e.expires_at,
                    paid_at: None,
                    refunded_at: None,
                    updated_at: e.placed_at,
                    ticket_ids: Vec::new(),
                },
            );
            return;
        }
        let Some(view) = self.reservations.get_mut(stream_id) else {
            return;
        };
        use ReservationStatus as S;
        let (state, at) = match event {
            ReservationEvent::ReservationPlaced(_) => return,
            ReservationEvent::TicketsIssued(e) => {
                view.ticket_ids = e.tickets;
                return;
            }
            ReservationEvent::PaymentRequested(e) => (S::PaymentPending, e.requested_at),
            // Still pending: the customer is authenticating the payment.
            ReservationEvent::PaymentActionRequired(_) => return,
            ReservationEvent::ReservationPaid(e) => {
                view.paid_at = Some(e.paid_at);
                (S::Paid, e.paid_at)
            }
            ReservationEvent::ReservationConfirmed(e) => (S::Confirmed, e.confirmed_at),
            ReservationEvent::ReservationExpired(e) => (S::Expired, e.expired_at),
            ReservationEvent::ReservationCancelled(e) => (S::Cancelled, e.cancelled_at),
            ReservationEvent::ReservationPaymentDeclined(e) => (S::PaymentDeclined, e.declined_at),
            ReservationEvent::ReservationRefunded(e) => {
                view.refunded_at = Some(e.refunded_at);
                (S::Refunded, e.refunded_at)
            }
        };
        view.state = state;
        view.updated_at = at;
        if let Some(reason) = Revocation::of_purchase(state) {
            for &ticket_id in &view.ticket_ids {
                self.revocations.insert(
                    ticket_id,
                    TicketRevocationView {
                        stream_id: stream_id.to_owned(),
                        ticket_id,
                        reservation_id: view.reservation_id,
                        show_id: view.show_id,
                        section: view.section.clone(),
                        reason,
                        revoked_at: at,
                    },
                );
            }
        }
    }

    fn apply_ticket(&mut self, stream_id: &str, event: TicketEvent) {
        if let TicketEvent::TicketIssued(e) = event {
            self.tickets.insert(
                stream_id.to_owned(),
                TicketView {
                    stream_id: stream_id.to_owned(),
                    ticket_id: e.ticket_id,
                    reservation_id: e.reservation_id,
                    show_id: e.show_id,
                    section: e.section,
                    holder: e.holder,
                    generation: e.generation,
                    held_since: e.issued_at,
                    admitted_at: None,
                    gate: None,
                    updated_at: e.issued_at,
                },
            );
            return;
        }
        let Some(view) = self.tickets.get_mut(stream_id) else {
            return;
        };
        match event {
            TicketEvent::TicketIssued(_) => {}
            TicketEvent::TicketAdmitted(e) => {
                view.admitted_at = Some(e.scanned_at);
                view.gate = e.gate;
                view.updated_at = e.recorded_at;
            }
            TicketEvent::TicketAdmissionBackdated(e) => {
                view.admitted_at = Some(e.scanned_at);
                view.gate = e.gate;
                view.updated_at = e.recorded_at;
            }
            TicketEvent::TicketTransferred(e) => {
                view.holder = e.to;
                view.generation = e.generation;
                view.held_since = e.transferred_at;
                view.updated_at = e.transferred_at;
            }
        }
    }

    /// The rows to write: each touched row once, the hourly deltas, the streams'
    /// new applied versions and the dead letters.
    pub fn finish(self, checkpoint: Option<(String, GlobalPosition)>) -> BatchWrite {
        let applied = self.moved_on();
        let touched = &self.touched;
        BatchWrite {
            sections: self
                .sections
                .into_values()
                .filter(|s| touched.contains(&s.stream_id))
                .collect(),
            reservations: self
                .reservations
                .into_values()
                .filter(|r| touched.contains(&r.stream_id))
                .collect(),
            tickets: self
                .tickets
                .into_values()
                .filter(|t| touched.contains(&t.stream_id))
                .collect(),
            revocations: self.revocations.into_values().collect(),
            hours: self.hours.into_iter().collect(),
            applied,
            dead_letters: self.dead_letters,
            checkpoint,
        }
    }

    /// What [`Self::finish`] would write so far, after which the fold goes on from
    /// there: the next write holds the rows touched since (in their state then),
    /// only the deltas added since, and the applied versions moved on from this
    /// write's. What a batch written in several parts is made of.
    pub fn take_write(&mut self, checkpoint: Option<(String, GlobalPosition)>) -> BatchWrite {
        let applied = self.moved_on();
        self.applied_before.clone_from(&self.applied);
        let touched = std::mem::take(&mut self.touched);
        BatchWrite {
            sections: self
                .sections
                .values()
                .filter(|s| touched.contains(&s.stream_id))
                .cloned()
                .collect(),
            reservations: self
                .reservations
                .values()
                .filter(|r| touched.contains(&r.stream_id))
                .cloned()
                .collect(),
            tickets: self
                .tickets
                .values()
                .filter(|t| touched.contains(&t.stream_id))
                .cloned()
                .collect(),
            revocations: std::mem::take(&mut self.revocations)
                .into_values()
                .collect(),
            hours: std::mem::take(&mut self.hours).into_iter().collect(),
            applied,
            dead_letters: std::mem::take(&mut self.dead_letters),
            checkpoint,
        }
    }

    /// `(stream, applied before, applied now)` of every stream that moved on.
    fn moved_on(&self) -> Vec<(String, StreamVersion, StreamVersion)> {
        self.applied
            .iter()
            .filter_map(|(stream, &after)| {
                let before = self.applied_before.get(stream).copied().unwrap_or(0);
                (after > before).then(|| (stream.clone(), before, after))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use ticketing_domain::inventory::{
        SeatsConfirmed, SeatsHeld, SeatsReturned, SectionInitialized,
    };
    use ticketing_domain::EventPayload;
    use uuid::Uuid;

    use super::*;

    fn at(hour: u32, minute: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 6, 1, hour, minute, 0).unwrap()
    }

    fn recorded(version: StreamVersion, event: &InventoryEvent, minute: u32) -> RecordedEvent {
        let encoded = event.encode();
        RecordedEvent {
            global_position: GlobalPosition {
                transaction_id: version as i64,
                position: version as i64,
            },
            stream_id: "inventory-s-Floor".into(),
            version,
            event_id: Uuid::new_v4(),
            event_type: encoded.event_type,
            schema_version: encoded.schema_version,
            data: encoded.data,
            metadata: Default::default(),
            recorded_at: at(12, minute),
        }
    }

    fn section_events() -> Vec<RecordedEvent> {
        let show_id = ShowId(Uuid::nil());
        let reservation_id = ReservationId(Uuid::from_u128(7));
        let events = [
            InventoryEvent::SectionInitialized(SectionInitialized {
                show_id,
                section: SectionName::parse("Floor").unwrap(),
                capacity: 10,
                unit_price: Money::unit_price(4_500, Currency::parse("EUR").unwrap()).unwrap(),
                max_per_order: 10,
            }),
            InventoryEvent::SeatsHeld(SeatsHeld {
                reservation_id,
                quantity: 3,
                expires_at: at(12, 10),
                held_at: Some(at(12, 0)),
            }),
            InventoryEvent::SeatsConfirmed(SeatsConfirmed {
                reservation_id,
                quantity: 3,
                expires_at: Some(at(12, 10)),
            }),
            InventoryEvent::SeatsReturned(SeatsReturned {
                reservation_id,
                quantity: 3,
            }),
        ];
        events
            .iter()
            .zip(1..)
            .map(|(e, version)| recorded(version, e, version as u32))
            .collect()
    }

    #[test]
    fn a_refunded_sale_counts_in_gross_and_refunds_but_not_in_tickets_sold() {
        let mut fold = BatchFold::default();
        for event in &section_events()[..2] {
            assert!(fold.apply(event));
        }
        let held = fold.finish(None);
        assert_eq!(held.sections[0].held_at(at(12, 5)), 3);
        assert_eq!(
            held.sections[0].held_at(at(12, 10)),
            0,
            "expired at its instant"
        );

        let mut fold = BatchFold::default();
        for event in &section_events() {
            assert!(fold.apply(event));
        }
        let write = fold.finish(None);
        let section = &write.sections[0];
        assert!(section.holds.is_empty());
        assert_eq!(section.sold, 0);
        assert_eq!(
            section.sales,
            SalesTotals {
                tickets_sold: 0,
                gross_minor: 13_500,
                refunds_count: 1,
                refunds_minor: 13_500,
            }
        );
        assert_eq!(write.hours.len(), 1, "both in the 12:00 bucket");
        assert_eq!(write.applied, vec![("inventory-s-Floor".into(), 0, 4)]);
    }

    fn held(
        reservation: u128,
        quantity: u32,
        expires_at: Timestamp,
        held_at: Option<Timestamp>,
    ) -> SeatsHeld {
        SeatsHeld {
            reservation_id: ReservationId(Uuid::from_u128(reservation)),
            quantity,
            expires_at,
            held_at,
        }
    }

    #[test]
    fn a_section_s_holds_take_one_slot_per_expiry_second_however_many_there_are() {
        let mut holds = SectionHolds::default();
        for reservation in 0..10_000 {
            holds.hold(&held(reservation, 2, at(12, 10), Some(at(12, 0))));
        }
        holds.hold(&held(10_000, 1, at(12, 11), Some(at(12, 1))));
        assert_eq!(holds.held_until.len(), 2);
        assert_eq!(holds.held_at(at(12, 5)), 20_001);
        holds.end(ReservationId(Uuid::from_u128(3)), 2, Some(at(12, 10)));
        assert_eq!(holds.held_at(at(12, 5)), 19_999);
        assert_eq!(
            holds.held_at(at(12, 10)),
            1,
            "the 12:10 slot has expired at 12:10"
        );

        // The next hold drops the slots that had expired when it was decided; a hold
        // of an expired slot that ends afterwards takes nothing off.
        holds.hold(&held(10_001, 4, at(12, 20), Some(at(12, 10))));
        assert_eq!(holds.held_until.len(), 2);
        holds.end(ReservationId(Uuid::from_u128(4)), 2, Some(at(12, 10)));
        assert_eq!(holds.held_at(at(12, 10)), 5);
        assert!(holds.legacy.is_empty());
    }

    #[test]
    fn a_hold_from_before_held_at_ends_by_its_own_record_even_when_its_end_has_no_expiry() {
        let mut holds = SectionHolds::default();
        holds.hold(&held(1, 3, at(12, 10), None));
        holds.hold(&held(2, 2, at(12, 10), Some(at(12, 0))));
        assert_eq!(holds.held_at(at(12, 5)), 5);
        // A release from before schema v2 says nothing of the expiry.
        holds.end(ReservationId(Uuid::from_u128(1)), 3, None);
        assert_eq!(holds.held_at(at(12, 5)), 2);
        assert!(holds.legacy.is_empty());
        // Neither a v3 hold nor an expiry: nothing of it was counted.
        holds.end(ReservationId(Uuid::from_u128(9)), 7, None);
        assert_eq!(holds.held_at(at(12, 5)), 2);
    }

    #[test]
    fn holds_are_stored_as_slots_and_rows_written_before_the_slots_still_read() {
        let mut holds = SectionHolds::default();
        holds.hold(&held(1, 3, at(12, 10), None));
        holds.hold(&held(2, 2, at(12, 10), Some(at(12, 0))));
        let stored = serde_json::to_value(&holds).unwrap();
        assert_eq!(stored["held_until"], json!([["2026-06-01T12:10:00Z", 5]]));
        assert_eq!(
            serde_json::from_value::<SectionHolds>(stored).unwrap(),
            holds
        );

        // A row of the read model as it was stored before: every open hold.
        let before = json!([
            {"reservation_id": Uuid::from_u128(1), "quantity": 3, "expires_at": "2026-06-01T12:10:00Z"},
            {"reservation_id": Uuid::from_u128(2), "quantity": 2, "expires_at": "2026-06-01T12:11:00Z"},
        ]);
        let mut read: SectionHolds = serde_json::from_value(before).unwrap();
        assert_eq!(read.held_at(at(12, 5)), 5);
        read.end(ReservationId(Uuid::from_u128(2)), 2, None);
        assert_eq!(read.held_at(at(12, 5)), 3, "ended by its stored record");
    }

    #[test]
    fn only_the_next_version_of_a_stream_is_applied() {
        let events = section_events();
        let mut fold = BatchFold::default();
        assert!(!fold.apply(&events[1]), "a gap");
        assert!(fold.apply(&events[0]));
        assert!(!fold.apply(&events[0]), "a duplicate");
        assert_eq!(fold.applied_version("inventory-s-Floor"), 1);
    }

    #[test]
    fn an_undecodable_event_is_dead_lettered_and_counts_as_applied() {
        let mut events = section_events();
        events[1].event_type = "SeatsTeleported".into();
        events[2].data = json!({ "nonsense": true });
        let mut fold = BatchFold::default();
        for event in &events {
            assert!(fold.apply(event));
        }
        let write = fold.finish(None);
        assert_eq!(write.dead_letters.len(), 2);
        assert_eq!(write.applied, vec![("inventory-s-Floor".into(), 0, 4)]);
    }
}
