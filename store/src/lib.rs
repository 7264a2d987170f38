//! The event store: one contract ([`EventStore`]) with two backends.
//!
//! - [`postgres`]: PostgreSQL through sqlx, for deployments.
//! - [`sqlite`]: an embedded SQLite file through sqlx, the default when no
//!   `DATABASE_URL` is configured.
//!
//! The store knows nothing about the domain: it keeps opaque, typed JSON payloads
//! ([`NewEvent`], [`RecordedEvent`]) in streams with a per-stream version and a global
//! order. Encoding and upcasting event payloads is the domain crate's job.
//!
//! Beside the events it keeps a stream index: each stream's version and the type of
//! its last event ([`StreamHead`]), written in the same transaction as every append.
//! [`EventStore::find_streams`] reads it, so a process can find streams by where they
//! stand (every purchase waiting for a payment, say) without a read model.
//!
//! And an outbox: every appended event is recorded as unpublished in the append's
//! transaction, until whoever put it on the bus marks it published
//! ([`EventStore::unpublished`], [`EventStore::mark_published`]). A committed event is
//! thus on the bus or still in the outbox, even if its writer died right after the
//! commit; a relay publishes what writers left behind.
//!
//! Layout:
//! - `lib.rs`: the contract types and the [`EventStore`] trait.
//! - `error.rs`: [`StoreError`].
//! - `config.rs`: [`StoreConfig`], choosing and connecting a backend ([`connect`],
//!   [`migrate`]).
//! - `common.rs`: validation and conflict explanation shared by the backends.
//! - `postgres/`, `sqlite/`: the backends.
//! - [`ledger`]: the simulated payment provider's records, in memory or beside the
//!   events.
//! - `testing.rs`: a fresh database per test on either backend, for this crate's
//!   contract suite and the other crates' tests.
#![forbid(unsafe_code)]

mod common;
pub mod config;
mod error;
pub mod ledger;
mod locks;
pub mod postgres;
mod schema;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use config::{
    connect, load_env_file, load_env_file_from, migrate, open_postgres, Backend, EnvFileError,
    StoreConfig, DEFAULT_MAX_CONNECTIONS, DEFAULT_SQLITE_PATH, ENV_FILE,
};
pub use error::StoreError;
pub use ledger::{MemoryLedger, ProviderLedger};

/// The version of a stream: the number of events in it. A stream that does not exist
/// has version 0; its first event has version 1.
pub type StreamVersion = u64;

/// What the writer expects a stream's current version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (0 is the same as `NoStream`).
    Exact(StreamVersion),
    /// No check; the events are appended after whatever is there.
    Any,
}

/// Who caused an event and why: stored beside the payload, never needed to decide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Ties together every event caused by one request.
    pub correlation_id: Option<Uuid>,
    /// The event or command that caused this one.
    pub causation_id: Option<Uuid>,
    /// The authenticated principal that issued the command (`sub` of its token).
    pub actor: Option<String>,
    /// The client's idempotency key of the command that appended this event.
    pub idempotency_key: Option<String>,
    /// The W3C trace context of the request that caused the event: the relay and the
    /// projector continue its trace. Absent when traces are not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// An event to append: an encoded payload with its type and schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Unique across the store: appending an id that is already stored is recognised as
    /// a retry of the same append.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
}

/// Events to append to one stream, with the version the writer decided on.
///
/// Without events it is a condition ([`StreamAppend::condition`]): the append it is
/// part of commits only if that stream is still at its expected version, and writes
/// nothing to it. A writer that decided on a stream it does not change (a hold decides
/// on its show) checks that stream this way, in the append's own round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamAppend {
    pub stream_id: String,
    pub expected_version: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// A condition on `stream_id`: it must still be at `version` (0: not exist) when
    /// the append commits; nothing is written to it.
    pub fn condition(stream_id: impl Into<String>, version: StreamVersion) -> Self {
        Self {
            stream_id: stream_id.into(),
            expected_version: ExpectedVersion::Exact(version),
            events: Vec::new(),
        }
    }

    /// Whether this is a condition rather than events to write.
    pub fn is_condition(&self) -> bool {
        self.events.is_empty()
    }
}

/// A position in the store's global order.
///
/// On PostgreSQL the global order is (`transaction_id`, `position`): events are read
/// only once every transaction that could still commit an event before them has
/// finished, so a reader that checkpoints a `GlobalPosition` never skips an event that
/// committed late with a lower `position`. On SQLite writers are serialised and
/// `transaction_id` grows with every append.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct GlobalPosition {
    pub transaction_id: i64,
    pub position: i64,
}

