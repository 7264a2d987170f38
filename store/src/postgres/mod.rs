//! The PostgreSQL backend, for deployments.
//!
//! - Optimistic concurrency rests on the `events_stream_version_key` unique constraint:
//!   two writers that both read version `n` cannot both store `n + 1`.
//! - A retried append is recognised by the `events_event_id_key` unique constraint.
//! - Readers of the global order ([`EventStore::read_all`]) order by the writing
//!   transaction's id, then position, and read only below the oldest transaction still
//!   in flight, so an event that commits late with a lower position is never skipped.
//! - The stream index (`streams`, read by [`EventStore::find_streams`]) is upserted
//!   right after each stream's events, in the append's transaction: a refused append
//!   rolls it back with the events. Version checks still read `events`, the truth.
//! - The outbox (`outbox`, read by [`EventStore::unpublished`]) gets the append's
//!   events in the same transaction, after every stream is written.
//!
//! Layout: `mod.rs` (the store), `sql.rs` (its statements).

mod sql;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::common::{self, Refusal, RefusalLookups};
use crate::locks::{StreamTurns, Turn};
use crate::{
    AppendOutcome, EventStore, ExpectedVersion, GlobalPosition, IdempotencyRecord, KeyClaim,
    OutboxStatus, RecordedEvent, Snapshot, StoreError, StreamAppend, StreamHead, StreamLock,
    StreamVersion,
};

/// The PostgreSQL schema: `migrations/postgres`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// The relay's read of the outbox (`unpublished`), for tests that look at its plan.
#[cfg(feature = "testing")]
pub const UNPUBLISHED_SQL: &str = sql::UNPUBLISHED;

/// The statements committed without waiting for the WAL to reach the disk, for tests
/// that check that they are, and that their connection's next transaction is not.
#[cfg(feature = "testing")]
pub mod lazily_committed {
    /// Binds: key, request fingerprint, claimed until, now.
    pub const CLAIM_IDEMPOTENCY_KEY: &str = super::sql::CLAIM_IDEMPOTENCY_KEY;
    /// Binds: key.
    pub const RELEASE_IDEMPOTENCY_KEY: &str = super::sql::RELEASE_IDEMPOTENCY_KEY;
    /// Binds: the events' positions.
    pub const MARK_PUBLISHED: &str = super::sql::MARK_PUBLISHED;
}

/// How long an operation waits for a pooled connection before the store reports
/// itself unavailable. Short, so that a request fails fast with a 503 instead of
/// hanging until the Lambda times out.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The event store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// This process's queue of writers per stream ([`EventStore::lock_stream`]).
    turns: StreamTurns,
}

impl PostgresStore {
    /// Wraps an existing pool, for callers (and tests) that build their own.
    pub fn new(pool: PgPool) -> Self {
        PostgresStore {
            pool,
            turns: StreamTurns::default(),
        }
    }

