//! The contract: one async function per behaviour, run against every backend by the
//! `contract_tests!` macro in `main.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use ticketing_store::{
    AppendOutcome, ExpectedVersion, GlobalPosition, IdempotencyRecord, Snapshot, StoreError,
    StreamAppend, StreamHead,
};
use tokio::sync::Barrier;

use crate::harness::{
    append_ok, event, events, read_all_settled, stream_versions, to_stream, Store,
};

fn versions(events: &[ticketing_store::RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn idempotency(key: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.to_owned(),
        request_fingerprint: format!("sha256:{key}"),
        outcome: json!({ "status": 201, "body": { "reservation_id": "r-1", "seats": [3, 4] } }),
    }
}

pub async fn append_to_a_new_stream_numbers_events_from_one_and_reads_them_back_intact(
    store: Store,
) {
    let written = events("SeatsHeld", 3);

    let outcome = store
        .append(
            vec![to_stream(
                "inventory-1-a",
                ExpectedVersion::NoStream,
                written.clone(),
            )],
            None,
        )
        .await
        .unwrap();

    let read = store.read_stream("inventory-1-a", 0).await.unwrap();
    assert_eq!(
        outcome,
        AppendOutcome::Appended {
            stream_versions: vec![("inventory-1-a".to_owned(), 3)],
            // What the append says it recorded is what reading the stream returns.
            recorded: read.clone(),
        }
    );
    assert_eq!(versions(&read), vec![1, 2, 3]);
    for (recorded, new) in read.iter().zip(&written) {
        assert_eq!(recorded.stream_id, "inventory-1-a");
        assert_eq!(recorded.event_id, new.event_id);
        assert_eq!(recorded.event_type, new.event_type);
        assert_eq!(recorded.schema_version, new.schema_version);
        assert_eq!(recorded.data, new.data);
        assert_eq!(recorded.metadata, new.metadata);
    }
    let positions: Vec<_> = read.iter().map(|e| e.global_position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

pub async fn recorded_at_is_the_append_instant_to_the_microsecond(store: Store) {
    let before = Utc::now().trunc_subsecs(6);
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 2),
    )
    .await;
    let after = Utc::now();

    let read = store.read_stream("show-1", 0).await.unwrap();
    let recorded_at: Vec<DateTime<Utc>> = read.iter().map(|e| e.recorded_at).collect();
    for instant in &recorded_at {
        // Postgres stamps the transaction's start; allow its clock a little slack.
        assert!(
            *instant >= before - chrono::Duration::seconds(1),
            "{instant} < {before}"
        );
        assert!(
            *instant <= after + chrono::Duration::seconds(1),
            "{instant} > {after}"
        );
        assert_eq!(*instant, instant.trunc_subsecs(6), "microsecond precision");
    }
    assert_eq!(recorded_at[0], recorded_at[1], "one append, one instant");

    let via_read_all = read_all_settled(&store, GlobalPosition::START, 10, 2).await;
    let via_read_all: Vec<_> = via_read_all.iter().map(|e| e.recorded_at).collect();
    assert_eq!(
        via_read_all, recorded_at,
        "both reads decode the same instant"
    );
}

pub async fn read_stream_after_a_version_returns_only_later_events(store: Store) {
    append_ok(
        &store,
        "reservation-1",
        ExpectedVersion::NoStream,
        events("Step", 5),
    )
    .await;

    assert_eq!(
        versions(&store.read_stream("reservation-1", 3).await.unwrap()),
        vec![4, 5]
    );
    assert!(store
        .read_stream("reservation-1", 5)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_stream("reservation-1", u64::MAX)
        .await
        .unwrap()
        .is_empty());
}

pub async fn an_unknown_stream_reads_as_empty_at_version_zero(store: Store) {
    assert!(store
        .read_stream("payment-unknown", 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.stream_version("payment-unknown").await.unwrap(), 0);
}

pub async fn read_stream_keeps_streams_apart(store: Store) {
    append_ok(
        &store,
        "payment-1",
        ExpectedVersion::NoStream,
        events("Authorised", 2),
    )
    .await;
    append_ok(
        &store,
        "payment-10",
        ExpectedVersion::NoStream,
        events("Authorised", 1),
    )
    .await;

    let read = store.read_stream("payment-1", 0).await.unwrap();
    assert_eq!(versions(&read), vec![1, 2]);
    assert!(read.iter().all(|e| e.stream_id == "payment-1"));
}

pub async fn append_to_existing_stream_with_no_stream_expectation_conflicts(store: Store) {
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 1),
    )
    .await;

    let err = store
        .append(
            vec![to_stream(
                "show-1",
                ExpectedVersion::NoStream,
                events("ShowCreated", 1),
            )],
            None,
        )
        .await
        .unwrap_err();

    match err {
        StoreError::VersionConflict {
            stream_id,
            expected,
            actual,
        } => {
            assert_eq!(stream_id, "show-1");
            assert_eq!(expected, "no stream");
            assert_eq!(actual, 1);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(store.stream_version("show-1").await.unwrap(), 1);
}

pub async fn append_with_a_wrong_exact_version_conflicts_and_reports_the_actual_version(
    store: Store,
) {
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 3),
    )
    .await;

    for wrong in [0, 2, 4] {
        let err = store
            .append(
                vec![to_stream(
                    "show-1",
                    ExpectedVersion::Exact(wrong),
                    events("SalesOpened", 1),
                )],
                None,
            )
            .await
            .unwrap_err();
        match err {
            StoreError::VersionConflict {
                stream_id,
                expected,
                actual,
            } => {
                assert_eq!(stream_id, "show-1");
                assert_eq!(expected, wrong.to_string());
                assert_eq!(actual, 3);
            }
            other => panic!("expected a version conflict for Exact({wrong}), got {other:?}"),
        }
    }
    assert_eq!(store.stream_version("show-1").await.unwrap(), 3);
}

