//! Any split of the events into batches, with any duplicates and any order, projects
//! to the read models of one clean rebuild (on the embedded store; the backends share
//! the fold, and the suite checks both stores' writes).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use ticketing_store::sqlite::SqliteStore;
use ticketing_store::testing::{sync_trial, Trial};
use ticketing_store::RecordedEvent;

use crate::support::{busy_day, Env};

pub fn trials() -> Vec<Trial> {
    ticketing_store::trials![sync_trial => any_batching_duplication_and_order_gives_the_clean_rebuild]
}

/// How to deliver the events: cut points, a shuffle seed per batch, and extra
/// (duplicate) windows inserted among the batches.
#[derive(Debug, Clone)]
struct Delivery {
    cuts: Vec<bool>,
    seed: u64,
    duplicates: Vec<(usize, usize, usize)>,
}

fn shuffled(mut batch: Vec<RecordedEvent>, seed: u64) -> Vec<RecordedEvent> {
    let key = |e: &RecordedEvent| {
        (e.global_position.position as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left((seed % 63) as u32)
            ^ seed
    };
    batch.sort_by_key(key);
    batch
}

fn batches(events: &[RecordedEvent], delivery: &Delivery) -> Vec<Vec<RecordedEvent>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    for (i, event) in events.iter().enumerate() {
        current.push(event.clone());
        if delivery.cuts.get(i).copied().unwrap_or(false) {
            batches.push(std::mem::take(&mut current));
        }
    }
    batches.push(current);
    for &(start, len, at) in &delivery.duplicates {
        let start = start % events.len();
        let end = (start + len).min(events.len());
        let at = at % (batches.len() + 1);
        batches.insert(at, events[start..end].to_vec());
    }
    batches
        .into_iter()
        .enumerate()
        .map(|(i, b)| shuffled(b, delivery.seed.wrapping_add(i as u64)))
        .collect()
}

pub fn any_batching_duplication_and_order_gives_the_clean_rebuild() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let env = runtime.block_on(async {
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        Env::sqlite(store)
    });
    let (events, clean) = runtime.block_on(async {
        busy_day(&env).await;
        (env.all_events().await, env.rebuilt().await)
    });
    let n = events.len();
    let strategy = (
        proptest::collection::vec(any::<bool>(), n),
        any::<u64>(),
        proptest::collection::vec((0..n, 1..8usize, 0..64usize), 0..4),
    )
        .prop_map(|(cuts, seed, duplicates)| Delivery {
            cuts,
            seed,
            duplicates,
        });
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |delivery| {
            let projected = runtime.block_on(env.project(batches(&events, &delivery)));
            prop_assert_eq!(&projected, &clean);
            Ok(())
        })
        .unwrap();
}