    /// Builds a pool for `url` without connecting: the first query connects. A Lambda
    /// cold start thus does no network round trip before it is asked to.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the URL cannot be parsed. The message never
    /// contains the URL, which may hold a password.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Invalid(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
        })?;
        Ok(Self::connect_with(options, max_connections))
    }

    /// Like [`PostgresStore::connect`], with options that are already parsed.
    pub fn connect_with(options: PgConnectOptions, max_connections: u32) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Self::new(pool)
    }

    /// The pool, shared with other PostgreSQL adapters of the same process.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the pending migrations of `migrations/postgres`.
    ///
    /// # Errors
    /// [`StoreError::Migration`] when a migration fails or the database is unreachable.
    #[tracing::instrument(skip(self))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Checks that every migration this binary carries has been applied, so that a
    /// binary started on a new or outdated database refuses to start, naming the
    /// command that fixes it, instead of answering requests with 500s. Migrations
    /// applied beyond this binary's are fine: a deploy migrates before it replaces the
    /// running code.
    ///
    /// # Errors
    /// [`StoreError::SchemaBehind`] naming what is missing; [`StoreError::Unavailable`]
    /// when the database cannot be reached.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let applied: Vec<(i64, bool)> =
            match sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows,
                // No migration table: nothing was ever applied.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
                Err(e) => return Err(StoreError::from_sqlx(e)),
            };
        crate::schema::missing_migrations(&MIGRATOR, &applied)
            .map_or(Ok(()), |missing| Err(StoreError::SchemaBehind(missing)))
    }

    /// One attempt at an append, inside `tx`, in one statement ([`sql::APPEND`]).
    /// Streams are written in the order of `order` (sorted by stream id) so that two
    /// multi-stream appends wait for each other's rows in the same order and cannot
    /// deadlock.
    async fn write(
        tx: &mut Transaction<'static, Postgres>,
        appends: &[StreamAppend],
        order: &[usize],
        records: &[IdempotencyRecord],
    ) -> Result<Vec<Vec<RecordedEvent>>, Refusal> {
        let count: usize = appends.iter().map(|a| a.events.len()).sum();
        let mut streams = Vec::with_capacity(count);
        let mut expected_versions = Vec::with_capacity(count);
        let mut places = Vec::with_capacity(count);
        let mut ids = Vec::with_capacity(count);
        let mut types = Vec::with_capacity(count);
        let mut schema_versions = Vec::with_capacity(count);
        let mut data = Vec::with_capacity(count);
        let mut metadata = Vec::with_capacity(count);
        let mut conditions = Vec::new();
        let mut conditions_expected = Vec::new();
        for &index in order {
            let append = &appends[index];
            let expected: i64 = match append.expected_version {
                ExpectedVersion::Any => -1,
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Exact(version) => {
                    common::to_i64(version, "a version").map_err(Refusal::Failed)?
                }
            };
            if append.is_condition() {
                conditions.push(append.stream_id.as_str());
                conditions_expected.push(expected);
            }
            for (place, event) in (1_i64..).zip(&append.events) {
                streams.push(append.stream_id.as_str());
                expected_versions.push(expected);
                places.push(place);
                ids.push(event.event_id);
                types.push(event.event_type.as_str());
                schema_versions.push(
                    common::schema_version_to_i32(event.schema_version).map_err(Refusal::Failed)?,
                );
                data.push(&event.data);
                metadata.push(common::encode_metadata(&event.metadata));
            }
        }
        let rows = sqlx::query(sql::APPEND)
            .bind(&streams)
            .bind(&expected_versions)
            .bind(&places)
            .bind(&ids)
            .bind(&types)
            .bind(&schema_versions)
            .bind(&data)
            .bind(&metadata)
            .bind(records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|r| r.request_fingerprint.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(records.iter().map(|r| &r.outcome).collect::<Vec<_>>())
            .bind(&conditions)
            .bind(&conditions_expected)
            .fetch_all(&mut **tx)
            .await;
        let rows = match rows {
            Err(sqlx::Error::Database(db))
                if db.is_unique_violation() && db.constraint() == Some("idempotency_keys_pkey") =>
            {
                return Err(Refusal::KeyTaken);
            }
            rows => rows?,
        };

        let mut recorded = vec![Vec::new(); appends.len()];
        let index_of: HashMap<&str, usize> = appends
            .iter()
            .enumerate()
            .map(|(index, append)| (append.stream_id.as_str(), index))
            .collect();
        let mut stored = 0;
        let mut current: HashMap<String, i64> = HashMap::new();
        for row in &rows {
            let stream_id: String = row.try_get("stream_id")?;
            let Some(position) = row.try_get::<Option<i64>, _>("position")? else {
                current.insert(stream_id, row.try_get("current")?);
                continue;
            };
            let Some(&index) = index_of.get(stream_id.as_str()) else {
                return Err(Refusal::Failed(StoreError::Corrupt(format!(
                    "the append returned an event of {stream_id}, which it was not given"
                ))));
            };
            let event = appends[index]
                .events
                .get(recorded[index].len())
                .ok_or_else(|| {
                    Refusal::Failed(StoreError::Corrupt(format!(
                        "the append returned more events of {stream_id} than it was given"
                    )))
                })?;
            recorded[index].push(RecordedEvent {
                global_position: GlobalPosition {
                    transaction_id: row.try_get("transaction_id")?,
                    position,
                },
                stream_id,
                version: common::stored_u64(row.try_get("version")?, "version")
                    .map_err(Refusal::Failed)?,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                data: event.data.clone(),
                metadata: event.metadata.clone(),
                recorded_at: row.try_get("recorded_at")?,
            });
            stored += 1;
        }
        if stored == count {
            return Ok(recorded);
        }
        // Nothing was stored: report the first stream, in write order, whose version
        // did not match.
        for &index in order {
            let append = &appends[index];
            let at = current.get(&append.stream_id).copied().unwrap_or(0);
            let at = common::stored_u64(at, "version").map_err(Refusal::Failed)?;
            common::check_expected_version(&append.stream_id, append.expected_version, at)
                .map_err(Refusal::Conflict)?;
        }
        Err(Refusal::Failed(StoreError::Corrupt(format!(
            "{stored} of {count} events were stored, though every stream was at its expected version"
        ))))
    }

    /// One attempt at an append in `tx`: committed, or rolled back and the refusal
    /// explained. `Ok(None)` when it lost a race that another attempt may win.
    async fn try_append(
        &self,
        mut tx: Transaction<'static, Postgres>,
        appends: &[StreamAppend],
        order: &[usize],
        records: &[IdempotencyRecord],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let refusal = match Self::write(&mut tx, appends, order, records).await {
            Ok(recorded) => {
                tx.commit().await?;
                return Ok(Some(AppendOutcome::appended(appends, recorded)));
            }
            Err(refusal) => refusal,
        };
        // Roll back before looking at what is stored, so that nothing of this
        // attempt is visible or locked while the refusal is explained.
        tx.rollback().await?;
        common::settle(self, refusal, appends, records).await
    }
}

