//! What this process last loaded of the streams every hold reads, each with the
//! version of its stream: shows and buckets.
//!
//! **Shows.** At an on-sale every hold needs its show (the section's price and
//! buckets, whether sales are open), and the show changes rarely. A hold decides on
//! the show as this process knows it, and never commits on a show that has moved
//! since: a batch checks the show's stream in the bucket's turn (one read for the
//! batch), and a hold that runs alone appends with a condition on the show's stream at
//! that version (no round trip of its own). A hold whose show had moved runs again on
//! the show loaded afresh, and so does a refusal decided on a show that has moved
//! since: no hold is granted or refused on a show older than the one it commits
//! against.
//!
//! **Buckets.** A hold (or a batch) loads its bucket in the bucket's turn. The process
//! keeps the bucket as it last loaded it, and the next load in a turn reads only what
//! is newer: a snapshot past that version if one was taken since, and the events after
//! the later of the two (usually the process's own last hold, and those of other
//! processes). What is kept was read from the store in a turn, a state the stream
//! really was in at that version; what came after is read, never assumed.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use ticketing_domain::show::ShowDetails;
use ticketing_domain::{Aggregate, Inventory, ShowId};
use ticketing_store::{StreamLock, StreamVersion};

use crate::repository::{load_via_turn_from, Loaded};
use crate::AppError;

/// A value as its stream was at `version`.
#[derive(Debug, Clone)]
pub(crate) struct Versioned<V> {
    pub value: V,
    pub version: StreamVersion,
}

/// A show as this process last loaded it.
pub(crate) type KnownShow = Versioned<ShowDetails>;

/// The shows this process last loaded for holds.
pub(crate) type KnownShows = Known<ShowId, ShowDetails>;

/// The buckets this process last loaded in their turns, by stream id.
pub(crate) type KnownBuckets = Known<String, Inventory>;

/// Past this many shows known, the process starts over.
pub(crate) const MAX_KNOWN_SHOWS: usize = 4096;

/// Past this many buckets known, the process starts over: a bucket's state holds up
/// to one count per second of a hold's duration.
pub(crate) const MAX_KNOWN_BUCKETS: usize = 1024;

