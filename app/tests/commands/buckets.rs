//! A section split into escrow buckets: holds go to a bucket that has the seats, are
//! split across buckets only when no single one has them (and then in one
//! transaction), end in the buckets that hold them, and the section reads as one.

use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_app::{AppError, Clock, PaymentResult};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

/// Seats held in each bucket of the show's section, by its buckets' streams.
async fn held_per_bucket(h: &Harness, show_id: ShowId, buckets: u32) -> Vec<u32> {
    let now = h.clock.now();
    let mut held = Vec::new();
    for bucket in 0..buckets {
        let events = h
            .store
            .read_stream(&bucket_stream(show_id, &floor(), bucket), 0)
            .await
            .unwrap();
        let decoded: Vec<InventoryEvent> = events
            .into_iter()
            .map(|e| InventoryEvent::decode(&e.event_type, e.schema_version, e.data).unwrap())
            .collect();
        let state = Inventory::default().fold(&decoded);
        held.push(state.0.unwrap().held_count(now));
    }
    held
}

/// The bucket holding a one-bucket reservation.
async fn bucket_of(h: &Harness, reservation_id: ReservationId) -> u32 {
    let shares = h.app.reservation(reservation_id).await.unwrap().shares();
    assert_eq!(shares.len(), 1, "{shares:?}");
    shares[0].bucket
}

pub async fn a_split_section_reads_as_one_and_a_hold_takes_one_bucket(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale_in_buckets(&h, 10, 4).await;
    let sections = h.app.availability(show_id).await.unwrap();
    assert_eq!(sections.len(), 1, "one section, whatever its buckets");
    assert_eq!((sections[0].capacity, sections[0].available), (10, 10));

    let held = hold(&h, show_id, 1, 2).await;
    assert_eq!(seats(&h, show_id).await, (2, 0, 8));
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.shares().len(), 1, "{:?}", details.shares());
    let per_bucket = held_per_bucket(&h, show_id, 4).await;
    assert_eq!(per_bucket.iter().sum::<u32>(), 2);
    assert_eq!(per_bucket.iter().filter(|held| **held > 0).count(), 1);
}

pub async fn a_split_section_sells_every_seat_and_only_then_is_sold_out(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale_in_buckets(&h, 8, 4).await;
    for n in 0..8 {
        hold(&h, show_id, n, 1).await;
    }
    assert_eq!(held_per_bucket(&h, show_id, 4).await, vec![2, 2, 2, 2]);
    let refused = h
        .app
        .hold_seats(&customer_ctx(9), hold_request(show_id, 9, 1))
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Domain(DomainError::SoldOut {
                requested: 1,
                available: 0
            }))
        ),
        "{refused:?}"
    );
}

pub async fn a_hold_no_bucket_can_serve_alone_is_split_and_ends_in_every_bucket(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale_in_buckets(&h, 8, 4).await;
    // No bucket has 5 seats; the section does.
    let held = hold(&h, show_id, 1, 5).await;
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    let shares = details.shares();
    assert!(shares.len() >= 3, "{shares:?}");
    assert_eq!(shares.iter().map(|s| s.quantity).sum::<u32>(), 5);
    assert_eq!(seats(&h, show_id).await, (5, 0, 3));
    assert_eq!(held_per_bucket(&h, show_id, 4).await.iter().sum::<u32>(), 5);

    // Paid: sold in each bucket that held a part.
    let paid = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(matches!(paid, PaymentResult::Confirmed { .. }), "{paid:?}");
    assert_eq!(seats(&h, show_id).await, (0, 5, 3));

    // Cancelled and refunded: every part goes back to its bucket.
    h.app
        .cancel(&customer_ctx(1), held.reservation_id)
        .await
        .unwrap();
    assert_eq!(seats(&h, show_id).await, (0, 0, 8));

    // An expired split hold is released in every bucket too.
    let held = hold(&h, show_id, 2, 7).await;
    assert_eq!(seats(&h, show_id).await, (7, 0, 1));
    h.clock.advance(TimeDelta::minutes(11));
    h.app
        .expire(
            &ticketing_app::CommandContext::system(),
            held.reservation_id,
        )
        .await
        .unwrap();
    assert_eq!(held_per_bucket(&h, show_id, 4).await, vec![0, 0, 0, 0]);
    assert_eq!(seats(&h, show_id).await, (0, 0, 8));
}