pub async fn append_with_the_current_exact_version_continues_the_stream(store: Store) {
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::Exact(0),
        events("ShowCreated", 2),
    )
    .await;

    let outcome = store
        .append(
            vec![to_stream(
                "show-1",
                ExpectedVersion::Exact(2),
                events("SalesOpened", 1),
            )],
            None,
        )
        .await
        .unwrap();

    assert_eq!(stream_versions(&outcome), vec![("show-1".to_owned(), 3)]);
    assert_eq!(
        versions(&store.read_stream("show-1", 0).await.unwrap()),
        vec![1, 2, 3]
    );
}

pub async fn append_with_any_expectation_appends_after_whatever_is_there(store: Store) {
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::Any,
        events("ShowCreated", 1),
    )
    .await;
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::Any,
        events("SalesOpened", 2),
    )
    .await;

    assert_eq!(
        versions(&store.read_stream("show-1", 0).await.unwrap()),
        vec![1, 2, 3]
    );
}

pub async fn multi_stream_append_writes_every_stream_and_reports_versions_in_append_order(
    store: Store,
) {
    append_ok(
        &store,
        "inventory-1-b",
        ExpectedVersion::NoStream,
        events("SectionCreated", 1),
    )
    .await;

    let outcome = store
        .append(
            vec![
                to_stream(
                    "reservation-9",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream(
                    "inventory-1-b",
                    ExpectedVersion::Exact(1),
                    events("SeatsHeld", 2),
                ),
            ],
            None,
        )
        .await
        .unwrap();

    assert_eq!(
        stream_versions(&outcome),
        vec![
            ("reservation-9".to_owned(), 1),
            ("inventory-1-b".to_owned(), 3)
        ]
    );
    let AppendOutcome::Appended { recorded, .. } = &outcome else {
        unreachable!()
    };
    let recorded: Vec<(&str, u64)> = recorded
        .iter()
        .map(|e| (e.stream_id.as_str(), e.version))
        .collect();
    assert_eq!(
        recorded,
        vec![
            ("reservation-9", 1),
            ("inventory-1-b", 2),
            ("inventory-1-b", 3)
        ]
    );
    assert_eq!(store.stream_version("reservation-9").await.unwrap(), 1);
    assert_eq!(store.stream_version("inventory-1-b").await.unwrap(), 3);
}

pub async fn multi_stream_append_with_a_conflict_on_the_second_stream_writes_nothing(store: Store) {
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        events("SectionCreated", 2),
    )
    .await;
    let key = idempotency("customer-1:k-1");

    let err = store
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
            Some(key.clone()),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(&err, StoreError::VersionConflict { stream_id, actual: 2, .. } if stream_id == "inventory-1-a"),
        "{err:?}"
    );
    assert_eq!(store.stream_version("reservation-1").await.unwrap(), 0);
    assert!(store
        .read_stream("reservation-1", 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.stream_version("inventory-1-a").await.unwrap(), 2);
    assert_eq!(store.idempotency_record(&key.key).await.unwrap(), None);
}

/// A stream without events is a condition: the append commits while that stream is at
/// the expected version and writes nothing to it (no event, no new head, nothing in
/// the outbox); once the stream has moved, the whole append is refused as a conflict
/// on it, and nothing is written.
pub async fn a_condition_lets_an_append_commit_only_while_its_stream_is_unchanged(store: Store) {
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 2),
    )
    .await;
    let heads_before = store
        .find_streams("show-", &["ShowCreated"], 10)
        .await
        .unwrap();

    let outcome = store
        .append(
            vec![
                to_stream(
                    "reservation-1",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                StreamAppend::condition("show-1", 2),
                StreamAppend::condition("show-9", 0),
            ],
            Some(idempotency("k-1")),
        )
        .await
        .unwrap();
    assert_eq!(
        stream_versions(&outcome),
        vec![
            ("reservation-1".to_owned(), 1),
            ("show-1".to_owned(), 2),
            ("show-9".to_owned(), 0)
        ]
    );
    let AppendOutcome::Appended { recorded, .. } = &outcome else {
        unreachable!()
    };
    let streams: Vec<&str> = recorded.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["reservation-1"], "only the events are recorded");
    assert_eq!(store.read_stream("show-1", 0).await.unwrap().len(), 2);
    assert_eq!(store.stream_version("show-9").await.unwrap(), 0);
    assert_eq!(
        store
            .find_streams("show-", &["ShowCreated"], 10)
            .await
            .unwrap(),
        heads_before,
        "a condition moves no head"
    );
    let outbox: Vec<String> = store
        .unpublished(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.stream_id)
        .collect();
    assert_eq!(outbox, ["show-1", "show-1", "reservation-1"]);
    assert!(store.idempotency_record("k-1").await.unwrap().is_some());

    append_ok(
        &store,
        "show-1",
        ExpectedVersion::Exact(2),
        events("SalesOpened", 1),
    )
    .await;
    let err = store
        .append(
            vec![
                to_stream(
                    "reservation-2",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                StreamAppend::condition("show-1", 2),
            ],
            Some(idempotency("k-2")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::VersionConflict { stream_id, actual: 3, .. } if stream_id == "show-1"),
        "{err:?}"
    );
    assert_eq!(store.stream_version("reservation-2").await.unwrap(), 0);
    assert_eq!(store.idempotency_record("k-2").await.unwrap(), None);
}