#[async_trait]
impl RefusalLookups for PostgresStore {
    async fn stored_event_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let stored: Vec<Uuid> = sqlx::query_scalar(sql::STORED_EVENT_IDS)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(stored.into_iter().collect())
    }

    async fn key_recorded(&self, key: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(sql::IDEMPOTENCY_KEY_EXISTS)
            .bind(key)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A stream's snapshot past version `known` and the events after both, through
/// `executor` (the pool, or a turn's transaction).
async fn load_stream_with<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    stream_id: &str,
    known: StreamVersion,
) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
    let rows = sqlx::query(sql::LOAD_STREAM)
        .bind(stream_id)
        .bind(common::to_i64(known, "a known version")?)
        .fetch_all(executor)
        .await?;
    let snapshot = match rows.first() {
        Some(row) => match row.try_get::<Option<i64>, _>("snapshot_version")? {
            Some(version) => Some(Snapshot {
                stream_id: stream_id.to_owned(),
                version: common::stored_u64(version, "snapshot version")?,
                schema_version: common::stored_u32(
                    i64::from(row.try_get::<i32, _>("snapshot_schema_version")?),
                    "snapshot schema_version",
                )?,
                state: row.try_get("snapshot_state")?,
            }),
            None => None,
        },
        None => None,
    };
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<i64>, _>("position")?.is_some() {
            events.push(decode_event(row)?);
        }
    }
    Ok((snapshot, events))
}

/// A stream's events after `after_version`, through `executor` (the pool, or a turn's
/// transaction).
async fn read_stream_with<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    stream_id: &str,
    after_version: StreamVersion,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let after = i64::try_from(after_version).unwrap_or(i64::MAX);
    let rows = sqlx::query(sql::READ_STREAM)
        .bind(stream_id)
        .bind(after)
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode_event).collect()
}

/// The SQLSTATE of a lock wait that ran out (`lock_timeout`).
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The order in which an append writes its streams: by stream id, so that two
/// multi-stream appends take the index rows' locks in the same order.
fn write_order(appends: &[StreamAppend]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..appends.len()).collect();
    order.sort_by(|&a, &b| appends[a].stream_id.cmp(&appends[b].stream_id));
    order
}

