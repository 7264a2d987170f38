//! Taking turns on a stream ([`EventStore::lock_stream`]): writers that wait for their
//! turn all append, in order, without losing a version race; one that waits too long is
//! told the stream is busy and writes nothing.

use std::sync::Arc;
use std::time::Duration;

use ticketing_store::{AppendOutcome, EventStore, ExpectedVersion, Snapshot, StoreError};

use crate::harness::{append_ok, event, events, to_stream, with_postgres, Store};

// The behaviours on both backends are in `contract_tests!`; these need PostgreSQL.
/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    ticketing_store::trials![
        ticketing_store::testing::postgres_trial =>
            turns_are_kept_across_processes_on_postgres,
            a_turn_needs_no_second_connection_on_postgres,
    ]
}

const STREAM: &str = "inventory-1-a";
const PATIENT: Duration = Duration::from_secs(20);

/// Twenty writers each read the version in their turn and append right after it:
/// every one of them gets its version, none conflicts.
pub async fn writers_taking_turns_all_append_in_order_without_a_conflict(store: Store) {
    const WRITERS: u64 = 20;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let turn = store.lock_stream(STREAM, PATIENT).await?;
                let version = store.stream_version(STREAM).await?;
                let expected = if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                };
                turn.append(
                    vec![to_stream(STREAM, expected, vec![event("SeatsHeld", n)])],
                    Vec::new(),
                )
                .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(AppendOutcome::Appended {
                stream_versions, ..
            }) => versions.push(stream_versions[0].1),
            other => panic!("every writer appends in its turn, got {other:?}"),
        }
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=WRITERS).collect::<Vec<_>>());
}

/// While one writer holds its turn, another that will not wait long enough is told the
/// stream is busy; once the turn is given up (dropped, appending nothing), the stream
/// is free again.
pub async fn a_writer_that_waits_too_long_for_its_turn_is_told_the_stream_is_busy(store: Store) {
    let holder = store.lock_stream(STREAM, PATIENT).await.unwrap();
    match store.lock_stream(STREAM, Duration::from_millis(50)).await {
        Err(StoreError::Busy { stream_id }) => assert_eq!(stream_id, STREAM),
        Err(other) => panic!("expected Busy, got {other:?}"),
        Ok(_) => panic!("expected Busy, got a second turn"),
    }
    // Another stream is not held up.
    drop(
        store
            .lock_stream("inventory-1-b", Duration::from_millis(50))
            .await
            .expect("another stream's turn"),
    );
    drop(holder);
    let next = store
        .lock_stream(STREAM, Duration::from_millis(500))
        .await
        .expect("the turn once given up");
    next.append(
        vec![to_stream(
            STREAM,
            ExpectedVersion::NoStream,
            events("SeatsHeld", 1),
        )],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(store.stream_version(STREAM).await.unwrap(), 1);
}

/// A turn does not bypass the version check: a writer that appended without waiting
/// for a turn still makes a stale decision conflict.
pub async fn an_append_in_a_turn_still_refuses_a_stale_expected_version(store: Store) {
    let turn = store.lock_stream(STREAM, PATIENT).await.unwrap();
    append_ok(
        &store,
        STREAM,
        ExpectedVersion::NoStream,
        events("SeatsHeld", 1),
    )
    .await;
    let stale = turn
        .append(
            vec![to_stream(
                STREAM,
                ExpectedVersion::NoStream,
                events("SeatsHeld", 1),
            )],
            Vec::new(),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { actual: 1, .. })),
        "{stale:?}"
    );
    assert_eq!(store.stream_version(STREAM).await.unwrap(), 1);
    // The refused turn was given up with its transaction.
    drop(
        store
            .lock_stream(STREAM, Duration::from_millis(500))
            .await
            .unwrap(),
    );
}

