//! The outbox: every appended event is unpublished, in the global order, until it is
//! marked published; a refused append enqueues nothing. Run on both backends by the
//! `contract_tests!` macro in `main.rs`.

use chrono::TimeDelta;
use ticketing_store::{ExpectedVersion, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::harness::{append_ok, event, events, read_all_settled, to_stream, Store};

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

fn positions(events: &[RecordedEvent]) -> Vec<i64> {
    events.iter().map(RecordedEvent::position).collect()
}

async fn everything_unpublished(store: &Store) -> Vec<RecordedEvent> {
    store.unpublished(None, 1_000).await.unwrap()
}

pub async fn appended_events_stay_unpublished_until_marked_published(store: Store) {
    assert!(everything_unpublished(&store).await.is_empty());
    store
        .append(
            vec![
                to_stream(
                    "reservation-1",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream(
                    "inventory-1-a",
                    ExpectedVersion::NoStream,
                    events("SeatsHeld", 2),
                ),
            ],
            None,
        )
        .await
        .unwrap();

    let unpublished = everything_unpublished(&store).await;
    let stored = read_all_settled(&store, Default::default(), 100, 3).await;
    assert_eq!(unpublished, stored, "the same events, read the same way");
    assert_eq!(
        unpublished[0].position(),
        unpublished[0].global_position.position
    );

    store
        .mark_published(&positions(&unpublished[..2]))
        .await
        .unwrap();
    assert_eq!(
        ids(&everything_unpublished(&store).await),
        ids(&unpublished[2..]),
        "only what was not marked is left"
    );
    store
        .mark_published(&positions(&unpublished[2..]))
        .await
        .unwrap();
    assert!(everything_unpublished(&store).await.is_empty());
    assert_eq!(
        read_all_settled(&store, Default::default(), 100, 3).await,
        stored,
        "publishing never touches the events"
    );
}

pub async fn a_refused_append_enqueues_nothing(store: Store) {
    let first = events("SectionCreated", 2);
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        first.clone(),
    )
    .await;
    let before = everything_unpublished(&store).await;
    assert_eq!(before.len(), 2);

    // A version conflict on the second stream of a multi-stream append.
    let conflict = store
        .append(
            vec![
                to_stream(
                    "reservation-1",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream(
                    "inventory-1-a",
                    ExpectedVersion::Exact(1),
                    events("SeatsHeld", 1),
                ),
            ],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, StoreError::VersionConflict { .. }),
        "{conflict:?}"
    );

    // A retry of the committed append writes nothing and enqueues nothing again.
    let retried = store
        .append(
            vec![to_stream(
                "inventory-1-a",
                ExpectedVersion::NoStream,
                first.clone(),
            )],
            None,
        )
        .await
        .unwrap();
    assert_eq!(retried, ticketing_store::AppendOutcome::AlreadyAppended);

    // A partly reused event id.
    let reused = store
        .append(
            vec![to_stream(
                "inventory-1-b",
                ExpectedVersion::NoStream,
                vec![event("SectionCreated", 1), first[0].clone()],
            )],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(reused, StoreError::DuplicateEventId(_)),
        "{reused:?}"
    );

    // An invalid append.
    let invalid = store
        .append(
            vec![to_stream("", ExpectedVersion::Any, events("X", 1))],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(invalid, StoreError::Invalid(_)), "{invalid:?}");

    assert_eq!(everything_unpublished(&store).await, before);
}

pub async fn unpublished_follows_the_global_order_and_stops_at_the_limit(store: Store) {
    for n in 1..=3 {
        append_ok(
            &store,
            &format!("show-{n}"),
            ExpectedVersion::NoStream,
            events("ShowCreated", 2),
        )
        .await;
    }
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::Exact(2),
        events("SalesOpened", 1),
    )
    .await;
    let stored = read_all_settled(&store, Default::default(), 100, 7).await;

    assert_eq!(everything_unpublished(&store).await, stored);
    assert_eq!(store.unpublished(None, 3).await.unwrap(), stored[..3]);
    assert!(store.unpublished(None, 0).await.unwrap().is_empty());

    // Publishing from the middle leaves the rest in order.
    store
        .mark_published(&[stored[1].position(), stored[4].position()])
        .await
        .unwrap();
    let rest: Vec<RecordedEvent> = stored
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 4)
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(everything_unpublished(&store).await, rest);
    let versions: Vec<(String, u64)> = store
        .unpublished(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.stream_id == "show-1")
        .map(|e| (e.stream_id, e.version))
        .collect();
    assert_eq!(
        versions,
        vec![("show-1".to_owned(), 1), ("show-1".to_owned(), 3)],
        "a stream's events in version order"
    );
}

pub async fn unpublished_older_than_leaves_fresh_events_out(store: Store) {
    append_ok(
        &store,
        "payment-1",
        ExpectedVersion::NoStream,
        events("PaymentCaptured", 2),
    )
    .await;
    let stored = everything_unpublished(&store).await;
    let recorded_at = stored[0].recorded_at;

    assert!(
        store
            .unpublished(Some(recorded_at), 10)
            .await
            .unwrap()
            .is_empty(),
        "an event recorded at the instant is not older than it"
    );
    assert!(store
        .unpublished(Some(recorded_at - TimeDelta::seconds(60)), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .unpublished(Some(recorded_at + TimeDelta::microseconds(1)), 10)
            .await
            .unwrap(),
        stored
    );
    assert_eq!(
        store
            .unpublished(Some(recorded_at + TimeDelta::days(1)), 10)
            .await
            .unwrap(),
        stored
    );
}

pub async fn marking_published_twice_or_unknown_positions_is_harmless(store: Store) {
    append_ok(
        &store,
        "reservation-1",
        ExpectedVersion::NoStream,
        events("ReservationPlaced", 2),
    )
    .await;
    let stored = everything_unpublished(&store).await;
    let first = [stored[0].position()];

    store.mark_published(&first).await.unwrap();
    store.mark_published(&first).await.unwrap();
    store.mark_published(&[]).await.unwrap();
    store
        .mark_published(&[i64::MAX, -1, stored[1].position() + 1_000])
        .await
        .unwrap();

    assert_eq!(everything_unpublished(&store).await, stored[1..]);
}

pub async fn outbox_status_counts_the_backlog_and_dates_its_oldest_event(store: Store) {
    let empty = store.outbox_status().await.unwrap();
    assert_eq!((empty.depth, empty.oldest), (0, None));
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        events("SeatsHeld", 2),
    )
    .await;
    append_ok(
        &store,
        "reservation-1",
        ExpectedVersion::NoStream,
        events("ReservationPlaced", 1),
    )
    .await;
    let unpublished = everything_unpublished(&store).await;

    let status = store.outbox_status().await.unwrap();
    assert_eq!(status.depth, 3);
    assert_eq!(status.oldest, Some(unpublished[0].recorded_at));

    store
        .mark_published(&positions(&unpublished[..2]))
        .await
        .unwrap();
    let status = store.outbox_status().await.unwrap();
    assert_eq!(status.depth, 1);
    assert_eq!(
        status.oldest,
        Some(unpublished[2].recorded_at),
        "the oldest left"
    );
}
