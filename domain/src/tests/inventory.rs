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
    })
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
fn hold_that_expires_immediately_or_repeats_a_reservation_is_refused() {
    let r = ReservationId::new();
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 100),
        held(r, 1, t0() + minutes(5)),
    ]);
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
    assert_eq!(
        state.decide(hold(r, 1), t0()).unwrap_err(),
        DomainError::ReservationAlreadyExists
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
        .decide(InventoryCommand::Confirm { reservation_id: r }, t0())
        .unwrap();
    assert_eq!(
        events,
        vec![InventoryEvent::SeatsConfirmed(SeatsConfirmed {
            reservation_id: r,
            quantity: 2
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
        .decide(
            InventoryCommand::Confirm { reservation_id: r },
            t0() + minutes(20)
        )
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
        .decide(InventoryCommand::Confirm { reservation_id: r }, later)
        .unwrap_err();
    assert_eq!(err, DomainError::HoldExpired);
}

#[test]
fn confirming_or_releasing_an_unknown_hold_is_refused() {
    let state = given::<Inventory>(&[initialized(ShowId::new(), 2)]);
    let r = ReservationId::new();
    assert_eq!(
        state
            .decide(InventoryCommand::Confirm { reservation_id: r }, t0())
            .unwrap_err(),
        DomainError::HoldNotFound
    );
    let release = InventoryCommand::Release {
        reservation_id: r,
        reason: ReleaseReason::Expired,
    };
    assert_eq!(
        state.decide(release, t0()).unwrap_err(),
        DomainError::HoldNotFound
    );
}

#[test]
fn releasing_a_hold_frees_its_seats() {
    let r = ReservationId::new();
    let state = given::<Inventory>(&[
        initialized(ShowId::new(), 2),
        held(r, 2, t0() + minutes(10)),
    ]);
    let release = InventoryCommand::Release {
        reservation_id: r,
        reason: ReleaseReason::PaymentDeclined,
    };
    let events = state.decide(release, t0()).unwrap();
    assert_eq!(
        events,
        vec![InventoryEvent::SeatsReleased(SeatsReleased {
            reservation_id: r,
            quantity: 2,
            reason: ReleaseReason::PaymentDeclined
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
        }),
    ];
    let state = given::<Inventory>(&history);
    let events = state
        .decide(InventoryCommand::ReturnSold { reservation_id: r }, t0())
        .unwrap();
    let after = state.evolve(&events[0]);
    assert_eq!(after.0.as_ref().unwrap().available(t0()), 2);
    assert_eq!(
        after
            .decide(InventoryCommand::ReturnSold { reservation_id: r }, t0())
            .unwrap_err(),
        DomainError::NotPaid
    );
}