pub async fn retried_append_with_the_same_event_ids_is_recognised_and_writes_nothing(store: Store) {
    let first = vec![
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
    ];
    store.append(first.clone(), None).await.unwrap();

    // A retry whose expectations the first try has since made stale...
    assert_eq!(
        store.append(first.clone(), None).await.unwrap(),
        AppendOutcome::AlreadyAppended
    );
    // ...and one with no expectation at all.
    let mut unchecked = first.clone();
    for append in &mut unchecked {
        append.expected_version = ExpectedVersion::Any;
    }
    assert_eq!(
        store.append(unchecked, None).await.unwrap(),
        AppendOutcome::AlreadyAppended
    );

    assert_eq!(
        versions(&store.read_stream("reservation-1", 0).await.unwrap()),
        vec![1]
    );
    assert_eq!(
        versions(&store.read_stream("inventory-1-a", 0).await.unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        read_all_settled(&store, GlobalPosition::START, 100, 3)
            .await
            .len(),
        3
    );
}

pub async fn append_reusing_some_stored_event_ids_is_refused_as_duplicate(store: Store) {
    let stored = events("SeatsHeld", 2);
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        stored.clone(),
    )
    .await;
    let reused = stored[1].event_id;
    let mut mixed = vec![event("SeatsHeld", 3), stored[1].clone()];
    mixed[1].event_type = "SeatsReleased".to_owned();

    let err = store
        .append(
            vec![to_stream(
                "inventory-1-a",
                ExpectedVersion::Any,
                mixed.clone(),
            )],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == reused),
        "{err:?}"
    );

    // The same with a stale expectation: the reused id, not the version, is the news.
    let err = store
        .append(
            vec![to_stream("inventory-1-a", ExpectedVersion::Exact(1), mixed)],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == reused),
        "{err:?}"
    );

    assert_eq!(
        versions(&store.read_stream("inventory-1-a", 0).await.unwrap()),
        vec![1, 2]
    );
}

pub async fn idempotency_record_is_stored_with_the_events_and_readable(store: Store) {
    let record = idempotency("customer-1:3f1c");
    assert_eq!(store.idempotency_record(&record.key).await.unwrap(), None);

    store
        .append(
            vec![to_stream(
                "reservation-1",
                ExpectedVersion::NoStream,
                events("ReservationPlaced", 1),
            )],
            Some(record.clone()),
        )
        .await
        .unwrap();

    assert_eq!(
        store.idempotency_record(&record.key).await.unwrap(),
        Some(record)
    );
    assert_eq!(store.stream_version("reservation-1").await.unwrap(), 1);
}

