//! Taking turns on a stream ([`EventStore::lock_stream`]): writers that wait for their
//! turn all append, in order, without losing a version race; one that waits too long is
//! told the stream is busy and writes nothing.

use std::sync::Arc;
use std::time::Duration;

use ticketing_store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};

use crate::harness::{append_ok, event, events, to_stream, with_postgres, Store};

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
                    None,
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
        None,
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
            None,
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
                    None,
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
                None,
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
        None,
    )
    .await
    .unwrap();
    assert_eq!(store.stream_version(STREAM).await.unwrap(), 3);
}

/// With a pool of one connection, a writer in its turn still loads and appends: the
/// turn needs no second connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
                        None,
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
        None,
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
