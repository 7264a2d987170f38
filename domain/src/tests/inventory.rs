use super::*;
use crate::inventory::*;

pub(crate) fn initialized(show_id: ShowId, capacity: u32) -> InventoryEvent {
    InventoryEvent::SectionInitialized(SectionInitialized {
        show_id,
        section: section("Floor"),
        capacity,
        unit_price: eur(4_500),
        max_per_order: 6,
    })
}

fn held(reservation_id: ReservationId, quantity: u32, expires_at: Timestamp) -> InventoryEvent {
    InventoryEvent::SeatsHeld(SeatsHeld {
        reservation_id,
        quantity,
        expires_at,
        held_at: Some(t0()),
    })
}

/// A hold as recorded before `SeatsHeld` v3: no decision instant.
fn held_before_v3(
    reservation_id: ReservationId,
    quantity: u32,
    expires_at: Timestamp,
) -> InventoryEvent {
    InventoryEvent::SeatsHeld(SeatsHeld {
        reservation_id,
        quantity,
        expires_at,
        held_at: None,
    })
}

fn confirm(
    reservation_id: ReservationId,
    quantity: u32,
    expires_at: Timestamp,
) -> InventoryCommand {
    InventoryCommand::Confirm {
        reservation_id,
        quantity,
        expires_at,
    }
}

fn release(
    reservation_id: ReservationId,
    quantity: u32,
    expires_at: Timestamp,
    reason: ReleaseReason,
) -> InventoryCommand {
    InventoryCommand::Release {
        reservation_id,
        quantity,
        expires_at,
        reason,
    }
}

fn hold(reservation_id: ReservationId, quantity: u32) -> InventoryCommand {
    InventoryCommand::Hold {
        reservation_id,
        quantity: qty(quantity),
        expires_at: t0() + minutes(10),
        sales: SalesStatus::OnSale,
    }
}

#[test]
fn initializing_a_section_twice_is_refused() {
    let show = ShowId::new();
    let command = InventoryCommand::Initialize {
        show_id: show,
        section: section("Floor"),
        capacity: 10,
        unit_price: eur(100),
        max_per_order: 4,
    };
    assert!(given::<Inventory>(&[])
        .decide(command.clone(), t0())
        .is_ok());
    assert_eq!(
        given::<Inventory>(&[initialized(show, 10)])
            .decide(command, t0())
            .unwrap_err(),
        DomainError::SectionAlreadyInitialized
    );
}

#[test]
fn holding_seats_records_the_hold_with_its_expiry() {
    let r = ReservationId::new();
    let state = given::<Inventory>(&[initialized(ShowId::new(), 10)]);
    let events = state.decide(hold(r, 2), t0()).unwrap();
    assert_eq!(events, vec![held(r, 2, t0() + minutes(10))]);
    let InventoryEvent::SeatsHeld(e) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(e.held_at, Some(t0()));
    let after = state.evolve(&events[0]).0.unwrap();
    assert_eq!(after.available(t0()), 8);
    assert_eq!(after.held_count(t0()), 2);
}

#[test]
fn hold_is_rejected_when_section_is_sold_out() {
    let history = [
        initialized(ShowId::new(), 3),
        held(ReservationId::new(), 2, t0() + minutes(10)),
    ];
    let err = given::<Inventory>(&history)
        .decide(hold(ReservationId::new(), 2), t0())
        .unwrap_err();
    assert_eq!(
        err,
        DomainError::SoldOut {
            requested: 2,
            available: 1
        }
    );
}

#[test]
fn an_expired_hold_counts_as_free_without_being_released() {
    let history = [
        initialized(ShowId::new(), 3),
        held(ReservationId::new(), 3, t0() + minutes(10)),
    ];
    let later = t0() + minutes(10);
    let state = given::<Inventory>(&history);
    assert_eq!(state.0.as_ref().unwrap().available(later), 3);
    let command = InventoryCommand::Hold {
        reservation_id: ReservationId::new(),
        quantity: qty(3),
        expires_at: later + minutes(10),
        sales: SalesStatus::OnSale,
    };
    assert!(state.decide(command, later).is_ok());
}