/// The advisory lock key of a stream: FNV-1a, stable across builds and processes (std's
/// hasher is not), so every function of a deployment locks a stream under one key. Two
/// streams that share a key only take turns needlessly.
fn advisory_key(stream_id: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in stream_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A turn on a stream: this process's turn, then the advisory lock, held by the
/// transaction the append commits.
struct PgStreamLock {
    store: PostgresStore,
    tx: Transaction<'static, Postgres>,
    /// This process's turns, on the first stream and those the turn was extended to.
    turns: Vec<Turn>,
}

#[async_trait]
impl StreamLock for PgStreamLock {
    #[tracing::instrument(
        name = "append",
        skip_all,
        fields(streams = appends.len(), first_stream = appends.first().map(|a| a.stream_id.as_str()), in_turn = true)
    )]
    async fn append(
        self: Box<Self>,
        appends: Vec<StreamAppend>,
        records: Vec<IdempotencyRecord>,
    ) -> Result<AppendOutcome, StoreError> {
        common::validate(&appends, &records)?;
        let order = write_order(&appends);
        let PgStreamLock { store, tx, turns } = *self;
        match store.try_append(tx, &appends, &order, &records).await? {
            Some(outcome) => {
                drop(turns);
                Ok(outcome)
            }
            None => Err(common::conflict_after_repeated_races(&store, &appends).await),
        }
    }

    async fn extend(&mut self, stream_id: &str, wait: Duration) -> Result<(), StoreError> {
        let turn = self.store.turns.wait(stream_id, wait).await?;
        // The transaction's lock_timeout, set when the turn began, bounds this wait.
        match sqlx::query(sql::LOCK_STREAM)
            .bind(advisory_key(stream_id))
            .execute(&mut *self.tx)
            .await
        {
            Ok(_) => {
                self.turns.push(turn);
                Ok(())
            }
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                Err(StoreError::Busy {
                    stream_id: stream_id.to_owned(),
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn load_stream_after(
        &mut self,
        stream_id: &str,
        known: StreamVersion,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        load_stream_with(&mut *self.tx, stream_id, known).await
    }

    async fn read_stream(
        &mut self,
        stream_id: &str,
        after_version: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream_with(&mut *self.tx, stream_id, after_version).await
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    #[tracing::instrument(
        skip(self, appends, idempotency),
        fields(streams = appends.len(), first_stream = appends.first().map(|a| a.stream_id.as_str()))
    )]
    async fn append(
        &self,
        appends: Vec<StreamAppend>,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<AppendOutcome, StoreError> {
        let records = idempotency.as_slice();
        common::validate(&appends, records)?;
        let order = write_order(&appends);
        common::append_retrying(self, &appends, || async {
            let tx = self.pool.begin().await?;
            self.try_append(tx, &appends, &order, records).await
        })
        .await
    }

    #[tracing::instrument(skip(self, wait), fields(wait_ms = wait.as_millis()))]
    async fn lock_stream(
        &self,
        stream_id: &str,
        wait: Duration,
    ) -> Result<Box<dyn StreamLock>, StoreError> {
        let started = Instant::now();
        let turn = self.turns.wait(stream_id, wait).await?;
        // What is left of the wait bounds the database lock, and every lock the turn's
        // append waits for. The milliseconds are a number this code makes: nothing of
        // the caller's is spliced into the statement. The lock is taken by a statement
        // of its own, so that a lock that times out aborts a transaction sqlx knows
        // about and rolls back (a failed `BEGIN` statement would leave its connection
        // in the pool inside an aborted transaction).
        let left = wait.saturating_sub(started.elapsed()).as_millis().max(1);
        let mut tx = self
            .pool
            .begin_with(format!("BEGIN; SET LOCAL lock_timeout = '{left}ms'"))
            .await?;
        match sqlx::query(sql::LOCK_STREAM)
            .bind(advisory_key(stream_id))
            .execute(&mut *tx)
            .await
        {
            Ok(_) => Ok(Box::new(PgStreamLock {
                store: self.clone(),
                tx,
                turns: vec![turn],
            })),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                Err(StoreError::Busy {
                    stream_id: stream_id.to_owned(),
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    #[tracing::instrument(skip(self), fields(stream_id = %stream_id, after_version))]
    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream_with(&self.pool, stream_id, after_version).await
    }

    #[tracing::instrument(skip(self), fields(after.transaction_id = after.transaction_id, after.position = after.position, limit))]
    async fn read_all(
        &self,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql::READ_ALL)
            .bind(after.transaction_id)
            .bind(after.position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    #[tracing::instrument(skip(self, last_event_types), fields(prefix = %prefix, types = last_event_types.len(), limit))]
    async fn find_streams(
        &self,
        prefix: &str,
        last_event_types: &[&str],
        limit: usize,
    ) -> Result<Vec<StreamHead>, StoreError> {
        if limit == 0 || last_event_types.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql::FIND_STREAMS)
            .bind(prefix)
            .bind(last_event_types)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StreamHead {
                    stream_id: row.try_get("stream_id")?,
                    version: common::stored_u64(row.try_get("version")?, "stream version")?,
                    last_event_type: row.try_get("last_event_type")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn event_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(sql::EVENT_COUNT)
            .fetch_one(&self.pool)
            .await?;
        common::stored_u64(count, "count")
    }

    #[tracing::instrument(skip(self), fields(stream_id = %stream_id))]
    async fn stream_version(&self, stream_id: &str) -> Result<StreamVersion, StoreError> {
        let version: i64 = sqlx::query_scalar(sql::STREAM_VERSION)
            .bind(stream_id)
            .fetch_one(&self.pool)
            .await?;
        common::stored_u64(version, "version")
    }

    #[tracing::instrument(skip(self), fields(stream_id = %stream_id))]
    async fn load_stream(
        &self,
        stream_id: &str,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        load_stream_with(&self.pool, stream_id, 0).await
    }

    async fn load_stream_after(
        &self,
        stream_id: &str,
        known: StreamVersion,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        load_stream_with(&self.pool, stream_id, known).await
    }

    #[tracing::instrument(skip(self), fields(stream_id = %stream_id))]
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(sql::LOAD_SNAPSHOT)
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Snapshot {
                stream_id: row.try_get("stream_id")?,
                version: common::stored_u64(row.try_get("version")?, "snapshot version")?,
                schema_version: common::stored_u32(
                    i64::from(row.try_get::<i32, _>("schema_version")?),
                    "snapshot schema_version",
                )?,
                state: row.try_get("state")?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip(self, snapshot), fields(stream_id = %snapshot.stream_id, version = snapshot.version))]
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        if snapshot.stream_id.is_empty() {
            return Err(StoreError::Invalid("a stream id must not be empty".into()));
        }
        sqlx::query(sql::SAVE_SNAPSHOT)
            .bind(&snapshot.stream_id)
            .bind(common::to_i64(snapshot.version, "a snapshot version")?)
            .bind(common::schema_version_to_i32(snapshot.schema_version)?)
            .bind(&snapshot.state)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self, key))]
    async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(sql::LOAD_IDEMPOTENCY_KEY)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(IdempotencyRecord {
                key: row.try_get("key")?,
                request_fingerprint: row.try_get("request_fingerprint")?,
                outcome: row.try_get("outcome")?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip(self, request_fingerprint), fields(key = %key))]
    async fn claim_idempotency_key(
        &self,
        key: &str,
        request_fingerprint: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        let row = sqlx::query(sql::CLAIM_IDEMPOTENCY_KEY)
            .bind(key)
            .bind(request_fingerprint)
            .bind(until)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            // Its holder released it a moment ago: the client's retry may claim it.
            return Ok(KeyClaim::Busy {
                request_fingerprint: request_fingerprint.to_owned(),
            });
        };
        let state: &str = row.try_get("state")?;
        Ok(match state {
            "done" => KeyClaim::Done(IdempotencyRecord {
                key: key.to_owned(),
                request_fingerprint: row.try_get("request_fingerprint")?,
                outcome: row.try_get("outcome")?,
            }),
            "claimed" => KeyClaim::Claimed,
            _ => KeyClaim::Busy {
                request_fingerprint: row.try_get("request_fingerprint")?,
            },
        })
    }

    #[tracing::instrument(skip(self), fields(key = %key))]
    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(sql::RELEASE_IDEMPOTENCY_KEY)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self), fields(?older_than, limit))]
    async fn unpublished(
        &self,
        older_than: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql::UNPUBLISHED)
            .bind(older_than)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_event).collect()
    }

    #[tracing::instrument(skip(self, positions), fields(count = positions.len()))]
    async fn mark_published(&self, positions: &[i64]) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        sqlx::query(sql::MARK_PUBLISHED)
            .bind(positions)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let (depth, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(sql::OUTBOX_STATUS)
            .fetch_one(&self.pool)
            .await?;
        Ok(OutboxStatus {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest,
        })
    }

    fn provider_ledger(&self) -> Option<std::sync::Arc<dyn crate::ProviderLedger>> {
        Some(std::sync::Arc::new(PostgresLedger(self.pool.clone())))
    }
}