/// Two stores on one database share nothing in memory, as two Lambda instances do: a
/// turn held by one makes the other wait, through the database.
async fn turns_are_kept_across_processes_on_postgres() {
    with_postgres(
        "turns_are_kept_across_processes_on_postgres",
        |store| async move {
            let other = ticketing_store::postgres::PostgresStore::new(store.pool().clone());
            let store: Arc<dyn EventStore> = Arc::new(store);
            let holder = store.lock_stream(STREAM, PATIENT).await.unwrap();
            match other.lock_stream(STREAM, Duration::from_millis(100)).await {
                Err(StoreError::Busy { stream_id }) => assert_eq!(stream_id, STREAM),
                Err(e) => panic!("expected Busy, got {e:?}"),
                Ok(_) => panic!("expected Busy, got a second turn"),
            }
            holder
                .append(
                    vec![to_stream(
                        STREAM,
                        ExpectedVersion::NoStream,
                        events("SeatsHeld", 1),
                    )],
                    Vec::new(),
                )
                .await
                .unwrap();
            // Committing the append gave the turn up.
            let next = other
                .lock_stream(STREAM, Duration::from_secs(5))
                .await
                .unwrap();
            next.append(
                vec![to_stream(
                    STREAM,
                    ExpectedVersion::Exact(1),
                    events("SeatsHeld", 1),
                )],
                Vec::new(),
            )
            .await
            .unwrap();
            assert_eq!(store.stream_version(STREAM).await.unwrap(), 2);
        },
    )
    .await;
}