#[derive(Debug)]
pub(crate) struct Known<K, V> {
    entries: Mutex<HashMap<K, Versioned<V>>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Known<K, V> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity,
        }
    }

    pub(crate) fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<Versioned<V>>
    where
        K: Borrow<Q>,
    {
        self.lock().get(key).cloned()
    }

    /// Keeps `value` unless a later version of it is known already.
    pub(crate) fn remember(&self, key: K, value: Versioned<V>) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.clear();
        }
        let newer_known = entries
            .get(&key)
            .is_some_and(|known| known.version > value.version);
        if !newer_known {
            entries.insert(key, value);
        }
    }

    /// Forgets `key` as known at `version`: it has moved on since.
    pub(crate) fn forget(&self, key: &K, version: StreamVersion) {
        let mut entries = self.lock();
        if entries
            .get(key)
            .is_some_and(|known| known.version <= version)
        {
            entries.remove(key);
        }
    }

    /// Forgets whatever is known of `key`: a writer found its stream elsewhere than it
    /// expected (a version conflict).
    pub(crate) fn forget_all<Q: Eq + Hash + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Versioned<V>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<A: Aggregate> Known<String, A> {
    /// Loads `stream_id` in `turn`, reading only what is newer than what is known of
    /// it, and keeps what was loaded.
    ///
    /// # Errors
    /// As [`crate::repository::load`].
    pub(crate) async fn load_in_turn(
        &self,
        turn: &mut dyn StreamLock,
        stream_id: &str,
    ) -> Result<Loaded<A>, AppError> {
        let known = self.get(stream_id);
        let loaded = load_via_turn_from::<A>(turn, stream_id, known).await?;
        let kept = Versioned {
            value: loaded.state.clone(),
            version: loaded.version,
        };
        self.remember(stream_id.to_owned(), kept);
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use ticketing_domain::{
        Currency, InventoryCommand, Money, Quantity, ReservationId, SalesStatus, SectionName,
    };
    use ticketing_store::{EventMetadata, EventStore, Snapshot};

    use super::*;
    use crate::repository::load;

    const STREAM: &str = "inventory-known-floor";

    fn now() -> ticketing_domain::Timestamp {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    /// Decides `command` on the bucket as it is in the store, and appends it.
    async fn decide(store: &dyn EventStore, command: InventoryCommand) {
        let mut turn = store
            .lock_stream(STREAM, Duration::from_secs(30))
            .await
            .unwrap();
        let loaded = load_via_turn_from::<Inventory>(turn.as_mut(), STREAM, None)
            .await
            .unwrap();
        let events = loaded.state.decide(command, now()).unwrap();
        let append = loaded.change(events).into_append(&EventMetadata::default());
        turn.append(vec![append], Vec::new()).await.unwrap();
    }

    fn hold(seats: u32) -> InventoryCommand {
        InventoryCommand::Hold {
            reservation_id: ReservationId::new(),
            quantity: Quantity::new(seats).unwrap(),
            expires_at: now() + chrono::TimeDelta::minutes(10),
            sales: SalesStatus::OnSale,
        }
    }

    /// Loads the bucket in a turn through `known`, as a hold does.
    async fn load_known(store: &dyn EventStore, known: &KnownBuckets) -> Loaded<Inventory> {
        let mut turn = store
            .lock_stream(STREAM, Duration::from_secs(30))
            .await
            .unwrap();
        known.load_in_turn(turn.as_mut(), STREAM).await.unwrap()
    }

    /// A bucket loaded from what the process knew of it, after other writers appended
    /// and snapshots were taken (usable or not), is the bucket as a full load finds it.
    #[tokio::test]
    async fn a_bucket_loaded_from_what_is_known_is_the_bucket_loaded_in_full() {
        ticketing_store::testing::with_sqlite(|store| async move {
            let store: &dyn EventStore = &store;
            decide(
                store,
                InventoryCommand::Initialize {
                    show_id: ticketing_domain::ShowId::new(),
                    section: SectionName::parse("Floor").unwrap(),
                    capacity: 100,
                    unit_price: Money::unit_price(4500, Currency::parse("EUR").unwrap()).unwrap(),
                    max_per_order: 8,
                },
            )
            .await;
            decide(store, hold(1)).await;
            let known = KnownBuckets::with_capacity(MAX_KNOWN_BUCKETS);
            assert_eq!(load_known(store, &known).await.version, 2);

            let snapshot_of = |loaded: &Loaded<Inventory>, schema_version| Snapshot {
                stream_id: STREAM.to_owned(),
                version: loaded.version,
                schema_version,
                state: serde_json::to_value(&loaded.state).unwrap(),
            };
            // Others append; then a usable snapshot; then an unreadable one.
            for (seats, snapshot_schema) in [
                (2, None),
                (3, Some(Inventory::SNAPSHOT_VERSION)),
                (4, Some(0)),
            ] {
                decide(store, hold(seats)).await;
                if let Some(schema_version) = snapshot_schema {
                    let full = load::<Inventory>(store, STREAM).await.unwrap();
                    store
                        .save_snapshot(snapshot_of(&full, schema_version))
                        .await
                        .unwrap();
                }
                decide(store, hold(1)).await;
                let full = load::<Inventory>(store, STREAM).await.unwrap();
                let from_known = load_known(store, &known).await;
                assert_eq!(
                    (from_known.version, &from_known.state),
                    (full.version, &full.state),
                    "after a hold of {seats}"
                );
                assert_eq!(known.get(STREAM).map(|k| k.version), Some(full.version));
            }
        })
        .await;
    }
}