/// Turns a row of the event columns (see `sql.rs`) into a [`RecordedEvent`].
fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    Ok(RecordedEvent {
        global_position: GlobalPosition {
            transaction_id: row.try_get("transaction_id")?,
            position: row.try_get("position")?,
        },
        stream_id: row.try_get("stream_id")?,
        version: common::stored_u64(row.try_get("version")?, "version")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: common::stored_u32(
            i64::from(row.try_get::<i32, _>("schema_version")?),
            "schema_version",
        )?,
        data: row.try_get("data")?,
        metadata: common::decode_metadata(row.try_get("metadata")?)?,
        recorded_at,
    })
}

/// The simulated provider's ledger in this database (table `simulated_provider_ledger`).
#[derive(Debug, Clone)]
struct PostgresLedger(PgPool);

const INSERT_ENTRY: &str = "insert into simulated_provider_ledger (kind, key, entry) values ($1, $2, $3) on conflict (kind, key) do nothing";
const SELECT_ENTRY: &str =
    "select entry from simulated_provider_ledger where kind = $1 and key = $2";

#[async_trait]
impl crate::ProviderLedger for PostgresLedger {
    async fn record_once(
        &self,
        kind: &str,
        key: &str,
        entry: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        sqlx::query(INSERT_ENTRY)
            .bind(kind)
            .bind(key)
            .bind(&entry)
            .execute(&self.0)
            .await?;
        self.entry(kind, key)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a ledger entry vanished after its insert".into()))
    }

    async fn entry(&self, kind: &str, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let entry: Option<serde_json::Value> = sqlx::query_scalar(SELECT_ENTRY)
            .bind(kind)
            .bind(key)
            .fetch_optional(&self.0)
            .await?;
        Ok(entry)
    }
}