#[test]
fn hold_above_the_per_order_limit_is_refused() {
    let state = given::<Inventory>(&[initialized(ShowId::new(), 100)]);
    assert_eq!(
        state
            .decide(hold(ReservationId::new(), 7), t0())
            .unwrap_err(),
        DomainError::QuantityAboveLimit {
            requested: 7,
            limit: 6
        }
    );
}

#[test]
fn hold_is_refused_unless_sales_are_open() {
    let state = given::<Inventory>(&[initialized(ShowId::new(), 100)]);
    for (sales, expected) in [
        (SalesStatus::Scheduled, DomainError::SalesNotOpen),
        (SalesStatus::Closed, DomainError::SalesNotOpen),
        (SalesStatus::Cancelled, DomainError::ShowCancelled),
    ] {
        let command = InventoryCommand::Hold {
            reservation_id: ReservationId::new(),
            quantity: qty(1),
            expires_at: t0() + minutes(10),
            sales,
        };
        assert_eq!(state.decide(command, t0()).unwrap_err(), expected);
    }
}

#[test]
fn hold_that_expires_immediately_is_refused() {
    let state = given::<Inventory>(&[initialized(ShowId::new(), 100)]);
    let past = InventoryCommand::Hold {
        reservation_id: ReservationId::new(),
        quantity: qty(1),
        expires_at: t0(),
        sales: SalesStatus::OnSale,
    };
    assert_eq!(
        state.decide(past, t0()).unwrap_err(),
        DomainError::InvalidHoldExpiry
    );
}

#[test]
fn commands_on_an_uninitialized_section_are_refused() {
    assert_eq!(
        given::<Inventory>(&[])
            .decide(hold(ReservationId::new(), 1), t0())
            .unwrap_err(),
        DomainError::UnknownSection
    );
}

#[test]
fn confirming_a_hold_sells_its_seats() {
    let r = ReservationId::new();
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 10),
        held(r, 2, t0() + minutes(10)),
    ]);
    let events = state
        .decide(confirm(r, 2, t0() + minutes(10)), t0())
        .unwrap();
    assert_eq!(
        events,
        vec![InventoryEvent::SeatsConfirmed(SeatsConfirmed {
            reservation_id: r,
            quantity: 2,
            expires_at: Some(t0() + minutes(10)),
        })]
    );
    let after = state.evolve(&events[0]).0.unwrap();
    assert_eq!(
        (
            after.sold_count(),
            after.held_count(t0()),
            after.available(t0())
        ),
        (2, 0, 8)
    );
}

#[test]
fn an_expired_hold_is_confirmed_while_its_seats_are_still_free() {
    let r = ReservationId::new();
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 2),
        held(r, 2, t0() + minutes(10)),
    ]);
    assert!(state
        .decide(confirm(r, 2, t0() + minutes(10)), t0() + minutes(20))
        .is_ok());
}

#[test]
fn an_expired_hold_whose_seats_were_taken_cannot_be_confirmed() {
    let r = ReservationId::new();
    let later = t0() + minutes(20);
    let history = [
        initialized(ShowId::new(), 2),
        held(r, 2, t0() + minutes(10)),
        held(ReservationId::new(), 1, later + minutes(10)),
    ];
    let err = given::<Inventory>(&history)
        .decide(confirm(r, 2, t0() + minutes(10)), later)
        .unwrap_err();
    assert_eq!(err, DomainError::HoldExpired);
}

#[test]
fn releasing_a_hold_frees_its_seats() {
    let r = ReservationId::new();
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 2),
        held(r, 2, t0() + minutes(10)),
    ]);
    let command = release(r, 2, t0() + minutes(10), ReleaseReason::PaymentDeclined);
    let events = state.decide(command, t0()).unwrap();
    assert_eq!(
        events,
        vec![InventoryEvent::SeatsReleased(SeatsReleased {
            reservation_id: r,
            quantity: 2,
            reason: ReleaseReason::PaymentDeclined,
            expires_at: Some(t0() + minutes(10)),
        })]
    );
    assert_eq!(state.evolve(&events[0]).0.unwrap().available(t0()), 2);
}

