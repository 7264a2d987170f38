//! Holds on one bucket decided and committed together: holds that queue for the same
//! bucket in one process are granted in one transaction, in arrival order, and each
//! buyer is answered as if its hold had run alone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ticketing_app::{AppError, HeldSeats, Settings};
use ticketing_domain::*;
use ticketing_store::{EventStore, StreamLock};

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

/// Waits until `count` holds are queued in (or being decided by) the batches.
async fn until_queued(h: &Harness, count: usize) {
    until(&format!("{count} holds queued"), || {
        h.app.holds_in_batches() >= count
    })
    .await;
}

/// Ten buyers' holds of one seat, queued behind another writer's turn on the bucket
/// until every one waits, then let through: the granted holds.
async fn ten_holds_queued_behind_a_turn(h: &Harness, show_id: ShowId) -> Vec<HeldSeats> {
    let turn = take_the_bucket(h, show_id).await;
    let holds = hold_in_background(h, show_id, 0..10);
    until_queued(h, 10).await;
    drop(turn);
    let mut held = Vec::new();
    for hold in holds {
        held.push(hold.await.unwrap().expect("a granted hold"));
    }
    held
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
    let held = ten_holds_queued_behind_a_turn(&h, show_id).await;
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

/// A batch publishes the events of all its holds in one call to the bus, and marks
/// them published with it: ten queued holds make as many publications as they made
/// transactions, every event of theirs is published once, and the outbox is empty.
pub async fn a_batch_publishes_its_holds_events_together_and_marks_them(
    store: Arc<dyn EventStore>,
) {
    let bus = Arc::new(RecordingBus::default());
    let settings = Settings {
        // Every buyer waits for its publication: answered means published and marked.
        publish_budget: Duration::from_secs(60),
        ..patient()
    };
    let h = harness_with_bus_and(store, bus.clone(), settings);
    let show_id = show_on_sale(&h, 100).await;
    let before = bus.calls().len();
    let held = ten_holds_queued_behind_a_turn(&h, show_id).await;

    let calls = bus.calls()[before..].to_vec();
    assert_eq!(
        calls.len(),
        transactions_of(&h, &held).await.len(),
        "one publication per batch"
    );
    let mut published: Vec<uuid::Uuid> = calls.concat();
    published.sort();
    let mut of_holds = Vec::new();
    for seats in &held {
        let stream = reservation_stream(seats.reservation_id);
        of_holds.extend(h.store.read_stream(&stream, 0).await.unwrap());
    }
    let bucket = inventory_stream(show_id, &floor());
    of_holds.extend(h.store.read_stream(&bucket, 1).await.unwrap());
    let mut expected: Vec<uuid::Uuid> = of_holds.iter().map(|e| e.event_id).collect();
    expected.sort();
    assert_eq!(
        expected.len(),
        20,
        "a SeatsHeld and a ReservationPlaced per hold"
    );
    assert_eq!(published, expected, "each hold's events published once");
    let left = h.store.unpublished(None, 100).await.unwrap();
    assert!(left.is_empty(), "all marked published: {left:?}");
}

/// A process decides holds on the show as it last loaded it, and never commits one on
/// a show another process has changed since: once another process has closed the
/// sales, this one's next hold is refused, and once sales reopen, granted. A batch
/// checks the show in the bucket's turn; a hold that runs alone appends with a
/// condition on the show's stream, and a refusal decided on a show that has moved is
/// decided again.
pub async fn a_hold_never_goes_by_a_show_another_process_has_changed(store: Arc<dyn EventStore>) {
    holds_follow_another_process_sales(store, patient()).await;
}

/// [`a_hold_never_goes_by_a_show_another_process_has_changed`], every hold alone.
pub async fn a_hold_alone_never_goes_by_a_show_another_process_has_changed(
    store: Arc<dyn EventStore>,
) {
    let alone = Settings {
        hold_batch_max: 1,
        ..patient()
    };
    holds_follow_another_process_sales(store, alone).await;
}

async fn holds_follow_another_process_sales(store: Arc<dyn EventStore>, settings: Settings) {
    let h = harness_with(store, settings);
    let other = harness_with(h.store.clone(), patient());
    let show_id = show_on_sale(&h, 10).await;
    hold(&h, show_id, 0, 1).await;

    other
        .app
        .change_sales(&organizer(), show_id, ShowCommand::CloseSales)
        .await
        .unwrap();
    let refused = h
        .app
        .hold_seats(&customer_ctx(1), hold_request(show_id, 1, 1))
        .await;
    assert!(
        matches!(refused, Err(AppError::Domain(DomainError::SalesNotOpen))),
        "sales closed by another process: {refused:?}"
    );
    assert_eq!(seats(&h, show_id).await, (1, 0, 9));

    other
        .app
        .change_sales(&organizer(), show_id, ShowCommand::OpenSales)
        .await
        .unwrap();
    hold(&h, show_id, 2, 1).await;
    hold(&h, show_id, 3, 1).await;
    assert_eq!(seats(&h, show_id).await, (3, 0, 7));
}