impl GlobalPosition {
    /// Before the first event: reading after it reads everything.
    pub const START: GlobalPosition = GlobalPosition {
        transaction_id: 0,
        position: 0,
    };
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub global_position: GlobalPosition,
    pub stream_id: String,
    pub version: StreamVersion,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The event's `position`: its key in the outbox ([`EventStore::mark_published`]).
    /// Not the global order on its own; that is [`RecordedEvent::global_position`].
    pub fn position(&self) -> i64 {
        self.global_position.position
    }
}

/// A command's recorded outcome, stored in the same transaction as its events so that a
/// retried command appends nothing and answers as the first one did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The client's key, scoped by the caller (for example `"<actor>:<key>"`).
    pub key: String,
    /// A fingerprint of the request: the same key with another request is refused.
    pub request_fingerprint: String,
    /// The command's outcome as the caller wants to replay it.
    pub outcome: serde_json::Value,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The events were stored: the streams' new versions, in the order of the appends,
    /// and the events as recorded (positions, versions, instants), in the order of the
    /// appends and their events, so that a writer can publish them without reading
    /// them back.
    Appended {
        stream_versions: Vec<(String, StreamVersion)>,
        recorded: Vec<RecordedEvent>,
    },
    /// Every event id of the append was already stored: it is a retry of an append
    /// that committed, and nothing was written.
    AlreadyAppended,
}

impl AppendOutcome {
    /// The outcome of a committed append, from what each of its streams recorded (in
    /// the order of `appends`).
    pub(crate) fn appended(appends: &[StreamAppend], recorded: Vec<Vec<RecordedEvent>>) -> Self {
        let stream_versions = appends
            .iter()
            .zip(&recorded)
            .map(|(append, events)| {
                // A condition's stream stayed where it was expected.
                let unchanged = match append.expected_version {
                    ExpectedVersion::Exact(version) => version,
                    ExpectedVersion::NoStream | ExpectedVersion::Any => 0,
                };
                let version = events.last().map_or(unchanged, |event| event.version);
                (append.stream_id.clone(), version)
            })
            .collect();
        AppendOutcome::Appended {
            stream_versions,
            recorded: recorded.into_iter().flatten().collect(),
        }
    }
}

/// A stream's state folded up to `version`, stored so that loading need not replay
/// every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub stream_id: String,
    pub version: StreamVersion,
    /// The shape of `state`: a snapshot whose schema differs from the loader's is ignored.
    pub schema_version: u32,
    pub state: serde_json::Value,
}

/// Where a stream stands: its version and its last event, as the stream index keeps
/// them.
///
/// The index is written in the same transaction as the events it describes, so a head
/// is never behind a committed append. It says nothing about the payloads: a caller
/// that needs more than the last event's type reads the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHead {
    pub stream_id: String,
    /// The version of the stream's last event.
    pub version: StreamVersion,
    /// The type of the stream's last event.
    pub last_event_type: String,
    /// When the stream's last event was recorded (its `recorded_at`).
    pub updated_at: DateTime<Utc>,
}

/// What [`EventStore::claim_idempotency_key`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyClaim {
    /// The key is now claimed by the caller, until the instant it gave.
    Claimed,
    /// Another command holds the key and has not finished: a duplicate in flight.
    Busy {
        /// The fingerprint of the request that holds it.
        request_fingerprint: String,
    },
    /// The key's command finished: its recorded outcome, to answer with.
    Done(IdempotencyRecord),
}

/// A writer's exclusive turn on a stream ([`EventStore::lock_stream`]): no other
/// writer that asks for a turn on the same stream gets one until this append commits
/// or the turn is dropped.
#[async_trait]
pub trait StreamLock: Send {
    /// Appends as [`EventStore::append`] does, then gives the turn up. The version
    /// checks still apply: a writer that did not wait its turn may have appended.
    ///
    /// `records` are stored in the same transaction: none, one, or one per command
    /// when the turn appends the decisions of several commands together (a batch of
    /// holds on one bucket), which all commit or none does.
    ///
    /// # Errors
    /// As [`EventStore::append`]; a lost race is a [`StoreError::VersionConflict`]
    /// here, for the caller to take another turn; [`StoreError::IdempotencyKeyTaken`]
    /// names the first of `records`' keys found recorded.
    async fn append(
        self: Box<Self>,
        appends: Vec<StreamAppend>,
        records: Vec<IdempotencyRecord>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Takes the turn on another stream too, in this turn's transaction (waiting at
    /// most `wait`): a change to several streams (a hold split across a section's
    /// buckets) holds one connection, however many streams it spans. Callers extend
    /// in one order (by stream id, or bucket), so that no two writers wait on each
    /// other in a circle.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when the turn did not come in time; infrastructure
    /// failures.
    async fn extend(&mut self, stream_id: &str, wait: Duration) -> Result<(), StoreError>;

    /// [`EventStore::load_stream`] through the turn's own connection: a writer in its
    /// turn needs no second connection, so writers holding turns cannot starve each
    /// other of a pool's connections.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn load_stream(
        &mut self,
        stream_id: &str,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        self.load_stream_after(stream_id, 0).await
    }