pub async fn second_append_with_a_taken_idempotency_key_is_refused_and_writes_nothing(
    store: Store,
) {
    let record = idempotency("customer-1:3f1c");
    store
        .append(
            vec![to_stream(
                "reservation-1",
                ExpectedVersion::NoStream,
                events("ReservationPlaced", 1),
            )],
            Some(record.clone()),
        )
        .await
        .unwrap();

    let mut other_request = idempotency("customer-1:3f1c");
    other_request.request_fingerprint = "sha256:another-body".to_owned();
    other_request.outcome = json!({ "status": 201, "body": "second" });
    let err = store
        .append(
            vec![
                to_stream(
                    "reservation-2",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream(
                    "inventory-1-a",
                    ExpectedVersion::Any,
                    events("SeatsHeld", 1),
                ),
            ],
            Some(other_request),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(&err, StoreError::IdempotencyKeyTaken(key) if key == "customer-1:3f1c"),
        "{err:?}"
    );
    assert_eq!(store.stream_version("reservation-2").await.unwrap(), 0);
    assert_eq!(store.stream_version("inventory-1-a").await.unwrap(), 0);
    assert_eq!(
        store.idempotency_record(&record.key).await.unwrap(),
        Some(record),
        "the first record stays"
    );
}

pub async fn conflicting_append_with_a_taken_idempotency_key_reports_the_key(store: Store) {
    let record = idempotency("customer-1:3f1c");
    store
        .append(
            vec![to_stream(
                "inventory-1-a",
                ExpectedVersion::NoStream,
                events("SeatsHeld", 1),
            )],
            Some(record.clone()),
        )
        .await
        .unwrap();

    // A concurrent duplicate of the same request decided on the same version: the
    // taken key tells it to replay the stored outcome rather than retry.
    let err = store
        .append(
            vec![to_stream(
                "inventory-1-a",
                ExpectedVersion::NoStream,
                events("SeatsHeld", 1),
            )],
            Some(record),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(&err, StoreError::IdempotencyKeyTaken(key) if key == "customer-1:3f1c"),
        "{err:?}"
    );
}

pub async fn read_all_returns_every_stream_in_global_order_and_pages_by_position(store: Store) {
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 2),
    )
    .await;
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        events("SeatsHeld", 1),
    )
    .await;
    store
        .append(
            vec![
                to_stream(
                    "reservation-1",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream(
                    "show-1",
                    ExpectedVersion::Exact(2),
                    events("SalesOpened", 1),
                ),
            ],
            None,
        )
        .await
        .unwrap();
    append_ok(
        &store,
        "payment-1",
        ExpectedVersion::NoStream,
        events("Authorised", 2),
    )
    .await;

    let all = read_all_settled(&store, GlobalPosition::START, 100, 7).await;
    let order: Vec<(&str, u64)> = all
        .iter()
        .map(|e| (e.stream_id.as_str(), e.version))
        .collect();
    assert_eq!(
        order,
        vec![
            ("show-1", 1),
            ("show-1", 2),
            ("inventory-1-a", 1),
            ("reservation-1", 1),
            ("show-1", 3),
            ("payment-1", 1),
            ("payment-1", 2),
        ]
    );
    let positions: Vec<GlobalPosition> = all.iter().map(|e| e.global_position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(positions[0] > GlobalPosition::START);
    // One append, one transaction; each append a later one.
    assert_eq!(positions[0].transaction_id, positions[1].transaction_id);
    assert_eq!(positions[3].transaction_id, positions[4].transaction_id);
    assert!(positions[1].transaction_id < positions[2].transaction_id);

    let mut paged = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = read_all_settled(&store, after, 3, 3.min(7 - paged.len())).await;
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.global_position;
        paged.extend(page);
    }
    assert_eq!(paged, all, "paging reads the same events in the same order");
    assert!(store
        .read_all(GlobalPosition::START, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store.read_all(positions[6], 100).await.unwrap().is_empty());
}

pub async fn load_stream_reads_the_snapshot_and_only_the_events_after_it(store: Store) {
    assert_eq!(
        store.load_stream("inventory-1-a").await.unwrap(),
        (None, vec![]),
        "an unknown stream"
    );
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        events("SeatsHeld", 3),
    )
    .await;
    let (snapshot, read) = store.load_stream("inventory-1-a").await.unwrap();
    assert_eq!((snapshot, versions(&read)), (None, vec![1, 2, 3]));
    assert_eq!(read, store.read_stream("inventory-1-a", 0).await.unwrap());

    let snapshot = Snapshot {
        stream_id: "inventory-1-a".to_owned(),
        version: 3,
        schema_version: 4,
        state: json!({ "seats": [1, 2, 3], "sold": 3 }),
    };
    store.save_snapshot(snapshot.clone()).await.unwrap();
    assert_eq!(
        store.load_stream("inventory-1-a").await.unwrap(),
        (Some(snapshot.clone()), vec![]),
        "a snapshot with nothing after it"
    );
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::Exact(3),
        events("SeatsHeld", 2),
    )
    .await;
    let (loaded, read) = store.load_stream("inventory-1-a").await.unwrap();
    assert_eq!(loaded, Some(snapshot));
    assert_eq!(read, store.read_stream("inventory-1-a", 3).await.unwrap());
    assert_eq!(versions(&read), vec![4, 5]);
}

pub async fn snapshot_is_saved_loaded_and_replaced_by_a_newer_one(store: Store) {
    assert_eq!(store.load_snapshot("inventory-1-a").await.unwrap(), None);
    let first = Snapshot {
        stream_id: "inventory-1-a".to_owned(),
        version: 50,
        schema_version: 1,
        state: json!({ "capacity": 100, "sold": 40, "holds": [{ "seats": 2, "until": "2030-01-01T00:00:00Z" }] }),
    };
    store.save_snapshot(first.clone()).await.unwrap();
    assert_eq!(
        store.load_snapshot("inventory-1-a").await.unwrap(),
        Some(first)
    );

    let newer = Snapshot {
        stream_id: "inventory-1-a".to_owned(),
        version: 100,
        schema_version: 2,
        state: json!({ "capacity": 100, "sold": 90, "holds": [] }),
    };
    store.save_snapshot(newer.clone()).await.unwrap();
    assert_eq!(
        store.load_snapshot("inventory-1-a").await.unwrap(),
        Some(newer)
    );
    assert_eq!(
        store.load_snapshot("inventory-1-b").await.unwrap(),
        None,
        "snapshots are per stream"
    );
}

pub async fn older_snapshot_never_replaces_a_newer_one(store: Store) {
    let newer = Snapshot {
        stream_id: "show-1".to_owned(),
        version: 10,
        schema_version: 1,
        state: json!({ "status": "on_sale" }),
    };
    store.save_snapshot(newer.clone()).await.unwrap();

    let older = Snapshot {
        version: 9,
        state: json!({ "status": "draft" }),
        ..newer.clone()
    };
    store.save_snapshot(older).await.unwrap();

    assert_eq!(store.load_snapshot("show-1").await.unwrap(), Some(newer));
}

