use serde_json::json;

use super::*;
use crate::inventory::SeatsHeld;

#[test]
fn every_event_round_trips_through_its_stored_form() {
    let r = ReservationId::new();
    let event = DomainEvent::Inventory(InventoryEvent::SeatsHeld(SeatsHeld {
        reservation_id: r,
        quantity: 2,
        expires_at: t0(),
        held_at: Some(t0() - minutes(10)),
    }));
    let encoded = event.encode();
    assert_eq!(encoded.event_type, "SeatsHeld");
    assert_eq!(encoded.schema_version, 3);
    assert_eq!(
        DomainEvent::decode(&encoded.event_type, encoded.schema_version, encoded.data).unwrap(),
        event
    );
}

#[test]
fn a_version_1_seats_held_payload_is_upcast_to_the_current_shape() {
    let r = ReservationId::new();
    let v1 = json!({
        "reservation_id": r,
        "seats": 3,
        "held_at": "2026-06-01T12:00:00Z",
        "hold_seconds": 600,
    });
    let decoded = DomainEvent::decode("SeatsHeld", 1, v1.clone()).unwrap();
    assert_eq!(
        decoded,
        DomainEvent::Inventory(InventoryEvent::SeatsHeld(SeatsHeld {
            reservation_id: r,
            quantity: 3,
            expires_at: t0() + minutes(10),
            held_at: None,
        }))
    );
    // Read without upcasting, the old shape is rejected: the upcaster is what makes it work.
    assert!(DomainEvent::decode("SeatsHeld", 2, v1).is_err());
}

#[test]
fn version_2_holds_and_version_1_endings_are_read_without_the_fields_they_lacked() {
    let r = ReservationId::new();
    let v2 = json!({"reservation_id": r, "quantity": 2, "expires_at": "2026-06-01T12:00:00Z"});
    assert_eq!(
        DomainEvent::decode("SeatsHeld", 2, v2).unwrap(),
        DomainEvent::Inventory(InventoryEvent::SeatsHeld(SeatsHeld {
            reservation_id: r,
            quantity: 2,
            expires_at: t0(),
            held_at: None,
        }))
    );
    let confirmed = json!({"reservation_id": r, "quantity": 2});
    assert_eq!(
        DomainEvent::decode("SeatsConfirmed", 1, confirmed).unwrap(),
        DomainEvent::Inventory(InventoryEvent::SeatsConfirmed(
            crate::inventory::SeatsConfirmed {
                reservation_id: r,
                quantity: 2,
                expires_at: None,
            }
        ))
    );
    let released = json!({"reservation_id": r, "quantity": 2, "reason": "expired"});
    assert_eq!(
        DomainEvent::decode("SeatsReleased", 1, released).unwrap(),
        DomainEvent::Inventory(InventoryEvent::SeatsReleased(
            crate::inventory::SeatsReleased {
                reservation_id: r,
                quantity: 2,
                reason: crate::ReleaseReason::Expired,
                expires_at: None,
            }
        ))
    );
    // Today's shapes are written at today's versions.
    let ended = InventoryEvent::SeatsReleased(crate::inventory::SeatsReleased {
        reservation_id: r,
        quantity: 2,
        reason: crate::ReleaseReason::Expired,
        expires_at: Some(t0()),
    });
    assert_eq!(ended.encode().schema_version, 2);
}

#[test]
fn unknown_types_and_future_versions_are_refused() {
    assert_eq!(
        DomainEvent::decode("ReserveSeats", 1, json!({})).unwrap_err(),
        DecodeError::UnknownType("ReserveSeats".into())
    );
    assert!(matches!(
        DomainEvent::decode("SeatsHeld", 4, json!({})).unwrap_err(),
        DecodeError::UnsupportedVersion {
            version: 4,
            current: 3,
            ..
        }
    ));
    assert!(matches!(
        DomainEvent::decode("SalesOpened", 1, json!({"show_id": "nope"})).unwrap_err(),
        DecodeError::InvalidPayload { .. }
    ));
}

#[test]
fn every_listed_event_type_belongs_to_exactly_one_aggregate() {
    let lists = [
        ShowEvent::EVENT_TYPES,
        InventoryEvent::EVENT_TYPES,
        ReservationEvent::EVENT_TYPES,
        PaymentEvent::EVENT_TYPES,
    ];
    let all: Vec<&str> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(all.len(), unique.len());
}
