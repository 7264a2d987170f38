//! Holds on one bucket decided and committed together: holds that queue for the same
//! bucket in one process are granted in one transaction, in arrival order, and each
//! buyer is answered as if its hold had run alone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ticketing_app::{AppError, HeldSeats, Settings};
use ticketing_domain::*;
use ticketing_store::{EventStore, StreamLock};
use tokio::task::JoinHandle;

use crate::support::*;

/// Takes the turn on the show's only bucket, as another writer (or process) would, so
/// that holds queue behind it.
async fn take_the_bucket(h: &Harness, show_id: ShowId) -> Box<dyn StreamLock> {
    h.store
        .lock_stream(
            &bucket_stream(show_id, &floor(), 0),
            Duration::from_secs(30),
        )
        .await
        .expect("the bucket's turn")
}

/// Starts one keyed hold of one seat per buyer in `buyers`.
fn hold_in_background(
    h: &Harness,
    show_id: ShowId,
    buyers: std::ops::Range<u32>,
) -> Vec<JoinHandle<Result<HeldSeats, AppError>>> {
    buyers
        .map(|n| {
            let app = h.app.clone();
            tokio::spawn(async move {
                let ctx = customer_ctx(n).with_idempotency_key(format!("batch-{n}"));
                app.hold_seats(&ctx, hold_request(show_id, n, 1)).await
            })
        })
        .collect()
}

/// Waits until `count` holds are queued in (or being decided by) the batches.
async fn until_queued(h: &Harness, count: usize) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while h.app.holds_in_batches() < count {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} holds never queued"));
}

/// The transactions the reservations' first events were committed in.
async fn transactions_of(h: &Harness, held: &[HeldSeats]) -> HashSet<i64> {
    let mut transactions = HashSet::new();
    for seats in held {
        let events = h
            .store
            .read_stream(&reservation_stream(seats.reservation_id), 0)
            .await
            .unwrap();
        transactions.insert(events[0].global_position.transaction_id);
    }
    transactions
}

/// Ten buyers queue behind another writer's turn on the bucket. When it is given up,
/// their holds are granted in at most two transactions (the first batch may have
/// left before all ten had arrived), each recorded under its key, the bucket's
/// versions one after another.
pub async fn holds_queued_for_one_bucket_are_granted_together(store: Arc<dyn EventStore>) {
    let h = harness_with(store, patient());
    let show_id = show_on_sale(&h, 100).await;
    let turn = take_the_bucket(&h, show_id).await;
    let holds = hold_in_background(&h, show_id, 0..10);
    until_queued(&h, 10).await;
    drop(turn);

    let mut held = Vec::new();
    for hold in holds {
        held.push(hold.await.unwrap().expect("a granted hold"));
    }
    assert_eq!(seats(&h, show_id).await, (10, 0, 90));
    let transactions = transactions_of(&h, &held).await;
    assert!(
        transactions.len() <= 2,
        "ten queued holds committed in {} transactions",
        transactions.len()
    );
    let bucket = h
        .store
        .read_stream(&inventory_stream(show_id, &floor()), 0)
        .await
        .unwrap();
    let versions: Vec<u64> = bucket.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=11).collect::<Vec<_>>());

    // Each buyer's retry is answered from its own record, and holds nothing more.
    for (n, first) in (0..10).zip(&held) {
        let ctx = customer_ctx(n).with_idempotency_key(format!("batch-{n}"));
        let again = h
            .app
            .hold_seats(&ctx, hold_request(show_id, n, 1))
            .await
            .unwrap();
        assert_eq!(&again, first);
        let reservation = h
            .store
            .read_stream(&reservation_stream(first.reservation_id), 0)
            .await
            .unwrap();
        assert_eq!(reservation.len(), 1, "one ReservationPlaced per buyer");
        assert_eq!(
            reservation[0].metadata.actor.as_deref(),
            Some(format!("customer-{n}").as_str()),
            "each event carries its own command's metadata"
        );
    }
    assert_eq!(seats(&h, show_id).await, (10, 0, 90));
}

/// A batch decides its holds one after another against the bucket as the holds before
/// left it: eight buyers queued for five seats get five holds and three sold-out
/// answers, and nobody is told to come back later.
pub async fn a_batch_grants_holds_until_its_bucket_is_empty(store: Arc<dyn EventStore>) {
    let h = harness_with(store, patient());
    let show_id = show_on_sale(&h, 5).await;
    let turn = take_the_bucket(&h, show_id).await;
    let holds = hold_in_background(&h, show_id, 0..8);
    until_queued(&h, 8).await;
    drop(turn);

    let (mut granted, mut sold_out) = (0, 0);
    for hold in holds {
        match hold.await.unwrap() {
            Ok(_) => granted += 1,
            Err(AppError::Domain(DomainError::SoldOut { available: 0, .. })) => sold_out += 1,
            Err(other) => panic!("only seats or sold out, got: {other:?}"),
        }
    }
    assert_eq!((granted, sold_out), (5, 3));
    assert_eq!(seats(&h, show_id).await, (5, 0, 0));
}

/// A hold whose bucket's turn does not come within the section wait is answered with
/// contention and leaves nothing behind: no reservation, no seats, its key free for a
/// retry.
pub async fn a_queued_hold_without_a_turn_in_time_is_contention_and_holds_nothing(
    store: Arc<dyn EventStore>,
) {
    let h = harness_with(
        store,
        Settings {
            section_wait: Duration::from_millis(200),
            ..Settings::default()
        },
    );
    let show_id = show_on_sale(&h, 10).await;
    let heads = all_heads(&h).await;
    let turn = take_the_bucket(&h, show_id).await;
    let holds = hold_in_background(&h, show_id, 0..3);
    for hold in holds {
        assert!(
            matches!(hold.await.unwrap(), Err(AppError::Contention { .. })),
            "no turn within the wait"
        );
    }
    drop(turn);
    assert_eq!(all_heads(&h).await, heads, "nothing appended anywhere");
    let ctx = customer_ctx(0).with_idempotency_key("batch-0");
    h.app
        .hold_seats(&ctx, hold_request(show_id, 0, 1))
        .await
        .expect("the retry holds the seat");
    assert_eq!(seats(&h, show_id).await, (1, 0, 9));
}

/// With batches turned off (`hold_batch_max` 1) every hold runs on its own, and the
/// flash sale still grants exactly the capacity without contention.
pub async fn holds_one_at_a_time_still_sell_exactly_the_capacity(store: Arc<dyn EventStore>) {
    const BUYERS: u32 = 120;
    let h = harness_with(
        store,
        Settings {
            hold_batch_max: 1,
            ..patient()
        },
    );
    let capacity = 40;
    let show_id = show_on_sale(&h, capacity).await;
    let (won, sold_out) = flash_sale(&h, show_id, BUYERS).await;
    assert_eq!((won, sold_out), (capacity, BUYERS - capacity));
    assert_eq!(seats(&h, show_id).await, (capacity, 0, 0));
}
