//! The pure fold of a batch: the rows a read-model store loaded, moved on by each
//! event of the batch in its stream's order, and the write that results.
//!
//! Nothing here does I/O: [`BatchFold`] starts from the rows the read-model store
//! loaded and ends with the rows to write. A row is a function of the prefix of its
//! stream applied so far (see `ticketing_read_models::model`), which is what makes the
//! projection idempotent (see [`crate::Projector`]).

use std::collections::{BTreeMap, BTreeSet};

use ticketing_domain::ticket::{Revocation, TicketEvent};
use ticketing_domain::{
    DomainEvent, InventoryEvent, ReservationEvent, ReservationStatus, TicketId,
};
use ticketing_read_models::model::{hour_of, HourDelta};
use ticketing_read_models::{
    BatchWrite, DeadLetter, HourKey, LoadedRows, ReservationView, SalesTotals, SectionHolds,
    SectionView, TicketRevocationView, TicketView,
};
use ticketing_store::{GlobalPosition, RecordedEvent, StreamVersion};

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
    use ticketing_domain::{Currency, Money, ReservationId, SectionName, ShowId, Timestamp};
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