#[test]
fn returning_sold_seats_puts_them_back_on_sale() {
    let r = ReservationId::new();
    let history = [
        initialized(ShowId::new(), 2),
        held(r, 2, t0() + minutes(10)),
        InventoryEvent::SeatsConfirmed(SeatsConfirmed {
            reservation_id: r,
            quantity: 2,
            expires_at: Some(t0() + minutes(10)),
        }),
    ];
    let state = given::<Inventory>(&history);
    let return_sold = InventoryCommand::ReturnSold {
        reservation_id: r,
        quantity: 2,
    };
    let events = state.decide(return_sold.clone(), t0()).unwrap();
    let after = state.evolve(&events[0]);
    assert_eq!(after.0.as_ref().unwrap().available(t0()), 2);
    // More seats than are sold cannot come back.
    assert_eq!(
        after.decide(return_sold, t0()).unwrap_err(),
        DomainError::NotPaid
    );
}

#[test]
fn the_state_keeps_one_entry_per_expiry_second_however_many_buyers_hold() {
    // 20,000 one-seat holds decided over ten minutes, each for ten minutes, with
    // expiries to the millisecond: the state never tracks more than the seconds of
    // one hold window, and what it counts is exact.
    let mut state = given::<Inventory>(&[initialized(ShowId::new(), 50_000)]);
    let mut largest = 0;
    for i in 0..20_000i64 {
        let now = t0() + TimeDelta::milliseconds(i * 30);
        let command = InventoryCommand::Hold {
            reservation_id: ReservationId::new(),
            quantity: qty(1),
            expires_at: now + minutes(10),
            sales: SalesStatus::OnSale,
        };
        let events = state.decide(command, now).unwrap();
        state = state.fold(&events);
        largest = largest.max(state.0.as_ref().unwrap().tracked_entries());
    }
    let section = state.0.unwrap();
    assert!(largest <= 601, "tracked {largest} entries");
    assert_eq!(
        section.held_count(t0() + TimeDelta::milliseconds(599_970)),
        20_000
    );
    // Once the last hold's expiry second has passed, all seats are free again (a
    // hold counts until the whole second after its expiry instant).
    let last_expiry = t0() + TimeDelta::milliseconds(19_999 * 30) + minutes(10);
    // Holds 19,967 to 19,999 expire within the last second: they count until it ends.
    assert_eq!(section.held_count(last_expiry), 33);
    let end = expiry_slot(last_expiry);
    assert_eq!(section.available(end), 50_000);
}

#[test]
fn holds_that_expired_before_a_later_hold_are_forgotten_and_end_harmlessly() {
    let (early, late) = (ReservationId::new(), ReservationId::new());
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 5),
        held(early, 2, t0() + minutes(10)),
    ]);
    let later = t0() + minutes(15);
    let command = InventoryCommand::Hold {
        reservation_id: late,
        quantity: qty(5),
        expires_at: later + minutes(10),
        sales: SalesStatus::OnSale,
    };
    let events = state.decide(command, later).unwrap();
    let state = state.fold(&events);
    assert_eq!(state.0.as_ref().unwrap().tracked_entries(), 1);
    // The early hold's seats went to the later hold: it cannot be confirmed any more,
    // and its release takes nothing off the later hold.
    assert_eq!(
        state
            .decide(confirm(early, 2, t0() + minutes(10)), later)
            .unwrap_err(),
        DomainError::HoldExpired
    );
    let events = state
        .decide(
            release(early, 2, t0() + minutes(10), ReleaseReason::Expired),
            later,
        )
        .unwrap();
    let state = state.fold(&events);
    assert_eq!(state.0.as_ref().unwrap().held_count(later), 5);
}

