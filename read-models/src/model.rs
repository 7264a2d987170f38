//! The read models' rows: what a read-model store loads for a batch, what it writes
//! back, and what it keeps per stream.
//!
//! Every row belongs to exactly one stream: a section's seats and sales to its
//! `inventory-` stream, a purchase in the customer history to its `reservation-`
//! stream, a ticket to its `ticket-` stream, and a ticket's revocation by its
//! purchase's refund or cancellation to that purchase's `reservation-` stream. A row is
//! therefore a function of the prefix of its stream applied so far, which is what makes
//! the projection idempotent. The only rows that several events add to are the hourly
//! sales buckets, and they are written as deltas of newly applied events only.
//!
//! The fold that moves the rows on event by event is the projector's
//! (`ticketing_projector::BatchFold`); [`SectionHolds`] keeps here the rules by which a
//! hold takes and leaves its slot, because they also read rows stored before the slots.

use std::collections::BTreeMap;

use chrono::{DurationRound, TimeDelta};
use serde::{Deserialize, Serialize};
use ticketing_domain::inventory::{expiry_slot, SeatsHeld};
use ticketing_domain::ticket::Revocation;
use ticketing_domain::{
    Currency, CustomerId, Money, ReservationId, ReservationStatus, SectionName, ShowId, TicketId,
    Timestamp,
};
use ticketing_store::{GlobalPosition, StreamVersion};

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

    /// Counts a hold in its expiry slot. A hold that says when it was decided first
    /// drops the slots that had expired by then; one recorded without `held_at` is
    /// also kept as a legacy hold.
    pub fn hold(&mut self, hold: &SeatsHeld) {
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

    /// Takes a confirmed or released hold off its slot: a legacy hold by its own
    /// record, any other by `expires_at` (nothing when the end does not say).
    pub fn end(
        &mut self,
        reservation_id: ReservationId,
        quantity: u32,
        expires_at: Option<Timestamp>,
    ) {
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
    pub fn add(&mut self, other: SalesTotals) {
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
pub fn hour_of(at: Timestamp) -> Timestamp {
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use ticketing_domain::inventory::SeatsHeld;
    use uuid::Uuid;

    use super::*;

    fn at(hour: u32, minute: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 6, 1, hour, minute, 0).unwrap()
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
}