pub async fn rebalancing_spreads_the_free_seats_over_the_buckets(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale_in_buckets(&h, 8, 4).await;
    // A 6-seat hold takes buckets 0, 1 and 2 whole: bucket 3 keeps the 2 free seats.
    let held = hold(&h, show_id, 1, 6).await;
    h.app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let moved = h
        .app
        .rebalance_section(&organizer(), show_id, &floor())
        .await
        .unwrap();
    assert_eq!(moved, 2);
    let sections = h.app.availability(show_id).await.unwrap();
    assert_eq!(
        (
            sections[0].capacity,
            sections[0].sold,
            sections[0].available
        ),
        (8, 6, 2)
    );
    // Now balanced: nothing to move.
    let again = h
        .app
        .rebalance_section(&organizer(), show_id, &floor())
        .await
        .unwrap();
    assert_eq!(again, 0);
    // The two seats are in two buckets and both sell; then the section is sold out.
    let first = hold(&h, show_id, 2, 1).await;
    let second = hold(&h, show_id, 3, 1).await;
    assert_ne!(
        bucket_of(&h, first.reservation_id).await,
        bucket_of(&h, second.reservation_id).await
    );
    assert!(h
        .app
        .hold_seats(&customer_ctx(4), hold_request(show_id, 4, 1))
        .await
        .is_err());
}

/// The flash sale on a split section: 200 buyers for 50 seats in 4 buckets.
pub async fn two_hundred_buyers_for_fifty_seats_in_four_buckets_get_exactly_fifty(
    store: Arc<dyn EventStore>,
) {
    const BUYERS: u32 = 200;
    let h = harness_with(store, patient());
    let show_id = show_on_sale_in_buckets(&h, 50, 4).await;
    let (won, sold_out) = flash_sale(&h, show_id, BUYERS).await;
    assert_eq!((won, sold_out), (50, BUYERS - 50));
    assert_eq!(seats(&h, show_id).await, (50, 0, 0));
    assert_eq!(held_per_bucket(&h, show_id, 4).await, vec![13, 13, 12, 12]);
}

/// A section on sale split into more buckets: the new ones take an even share of the
/// free seats, held seats stay where they are, the section reads the same, holds go on
/// in every bucket, and it sells exactly its seats.
pub async fn a_section_on_sale_split_into_more_buckets_spreads_its_free_seats_and_sells_them_all(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale_in_buckets(&h, 12, 2).await;
    let first = hold(&h, show_id, 1, 4).await;
    assert_eq!(seats(&h, show_id).await, (4, 0, 8));

    let split = h
        .app
        .split_section(&organizer(), show_id, &floor(), 4)
        .await
        .unwrap();
    assert_eq!((split.buckets, split.moved), (4, 4), "{split:?}");
    assert_eq!(
        seats(&h, show_id).await,
        (4, 0, 8),
        "the section reads the same"
    );
    assert_eq!(held_per_bucket(&h, show_id, 4).await.iter().sum::<u32>(), 4);
    let show = h.app.show(show_id).await.unwrap();
    assert_eq!(show.section(&floor()).unwrap().buckets, 4);

    // Splitting into no more buckets than it has is refused and changes nothing.
    let refused = h
        .app
        .split_section(&organizer(), show_id, &floor(), 4)
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Domain(DomainError::BucketsNotRaised {
                current: 4
            }))
        ),
        "{refused:?}"
    );

    // The held seats still end in their bucket; every free seat sells, then no more.
    h.app
        .pay(&customer_ctx(1), first.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    for n in 2..10 {
        hold(&h, show_id, n, 1).await;
    }
    assert_eq!(seats(&h, show_id).await, (8, 4, 0));
    let per_bucket = held_per_bucket(&h, show_id, 4).await;
    assert_eq!(
        per_bucket[2] + per_bucket[3],
        4,
        "the new buckets sold too: {per_bucket:?}"
    );
    assert!(matches!(
        h.app
            .hold_seats(&customer_ctx(10), hold_request(show_id, 10, 1))
            .await,
        Err(AppError::Domain(DomainError::SoldOut { .. }))
    ));
}