#[test]
fn holds_recorded_before_v3_are_ended_by_the_events_of_their_time() {
    // A stream written before SeatsHeld v3: holds without a decision instant, and
    // confirmations and releases without the hold's expiry.
    let (sold, released, open) = (
        ReservationId::new(),
        ReservationId::new(),
        ReservationId::new(),
    );
    let expiry = t0() + minutes(10);
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 10),
        held_before_v3(sold, 2, expiry),
        held_before_v3(released, 3, expiry),
        held_before_v3(open, 1, expiry),
        InventoryEvent::SeatsConfirmed(SeatsConfirmed {
            reservation_id: sold,
            quantity: 2,
            expires_at: None,
        }),
        InventoryEvent::SeatsReleased(SeatsReleased {
            reservation_id: released,
            quantity: 3,
            reason: ReleaseReason::CancelledByCustomer,
            expires_at: None,
        }),
    ]);
    let section = state.0.as_ref().unwrap();
    assert_eq!(
        (
            section.sold_count(),
            section.held_count(t0()),
            section.available(t0())
        ),
        (2, 1, 7)
    );
    // The hold still open ends with today's events.
    let events = state.decide(confirm(open, 1, expiry), t0()).unwrap();
    let section = state.fold(&events).0.unwrap();
    assert_eq!(
        (
            section.sold_count(),
            section.held_count(t0()),
            section.tracked_entries()
        ),
        (3, 0, 0)
    );
}

#[test]
fn a_section_state_survives_its_snapshot() {
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 10),
        held(ReservationId::new(), 2, t0() + minutes(10)),
        held_before_v3(
            ReservationId::new(),
            1,
            t0() + TimeDelta::milliseconds(600_500),
        ),
    ]);
    let snapshot = serde_json::to_value(&state).unwrap();
    assert_eq!(
        serde_json::from_value::<Inventory>(snapshot).unwrap(),
        state
    );
}

#[test]
fn expiry_slots_round_up_to_the_whole_second() {
    assert_eq!(expiry_slot(t0()), t0());
    assert_eq!(
        expiry_slot(t0() + TimeDelta::milliseconds(1)),
        t0() + TimeDelta::seconds(1)
    );
    assert_eq!(
        expiry_slot(t0() + TimeDelta::milliseconds(999)),
        t0() + TimeDelta::seconds(1)
    );
}

#[test]
fn free_seats_move_between_buckets_and_only_free_ones() {
    let r = ReservationId::new();
    let giver = given::<Inventory>(&[
        initialized(ShowId::new(), 5),
        held(r, 3, t0() + minutes(10)),
    ]);
    let give = |seats| InventoryCommand::GiveSeats {
        seats,
        to_bucket: 1,
    };
    assert_eq!(
        giver.decide(give(3), t0()).unwrap_err(),
        DomainError::NotEnoughFreeSeats {
            requested: 3,
            available: 2
        }
    );
    assert!(giver.decide(give(0), t0()).is_err(), "nothing to move");
    let moved = giver.decide(give(2), t0()).unwrap();
    let giver = giver.fold(&moved);
    let section = giver.0.as_ref().unwrap();
    assert_eq!((section.capacity, section.available(t0())), (3, 0));

    let taker = given::<Inventory>(&[initialized(ShowId::new(), 1)]);
    let taken = taker
        .decide(
            InventoryCommand::TakeSeats {
                seats: 2,
                from_bucket: 0,
            },
            t0(),
        )
        .unwrap();
    let taker = taker.fold(&taken);
    assert_eq!(taker.0.as_ref().unwrap().available(t0()), 3);
}

#[test]
fn a_section_is_the_sum_of_its_buckets() {
    let first = given::<Inventory>(&[
        initialized(ShowId::new(), 5),
        held(ReservationId::new(), 2, t0() + minutes(10)),
    ]);
    let second = given::<Inventory>(&[
        initialized(ShowId::new(), 4),
        held(ReservationId::new(), 1, t0() + minutes(10)),
    ]);
    let section = SectionInventory::combined([first.0.unwrap(), second.0.unwrap()]).unwrap();
    assert_eq!(
        (
            section.capacity,
            section.held_count(t0()),
            section.available(t0())
        ),
        (9, 3, 6)
    );
    assert_eq!(SectionInventory::combined([]), None);
}