pub async fn stream_version_counts_the_events_of_a_stream(store: Store) {
    assert_eq!(store.stream_version("show-1").await.unwrap(), 0);
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 1),
    )
    .await;
    assert_eq!(store.stream_version("show-1").await.unwrap(), 1);
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::Exact(1),
        events("SalesOpened", 4),
    )
    .await;
    assert_eq!(store.stream_version("show-1").await.unwrap(), 5);
    assert_eq!(store.stream_version("show-2").await.unwrap(), 0);
}

pub async fn event_count_is_the_length_of_the_global_order(store: Store) {
    assert_eq!(store.event_count().await.unwrap(), 0);
    append_ok(
        &store,
        "show-1",
        ExpectedVersion::NoStream,
        events("ShowCreated", 3),
    )
    .await;
    append_ok(
        &store,
        "show-2",
        ExpectedVersion::NoStream,
        events("ShowCreated", 2),
    )
    .await;
    assert_eq!(store.event_count().await.unwrap(), 5);
}

pub async fn empty_or_malformed_append_is_invalid_and_writes_nothing(store: Store) {
    let malformed = [
        vec![],
        vec![to_stream("show-1", ExpectedVersion::NoStream, vec![])],
        vec![to_stream(
            "",
            ExpectedVersion::NoStream,
            events("ShowCreated", 1),
        )],
        vec![
            to_stream(
                "show-1",
                ExpectedVersion::NoStream,
                events("ShowCreated", 1),
            ),
            // A stream without events is a condition, and `Any` checks nothing.
            to_stream("reservation-1", ExpectedVersion::Any, vec![]),
        ],
        vec![
            to_stream(
                "show-1",
                ExpectedVersion::NoStream,
                events("ShowCreated", 1),
            ),
            to_stream("show-1", ExpectedVersion::Any, events("SalesOpened", 1)),
        ],
    ];
    for appends in malformed {
        let description = format!("{appends:?}");
        let err = store
            .append(appends, Some(idempotency("k")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(_)),
            "{description}: {err:?}"
        );
    }

    let reused = event("ShowCreated", 1);
    let err = store
        .append(
            vec![to_stream(
                "show-1",
                ExpectedVersion::NoStream,
                vec![reused.clone(), reused],
            )],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "an id twice in one append: {err:?}"
    );

    assert_eq!(store.stream_version("show-1").await.unwrap(), 0);
    assert_eq!(store.idempotency_record("k").await.unwrap(), None);
    assert!(store
        .read_all(GlobalPosition::START, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn concurrent_appends_with_the_same_expected_version_let_exactly_one_win(store: Store) {
    const WRITERS: usize = 20;
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        events("SectionCreated", 1),
    )
    .await;
    let start = Arc::new(Barrier::new(WRITERS));

    let tasks: Vec<_> = (0..WRITERS as u64)
        .map(|n| {
            let store = store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store
                    .append(
                        vec![to_stream(
                            "inventory-1-a",
                            ExpectedVersion::Exact(1),
                            vec![event("SeatsHeld", n)],
                        )],
                        None,
                    )
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) => {
                assert_eq!(
                    stream_versions(&outcome),
                    vec![("inventory-1-a".to_owned(), 2)]
                );
                wins += 1;
            }
            Err(StoreError::VersionConflict {
                expected, actual, ..
            }) => {
                assert_eq!((expected.as_str(), actual), ("1", 2));
                conflicts += 1;
            }
            Err(other) => panic!("expected a win or a version conflict, got {other:?}"),
        }
    }

    assert_eq!((wins, conflicts), (1, WRITERS - 1));
    assert_eq!(
        versions(&store.read_stream("inventory-1-a", 0).await.unwrap()),
        vec![1, 2]
    );
}

pub async fn concurrent_writers_retrying_on_conflict_leave_contiguous_versions(store: Store) {
    const WRITERS: u64 = 20;
    let start = Arc::new(Barrier::new(WRITERS as usize));

    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let new_event = event("SeatsHeld", n);
                let mut conflicts = 0;
                for _ in 0..500 {
                    let current = store.stream_version("inventory-1-a").await.unwrap();
                    let append = to_stream(
                        "inventory-1-a",
                        ExpectedVersion::Exact(current),
                        vec![new_event.clone()],
                    );
                    match store.append(vec![append], None).await {
                        Ok(AppendOutcome::Appended {
                            stream_versions, ..
                        }) => {
                            return (new_event.event_id, stream_versions[0].1, conflicts);
                        }
                        Err(StoreError::VersionConflict { .. }) => conflicts += 1,
                        other => panic!("writer {n}: unexpected {other:?}"),
                    }
                    tokio::task::yield_now().await;
                }
                panic!("writer {n} never got its event in");
            })
        })
        .collect();
    let mut won_versions = Vec::new();
    let mut ids = HashSet::new();
    for task in tasks {
        let (id, version, _conflicts) = task.await.unwrap();
        won_versions.push(version);
        ids.insert(id);
    }

    won_versions.sort_unstable();
    assert_eq!(
        won_versions,
        (1..=WRITERS).collect::<Vec<_>>(),
        "each version won exactly once"
    );
    let read = store.read_stream("inventory-1-a", 0).await.unwrap();
    assert_eq!(versions(&read), (1..=WRITERS).collect::<Vec<_>>());
    assert_eq!(
        read.iter().map(|e| e.event_id).collect::<HashSet<_>>(),
        ids,
        "every writer's event, once"
    );
}

