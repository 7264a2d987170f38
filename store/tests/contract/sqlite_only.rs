//! What only the embedded backend needs to show: writers that do not share the
//! in-process lock (two stores on one file, as two processes would be) are still
//! serialised by `BEGIN IMMEDIATE` and the busy timeout.

use std::collections::HashSet;
use std::sync::Arc;

use ticketing_store::sqlite::SqliteStore;
use ticketing_store::{AppendOutcome, ExpectedVersion, GlobalPosition, StoreError};

use crate::harness::{event, to_stream, Store};

/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    ticketing_store::trials![
        ticketing_store::testing::async_trial =>
            two_stores_on_one_file_serialise_their_appends,
            the_stream_index_migration_backfills_the_heads_of_existing_streams,
    ]
}

async fn two_stores_on_one_file_serialise_their_appends() {
    const WRITERS: u64 = 16;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let path = path.to_str().unwrap();
    let stores: [Store; 2] = [
        Arc::new(SqliteStore::open(path).await.unwrap()),
        Arc::new(SqliteStore::open(path).await.unwrap()),
    ];

    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = stores[(n % 2) as usize].clone();
            tokio::spawn(async move {
                let new_event = event("SeatsHeld", n);
                for _ in 0..500 {
                    let current = store.stream_version("inventory-1-a").await.unwrap();
                    let append = to_stream(
                        "inventory-1-a",
                        ExpectedVersion::Exact(current),
                        vec![new_event.clone()],
                    );
                    match store.append(vec![append], None).await {
                        Ok(AppendOutcome::Appended { .. }) => return,
                        Err(StoreError::VersionConflict { .. }) => tokio::task::yield_now().await,
                        other => panic!("writer {n}: unexpected {other:?}"),
                    }
                }
                panic!("writer {n} never got its event in");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let all = stores[0]
        .read_all(GlobalPosition::START, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=WRITERS).collect::<Vec<_>>()
    );
    let transactions: HashSet<i64> = all
        .iter()
        .map(|e| e.global_position.transaction_id)
        .collect();
    assert_eq!(
        transactions.len() as u64,
        WRITERS,
        "one transaction id per append"
    );
}

async fn the_stream_index_migration_backfills_the_heads_of_existing_streams() {
    ticketing_store::testing::with_sqlite(|store| async move {
        let pool = store.pool().clone();
        // Back to the schema before the index, then events written by a release that
        // did not maintain it.
        sqlx::raw_sql("drop table streams; delete from _sqlx_migrations where version = 2;")
            .execute(&pool)
            .await
            .unwrap();
        for (transaction_id, (stream, version, event_type, recorded_at)) in (1..).zip([
            (
                "reservation-1",
                1,
                "ReservationPlaced",
                "2026-06-01T12:00:10.000000Z",
            ),
            (
                "reservation-1",
                2,
                "PaymentRequested",
                "2026-06-01T12:00:20.000000Z",
            ),
            (
                "reservation-2",
                1,
                "ReservationPlaced",
                "2026-06-01T12:00:30.000000Z",
            ),
            (
                "inventory-1-a",
                1,
                "SectionInitialized",
                "2026-06-01T12:00:00.000000Z",
            ),
            (
                "inventory-1-a",
                2,
                "SeatsHeld",
                "2026-06-01T12:00:10.000000Z",
            ),
            (
                "inventory-1-a",
                3,
                "SeatsHeld",
                "2026-06-01T12:00:30.000000Z",
            ),
        ]) {
            sqlx::query(
                "insert into events (stream_id, version, event_id, event_type, schema_version, \
                                     data, metadata, transaction_id, recorded_at) \
                 values (?1, ?2, ?3, ?4, 1, '{}', '{}', ?5, ?6)",
            )
            .bind(stream)
            .bind(version)
            .bind(uuid::Uuid::new_v4().hyphenated().to_string())
            .bind(event_type)
            .bind(transaction_id)
            .bind(recorded_at)
            .execute(&pool)
            .await
            .unwrap();
        }

        store.migrate().await.unwrap();

        let store: Store = Arc::new(store);
        crate::behaviours::assert_backfilled_heads(&store).await;
    })
    .await;
}