    /// [`EventStore::load_stream_after`] through the turn's own connection.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn load_stream_after(
        &mut self,
        stream_id: &str,
        known: StreamVersion,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError>;

    /// [`EventStore::read_stream`] through the turn's own connection.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn read_stream(
        &mut self,
        stream_id: &str,
        after_version: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}

/// The event store contract that both backends implement and one test suite checks.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events to one or more streams in one transaction: either every stream
    /// gets its events or none does.
    ///
    /// When `idempotency` is given, the record is stored in the same transaction. So is
    /// the stream index ([`EventStore::find_streams`]): every stream written gets its
    /// new head, and a refused append leaves every head as it was. And so is the
    /// outbox ([`EventStore::unpublished`]): every appended event is unpublished until
    /// it is marked published; a refused append enqueues nothing.
    ///
    /// # Errors
    /// - [`StoreError::VersionConflict`] when a stream is not at its expected version
    ///   (someone else appended first): reload, decide again, retry.
    /// - [`StoreError::IdempotencyKeyTaken`] when the idempotency key was recorded by
    ///   another append: read it with [`EventStore::idempotency_record`].
    /// - [`StoreError::DuplicateEventId`] when some, but not all, of the event ids exist.
    /// - [`StoreError::Invalid`] for an append without events, an empty stream id, or a
    ///   condition ([`StreamAppend::condition`]) that expects `Any`.
    /// - [`StoreError::Unavailable`] / [`StoreError::Database`] for infrastructure failures.
    ///
    /// When an append is refused for more than one reason, the answer that tells the
    /// caller most wins: a retry of a committed append is `Ok(AlreadyAppended)` even
    /// though its expected versions are stale by now; then a partly reused event id;
    /// then a taken idempotency key (a duplicate request should replay the stored
    /// outcome, not retry); then the version conflict. A lost race that the writer's
    /// expectation does not cover (two `Any` appends taking the same version) is
    /// retried inside the store.
    async fn append(
        &self,
        appends: Vec<StreamAppend>,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Waits, at most `wait`, for an exclusive turn on `stream_id`, then returns it:
    /// load, decide, and append through it. Concurrent writers of a hot stream thus
    /// take turns instead of losing version races, across processes on PostgreSQL (a
    /// transaction-scoped advisory lock) and inside the process on SQLite (whose
    /// appends are serialised anyway). Waiting writers of one process queue in
    /// arrival order without holding a database connection.
    ///
    /// A turn holds one pooled connection until it appends or is dropped; the stream
    /// is loaded through it ([`StreamLock::load_stream`]).
    ///
    /// # Errors
    /// [`StoreError::Busy`] when the turn did not come within `wait`;
    /// infrastructure failures.
    async fn lock_stream(
        &self,
        stream_id: &str,
        wait: Duration,
    ) -> Result<Box<dyn StreamLock>, StoreError>;

    /// Reads a stream's events with a version greater than `after_version`, in version order.
    ///
    /// # Errors
    /// Infrastructure failures only; an unknown stream reads as empty.
    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `limit` events after `after` in the global order, never returning an
    /// event while one that sorts before it might still commit.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn read_all(
        &self,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The heads of up to `limit` streams whose id starts with `prefix` and whose last
    /// event is of one of `last_event_types`, least recently appended to first (by
    /// `updated_at`, then stream id).
    ///
    /// This is how background work finds what is waiting for it: the timeout sweeper
    /// asks for `reservation-` streams whose last event is `ReservationPlaced` (an
    /// unpaid hold) or `PaymentRequested` (a payment whose outcome is not recorded).
    /// The prefix is matched literally (`%` and `_` are ordinary characters); an empty
    /// prefix matches every stream, and an empty list of types matches none.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn find_streams(
        &self,
        prefix: &str,
        last_event_types: &[&str],
        limit: usize,
    ) -> Result<Vec<StreamHead>, StoreError>;

    /// How many events the store holds: the length of the global order, for progress
    /// reports (a rebuild's progress bar).
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn event_count(&self) -> Result<u64, StoreError>;

    /// The stream's current version (0 when it does not exist).
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn stream_version(&self, stream_id: &str) -> Result<StreamVersion, StoreError>;

    /// A stream as a loader wants it: its latest snapshot, if any, and the events
    /// after it (after version 0 without one). The PostgreSQL backend reads both in one
    /// round trip.
    ///
    /// # Errors
    /// Infrastructure failures only; an unknown stream reads as empty.
    async fn load_stream(
        &self,
        stream_id: &str,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        self.load_stream_after(stream_id, 0).await
    }

    /// The stream as a loader wants it that already knows it up to version `known`:
    /// the latest snapshot only if it is past `known`, and the events after whichever
    /// of the two is later. With `known` 0, [`EventStore::load_stream`].
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn load_stream_after(
        &self,
        stream_id: &str,
        known: StreamVersion,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        let snapshot = self
            .load_snapshot(stream_id)
            .await?
            .filter(|snapshot| snapshot.version > known);
        let after = snapshot.as_ref().map_or(known, |s| s.version);
        let events = self.read_stream(stream_id, after).await?;
        Ok((snapshot, events))
    }

    /// The latest snapshot of a stream, if any.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Stores a snapshot, replacing an older one of the same stream; an older snapshot
    /// never replaces a newer one.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// The idempotency record stored under `key`, if any.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Claims an idempotency key for a command that is about to run, until `until`,
    /// unless its outcome is recorded already ([`KeyClaim::Done`]): one round trip
    /// answers both "has this run?" and "may I run it?". A claim that expired before
    /// `now` is taken over: its command died.
    ///
    /// An append that records the key's outcome also finishes its claim, in the same
    /// transaction: a finished claim is never taken over, so a duplicate that looked
    /// for the outcome just before it was recorded is told [`KeyClaim::Busy`] rather
    /// than run the command a second time. A command that ends without recording an
    /// outcome releases its claim ([`EventStore::release_idempotency_key`]).
    ///
    /// # Errors
    /// Infrastructure failures only; a held claim is [`KeyClaim::Busy`].
    async fn claim_idempotency_key(
        &self,
        key: &str,
        request_fingerprint: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError>;

    /// Releases a claim whose command ended without recording an outcome, so that a
    /// retry may run it. A finished claim (its outcome recorded) stays.
    ///
    /// # Errors
    /// Infrastructure failures only; releasing an unclaimed key does nothing.
    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError>;

    /// Up to `limit` events still in the outbox (appended, not yet marked published),
    /// in the global order (`transaction_id`, `position`).
    ///
    /// With `older_than`, only events recorded before that instant: a relay passes
    /// "now minus a grace period" so that it leaves fresh events to the command that
    /// wrote them and is publishing them right now.
    ///
    /// Unlike [`EventStore::read_all`] this read need not wait for transactions in
    /// flight: an event that commits later is still in the outbox on the next read, so
    /// nothing is skipped. Within one stream the order is the version order.
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn unpublished(
        &self,
        older_than: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Removes events from the outbox once the bus has acknowledged them, by their
    /// [`RecordedEvent::position`]. Positions that are not (or no longer) in the outbox
    /// are ignored, so marking twice, or racing another publisher, is harmless.
    ///
    /// # Errors
    /// Infrastructure failures only. The events then stay in the outbox and are
    /// published again by the relay: the bus is at-least-once.
    async fn mark_published(&self, positions: &[i64]) -> Result<(), StoreError>;

    /// How many events are in the outbox and when the oldest was recorded: the
    /// backlog an operator watches (`outbox_depth`, `outbox_oldest_age_seconds`).
    ///
    /// # Errors
    /// Infrastructure failures only.
    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError>;

    /// The simulated payment provider's records in this store's database, shared by
    /// every process using it; `None` for a store that keeps none (a test double).
    fn provider_ledger(&self) -> Option<std::sync::Arc<dyn ProviderLedger>> {
        None
    }
}

/// The outbox's backlog ([`EventStore::outbox_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStatus {
    /// Committed events not yet marked published.
    pub depth: u64,
    /// When the oldest of them was recorded; `None` when the outbox is empty.
    pub oldest: Option<DateTime<Utc>>,
}