/// Every head under `prefix` whose last event is one of `types`, oldest first.
async fn heads(store: &Store, prefix: &str, types: &[&str]) -> Vec<StreamHead> {
    store.find_streams(prefix, types, 100).await.unwrap()
}

/// (stream id, version, last event type) of each head, for comparing in one assertion.
fn summary(heads: &[StreamHead]) -> Vec<(&str, u64, &str)> {
    heads
        .iter()
        .map(|h| (h.stream_id.as_str(), h.version, h.last_event_type.as_str()))
        .collect()
}

pub async fn the_stream_index_follows_every_append_including_multi_stream_appends(store: Store) {
    append_ok(
        &store,
        "inventory-1-a",
        ExpectedVersion::NoStream,
        events("SectionInitialized", 1),
    )
    .await;
    assert_eq!(
        summary(&heads(&store, "", &["SectionInitialized"]).await),
        vec![("inventory-1-a", 1, "SectionInitialized")]
    );

    // A hold: two streams, one transaction, several events on one of them.
    store
        .append(
            vec![
                to_stream(
                    "inventory-1-a",
                    ExpectedVersion::Exact(1),
                    vec![event("SeatsHeld", 1), event("SeatsConfirmed", 2)],
                ),
                to_stream(
                    "reservation-1",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
            ],
            None,
        )
        .await
        .unwrap();
    let all_types = [
        "SectionInitialized",
        "SeatsHeld",
        "SeatsConfirmed",
        "ReservationPlaced",
    ];
    let mut found = heads(&store, "", &all_types).await;
    found.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    assert_eq!(
        summary(&found),
        vec![
            ("inventory-1-a", 3, "SeatsConfirmed"),
            ("reservation-1", 1, "ReservationPlaced"),
        ],
        "each stream's head is its last event, not the first of the append"
    );
    assert!(
        heads(&store, "", &["SectionInitialized", "SeatsHeld"])
            .await
            .is_empty(),
        "a stream is found by its last event only"
    );

    // The head's instant is its last event's, and its version what stream_version says.
    for head in &found {
        let stream = store.read_stream(&head.stream_id, 0).await.unwrap();
        let last = stream.last().unwrap();
        assert_eq!(head.updated_at, last.recorded_at, "{}", head.stream_id);
        assert_eq!(
            head.version,
            store.stream_version(&head.stream_id).await.unwrap()
        );
    }
}

pub async fn find_streams_filters_by_prefix_and_last_event_type(store: Store) {
    for (stream, event_type) in [
        ("reservation-1", "ReservationPlaced"),
        ("reservation-2", "PaymentRequested"),
        ("reservation-3", "ReservationConfirmed"),
        ("payment-1", "PaymentRequested"),
        ("Reservation-4", "ReservationPlaced"),
        ("reservation", "ReservationPlaced"),
    ] {
        append_ok(
            &store,
            stream,
            ExpectedVersion::NoStream,
            events(event_type, 1),
        )
        .await;
    }

    let ids = |heads: Vec<StreamHead>| {
        let mut ids: Vec<String> = heads.into_iter().map(|h| h.stream_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(heads(
            &store,
            "reservation-",
            &["ReservationPlaced", "PaymentRequested"]
        )
        .await),
        vec!["reservation-1", "reservation-2"],
        "the prefix is case-sensitive and must be followed by something"
    );
    assert_eq!(
        ids(heads(&store, "reservation-", &["PaymentRequested"]).await),
        vec!["reservation-2"]
    );
    assert_eq!(
        ids(heads(&store, "", &["PaymentRequested"]).await),
        vec!["payment-1", "reservation-2"],
        "an empty prefix matches every stream"
    );
    assert_eq!(
        ids(heads(&store, "reservation-1", &["ReservationPlaced"]).await),
        vec!["reservation-1"],
        "a whole stream id is a prefix of itself"
    );
    assert_eq!(
        ids(heads(
            &store,
            "reservation-",
            &["ReservationPlaced", "ReservationPlaced"]
        )
        .await),
        vec!["reservation-1"],
        "a type named twice finds its streams once"
    );
    assert!(heads(&store, "reservation-", &[]).await.is_empty());
    assert!(heads(&store, "show-", &["ReservationPlaced"])
        .await
        .is_empty());
    assert!(heads(&store, "reservation-", &["Unknown"]).await.is_empty());
}

pub async fn find_streams_returns_the_least_recently_appended_first_up_to_the_limit(store: Store) {
    // Appended in an order that is neither alphabetical nor its reverse; the pauses
    // keep the recorded instants apart.
    for stream in [
        "reservation-c",
        "reservation-a",
        "reservation-d",
        "reservation-b",
    ] {
        append_ok(
            &store,
            stream,
            ExpectedVersion::NoStream,
            events("ReservationPlaced", 1),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let order = |heads: Vec<StreamHead>| -> Vec<String> {
        heads.into_iter().map(|h| h.stream_id).collect()
    };
    let placed = ["ReservationPlaced"];
    assert_eq!(
        order(heads(&store, "reservation-", &placed).await),
        vec![
            "reservation-c",
            "reservation-a",
            "reservation-d",
            "reservation-b"
        ]
    );
    assert_eq!(
        order(
            store
                .find_streams("reservation-", &placed, 2)
                .await
                .unwrap()
        ),
        vec!["reservation-c", "reservation-a"]
    );
    assert!(store
        .find_streams("reservation-", &placed, 0)
        .await
        .unwrap()
        .is_empty());

    // Appending moves a stream to the back of the order.
    append_ok(
        &store,
        "reservation-c",
        ExpectedVersion::Exact(1),
        events("ReservationPlaced", 1),
    )
    .await;
    let found = heads(&store, "reservation-", &placed).await;
    assert_eq!(
        order(found.clone()),
        vec![
            "reservation-a",
            "reservation-d",
            "reservation-b",
            "reservation-c"
        ]
    );
    assert!(found.windows(2).all(|w| w[0].updated_at <= w[1].updated_at));
    assert_eq!(found[3].version, 2);
}

pub async fn find_streams_treats_percent_and_underscore_in_a_prefix_literally(store: Store) {
    for stream in ["a%b-1", "axb-2", "a_b-3", "ayb-4", "a\\b-5"] {
        append_ok(
            &store,
            stream,
            ExpectedVersion::NoStream,
            events("Happened", 1),
        )
        .await;
    }
    let ids = |heads: Vec<StreamHead>| -> Vec<String> {
        heads.into_iter().map(|h| h.stream_id).collect()
    };
    assert_eq!(
        ids(heads(&store, "a%b", &["Happened"]).await),
        vec!["a%b-1"]
    );
    assert_eq!(
        ids(heads(&store, "a_b", &["Happened"]).await),
        vec!["a_b-3"]
    );
    assert_eq!(
        ids(heads(&store, "a\\b", &["Happened"]).await),
        vec!["a\\b-5"]
    );
    assert!(heads(&store, "%", &["Happened"]).await.is_empty());
    assert!(heads(&store, "_", &["Happened"]).await.is_empty());
}

pub async fn a_refused_append_leaves_the_stream_index_untouched(store: Store) {
    let record = idempotency("customer-1:k-1");
    let first = vec![
        to_stream(
            "inventory-1-a",
            ExpectedVersion::NoStream,
            events("SeatsHeld", 2),
        ),
        to_stream(
            "reservation-1",
            ExpectedVersion::NoStream,
            events("ReservationPlaced", 1),
        ),
    ];
    store
        .append(first.clone(), Some(record.clone()))
        .await
        .unwrap();
    let types = [
        "SeatsHeld",
        "SeatsReleased",
        "ReservationPlaced",
        "ReservationExpired",
    ];
    let before = heads(&store, "", &types).await;
    assert_eq!(before.len(), 2);

    // A version conflict on the second stream: the new stream is not indexed either.
    let err = store
        .append(
            vec![
                to_stream(
                    "reservation-2",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream(
                    "inventory-1-a",
                    ExpectedVersion::Exact(1),
                    events("SeatsReleased", 1),
                ),
            ],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { .. }), "{err:?}");
    // A taken idempotency key.
    let err = store
        .append(
            vec![to_stream(
                "reservation-1",
                ExpectedVersion::Exact(1),
                events("ReservationExpired", 1),
            )],
            Some(record),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyTaken(_)), "{err:?}");
    // A retry of the first append.
    assert_eq!(
        store.append(first, None).await.unwrap(),
        AppendOutcome::AlreadyAppended
    );
    // A malformed one.
    let err = store
        .append(
            vec![
                to_stream(
                    "reservation-3",
                    ExpectedVersion::NoStream,
                    events("ReservationPlaced", 1),
                ),
                to_stream("reservation-4", ExpectedVersion::Any, vec![]),
            ],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    assert_eq!(heads(&store, "", &types).await, before);
}

/// What the backfill tests of both backends expect after migrating a store that held
/// `reservation-1` (placed, then payment requested), `reservation-2` (placed last) and
/// `inventory-1-a` (three events), written before the stream index existed: each
/// stream's head is its last event, and the index works for appends after it.
pub async fn assert_backfilled_heads(store: &Store) {
    let mut found = heads(
        store,
        "",
        &[
            "ReservationPlaced",
            "PaymentRequested",
            "SeatsHeld",
            "SectionInitialized",
        ],
    )
    .await;
    found.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    assert_eq!(
        summary(&found),
        vec![
            ("inventory-1-a", 3, "SeatsHeld"),
            ("reservation-1", 2, "PaymentRequested"),
            ("reservation-2", 1, "ReservationPlaced"),
        ]
    );
    for head in &found {
        let last = store.read_stream(&head.stream_id, 0).await.unwrap();
        assert_eq!(head.updated_at, last.last().unwrap().recorded_at);
    }
    assert_eq!(
        summary(
            &heads(
                store,
                "reservation-",
                &["ReservationPlaced", "PaymentRequested"]
            )
            .await
        ),
        vec![
            ("reservation-1", 2, "PaymentRequested"),
            ("reservation-2", 1, "ReservationPlaced"),
        ],
        "oldest first"
    );

    append_ok(
        store,
        "reservation-2",
        ExpectedVersion::Exact(1),
        events("ReservationExpired", 1),
    )
    .await;
    assert_eq!(
        summary(&heads(store, "reservation-", &["ReservationExpired"]).await),
        vec![("reservation-2", 2, "ReservationExpired")]
    );
}

pub async fn an_idempotency_key_claim_excludes_duplicates_until_released_or_expired(store: Store) {
    use ticketing_store::KeyClaim;
    let now = Utc::now();
    let until = now + chrono::TimeDelta::seconds(30);
    let claim = |fingerprint: &'static str, at: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .claim_idempotency_key(
                    "alice/k-1",
                    fingerprint,
                    at,
                    at + chrono::TimeDelta::seconds(30),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        store
            .claim_idempotency_key("alice/k-1", "fp-a", now, until)
            .await
            .unwrap(),
        KeyClaim::Claimed
    );
    assert_eq!(
        claim("fp-a", now).await,
        KeyClaim::Busy {
            request_fingerprint: "fp-a".into()
        }
    );
    assert_eq!(
        claim("fp-b", now).await,
        KeyClaim::Busy {
            request_fingerprint: "fp-a".into()
        }
    );
    // Other keys are independent.
    assert_eq!(
        store
            .claim_idempotency_key("bob/k-1", "fp-a", now, until)
            .await
            .unwrap(),
        KeyClaim::Claimed
    );
    // Released: claimable again.
    store.release_idempotency_key("alice/k-1").await.unwrap();
    assert_eq!(claim("fp-b", now).await, KeyClaim::Claimed);
    // A claim whose holder died expires and is taken over.
    assert_eq!(
        claim("fp-c", now + chrono::TimeDelta::seconds(10)).await,
        KeyClaim::Busy {
            request_fingerprint: "fp-b".into()
        }
    );
    assert_eq!(
        claim("fp-c", now + chrono::TimeDelta::seconds(31)).await,
        KeyClaim::Claimed
    );
    // Releasing an unclaimed key does nothing.
    store.release_idempotency_key("nobody/k").await.unwrap();
}

/// The append that records a key's outcome finishes its claim: from then on a claim
/// answers with the outcome, however late it comes, and a release does not reopen it.
pub async fn an_appended_outcome_finishes_its_claim_and_later_claims_answer_with_it(store: Store) {
    use ticketing_store::KeyClaim;
    let now = Utc::now();
    let until = now + chrono::TimeDelta::seconds(30);
    let record = idempotency("alice/k-2");
    assert_eq!(
        store
            .claim_idempotency_key(&record.key, &record.request_fingerprint, now, until)
            .await
            .unwrap(),
        KeyClaim::Claimed
    );
    store
        .append(
            vec![to_stream(
                "reservation-9",
                ExpectedVersion::NoStream,
                events("SeatsHeld", 1),
            )],
            Some(record.clone()),
        )
        .await
        .unwrap();
    // A release after the outcome is recorded (a stale one, say) changes nothing.
    store.release_idempotency_key(&record.key).await.unwrap();
    for at in [now, now + chrono::TimeDelta::days(365)] {
        assert_eq!(
            store
                .claim_idempotency_key(
                    &record.key,
                    "another-request",
                    at,
                    at + chrono::TimeDelta::seconds(30)
                )
                .await
                .unwrap(),
            KeyClaim::Done(record.clone()),
            "the outcome answers, even long after the claim would have expired"
        );
    }
    assert_eq!(
        store.read_stream("reservation-9", 0).await.unwrap().len(),
        1
    );
}

pub async fn concurrent_claims_of_one_key_let_exactly_one_win(store: Store) {
    use ticketing_store::KeyClaim;
    let now = Utc::now();
    let start = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store
                    .claim_idempotency_key("k", "fp", now, now + chrono::TimeDelta::seconds(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claimed = 0;
    for task in tasks {
        if task.await.unwrap() == KeyClaim::Claimed {
            claimed += 1;
        }
    }
    assert_eq!(claimed, 1);
}

/// The simulated provider's records: the first entry under a key stays, whoever
/// races for it, and every handle on the database sees it.
pub async fn the_provider_ledger_keeps_the_first_entry_of_a_key(store: Store) {
    let ledger = store
        .provider_ledger()
        .expect("a SQL store keeps the ledger");
    assert_eq!(ledger.entry("charge", "k").await.unwrap(), None);
    let first = serde_json::json!({"amount": 100});
    assert_eq!(
        ledger
            .record_once("charge", "k", first.clone())
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        ledger
            .record_once("charge", "k", serde_json::json!({"amount": 200}))
            .await
            .unwrap(),
        first,
        "the first entry stays"
    );
    // Kinds are apart.
    assert_eq!(ledger.entry("refund", "k").await.unwrap(), None);
    // Another handle (another process) reads the same records.
    let other = store.provider_ledger().unwrap();
    assert_eq!(other.entry("charge", "k").await.unwrap(), Some(first));

    let racers: Vec<_> = (0..10)
        .map(|n| {
            let ledger = store.provider_ledger().unwrap();
            tokio::spawn(async move {
                ledger
                    .record_once("refund_of", "ch_sim_1", serde_json::json!(n))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.unwrap());
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every racer is told the one winner: {answers:?}"
    );
}