/// A turn reads the stream through its own connection, and sees what it will append
/// after.
pub async fn a_turn_loads_the_stream_it_will_append_to(store: Store) {
    append_ok(
        &store,
        STREAM,
        ExpectedVersion::NoStream,
        events("SeatsHeld", 2),
    )
    .await;
    let mut turn = store.lock_stream(STREAM, PATIENT).await.unwrap();
    assert_eq!(
        turn.load_stream(STREAM).await.unwrap(),
        store.load_stream(STREAM).await.unwrap()
    );
    assert_eq!(
        turn.read_stream(STREAM, 1).await.unwrap(),
        store.read_stream(STREAM, 1).await.unwrap()
    );
    turn.append(
        vec![to_stream(
            STREAM,
            ExpectedVersion::Exact(2),
            events("SeatsHeld", 1),
        )],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(store.stream_version(STREAM).await.unwrap(), 3);
}

/// A writer that knows a stream up to a version reads only what is newer, in its turn
/// or outside one: the snapshot only if it is past that version, and the events after
/// the later of the two; nothing when it knows the stream's head.
pub async fn a_turn_loads_only_what_is_newer_than_a_known_version(store: Store) {
    append_ok(
        &store,
        STREAM,
        ExpectedVersion::NoStream,
        events("SeatsHeld", 5),
    )
    .await;
    let snapshot = Snapshot {
        stream_id: STREAM.to_owned(),
        version: 3,
        schema_version: 1,
        state: serde_json::json!({ "held": 3 }),
    };
    store.save_snapshot(snapshot.clone()).await.unwrap();
    let all = store.read_stream(STREAM, 0).await.unwrap();
    let mut turn = store.lock_stream(STREAM, PATIENT).await.unwrap();

    let loads = [
        (0, Some(&snapshot), &all[3..]),
        (2, Some(&snapshot), &all[3..]),
        (3, None, &all[3..]),
        (4, None, &all[4..]),
        (5, None, &all[5..]),
    ];
    for (known, snapshot, events) in loads {
        let (read_snapshot, read_events) = turn.load_stream_after(STREAM, known).await.unwrap();
        assert_eq!(read_snapshot.as_ref(), snapshot, "knowing version {known}");
        assert_eq!(read_events, events, "knowing version {known}");
        // The store reads the same outside a turn.
        let outside = store.load_stream_after(STREAM, known).await.unwrap();
        assert_eq!(
            outside,
            (read_snapshot, read_events),
            "knowing version {known}"
        );
    }
}

/// With a pool of one connection, a writer in its turn still loads and appends: the
/// turn needs no second connection.
async fn a_turn_needs_no_second_connection_on_postgres() {
    with_postgres(
        "a_turn_needs_no_second_connection_on_postgres",
        |store| async move {
            let options = (*store.pool().connect_options()).clone();
            let single = ticketing_store::postgres::PostgresStore::connect_with(options, 1);
            let single: Arc<dyn EventStore> = Arc::new(single);
            let work = async {
                for n in 0..3 {
                    let mut turn = single.lock_stream(STREAM, PATIENT).await.unwrap();
                    let (_, read) = turn.load_stream(STREAM).await.unwrap();
                    let expected = match read.len() {
                        0 => ExpectedVersion::NoStream,
                        len => ExpectedVersion::Exact(len as u64),
                    };
                    turn.append(
                        vec![to_stream(STREAM, expected, vec![event("SeatsHeld", n)])],
                        Vec::new(),
                    )
                    .await
                    .unwrap();
                }
            };
            tokio::time::timeout(Duration::from_secs(30), work)
                .await
                .expect("three turns on a one-connection pool");
            assert_eq!(store.stream_version(STREAM).await.unwrap(), 3);
        },
    )
    .await;
}

/// A turn extended to a second stream holds both: another writer waiting for either
/// is told it is busy, and the turn appends to both in one transaction.
pub async fn a_turn_extended_to_another_stream_holds_both(store: Store) {
    const OTHER: &str = "inventory-1-a~1";
    let mut turn = store.lock_stream(STREAM, PATIENT).await.unwrap();
    turn.extend(OTHER, PATIENT).await.unwrap();
    for stream in [STREAM, OTHER] {
        match store.lock_stream(stream, Duration::from_millis(50)).await {
            Err(StoreError::Busy { stream_id }) => assert_eq!(stream_id, stream),
            Err(other) => panic!("expected Busy, got {other:?}"),
            Ok(_) => panic!("expected Busy on {stream}, got a second turn"),
        }
    }
    assert_eq!(turn.load_stream(OTHER).await.unwrap(), (None, vec![]));
    turn.append(
        vec![
            to_stream(STREAM, ExpectedVersion::NoStream, events("SeatsHeld", 1)),
            to_stream(OTHER, ExpectedVersion::NoStream, events("SeatsHeld", 2)),
        ],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(store.stream_version(OTHER).await.unwrap(), 2);
    // Both are free again.
    let mut next = store
        .lock_stream(OTHER, Duration::from_millis(500))
        .await
        .unwrap();
    next.extend(STREAM, Duration::from_millis(500))
        .await
        .unwrap();
}

/// A turn may append the decisions of several commands together, each with its own
/// idempotency record: all are stored (and their claims finished) with the events.
/// When one of the keys is recorded already, the whole append is refused, names that
/// key, and writes nothing.
pub async fn a_turn_appends_several_commands_records_together_or_none(store: Store) {
    let record = |key: &str| ticketing_store::IdempotencyRecord {
        key: key.to_owned(),
        request_fingerprint: format!("fp-{key}"),
        outcome: serde_json::json!({ "key": key }),
    };
    let now = chrono::Utc::now();
    let until = now + chrono::TimeDelta::seconds(60);
    for key in ["a/1", "b/1"] {
        let claim = store
            .claim_idempotency_key(key, &format!("fp-{key}"), now, until)
            .await
            .unwrap();
        assert_eq!(claim, ticketing_store::KeyClaim::Claimed);
    }
    let turn = store.lock_stream(STREAM, PATIENT).await.unwrap();
    turn.append(
        vec![
            to_stream(STREAM, ExpectedVersion::NoStream, events("SeatsHeld", 2)),
            to_stream(
                "reservation-a",
                ExpectedVersion::NoStream,
                events("Placed", 1),
            ),
            to_stream(
                "reservation-b",
                ExpectedVersion::NoStream,
                events("Placed", 1),
            ),
        ],
        vec![record("a/1"), record("b/1")],
    )
    .await
    .unwrap();
    for key in ["a/1", "b/1"] {
        assert_eq!(
            store.idempotency_record(key).await.unwrap(),
            Some(record(key))
        );
        // The record finished the claim: a retry is answered with it.
        assert_eq!(
            store
                .claim_idempotency_key(key, &format!("fp-{key}"), now, until)
                .await
                .unwrap(),
            ticketing_store::KeyClaim::Done(record(key))
        );
    }

    let before = store.event_count().await.unwrap();
    let turn = store.lock_stream(STREAM, PATIENT).await.unwrap();
    let refused = turn
        .append(
            vec![
                to_stream(STREAM, ExpectedVersion::Exact(2), events("SeatsHeld", 2)),
                to_stream(
                    "reservation-c",
                    ExpectedVersion::NoStream,
                    events("Placed", 1),
                ),
            ],
            vec![record("c/1"), record("b/1")],
        )
        .await;
    match refused {
        Err(StoreError::IdempotencyKeyTaken(key)) => assert_eq!(key, "b/1"),
        other => panic!("expected the taken key, got {other:?}"),
    }
    assert_eq!(store.event_count().await.unwrap(), before);
    assert_eq!(store.idempotency_record("c/1").await.unwrap(), None);
    assert_eq!(store.stream_version(STREAM).await.unwrap(), 2);
}
