//! The embedded SQLite backend: the default when no `DATABASE_URL` is configured.
//!
//! SQLite has one writer at a time. Appends are serialised twice over: an in-process
//! mutex queues the tasks of this process without busy-waiting, and every write
//! transaction starts with `BEGIN IMMEDIATE`, which takes the database's write lock up
//! front so that another process (a second `ticketing` command on the same file)
//! waits for the busy timeout instead of failing half-way through an append. Because
//! writers are serialised, `transaction_id` is simply the previous one plus one, and
//! the global order has no gaps to guard against. The stream index (`streams`) is
//! upserted in the same transaction as each stream's events, and the outbox
//! (`outbox`) gets every event of the append in that transaction too.
//!
//! Storage: UUIDs as hyphenated text, JSON as text, instants as RFC 3339 text in UTC
//! with six fractional digits (see `migrations/sqlite`).
//!
//! Layout: `mod.rs` (the store), `sql.rs` (its statements).

mod sql;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::common::{self, Refusal, RefusalLookups};
use crate::locks::{StreamTurns, Turn};
use crate::{
    AppendOutcome, EventStore, GlobalPosition, IdempotencyRecord, KeyClaim, OutboxStatus,
    RecordedEvent, Snapshot, StoreError, StreamAppend, StreamHead, StreamLock, StreamVersion,
};

/// The SQLite schema: `migrations/sqlite`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a statement waits for another process's write lock before failing with
/// [`StoreError::Unavailable`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The pool size of [`SqliteStore::open`]: a few readers beside the one writer.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;

/// The event store in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Serialises this process's appends; see the module documentation.
    write_lock: Arc<Mutex<()>>,
    /// This process's queue of writers per stream ([`EventStore::lock_stream`]).
    turns: StreamTurns,
}

impl SqliteStore {
    /// Opens (creating it if missing) and migrates the SQLite database at
    /// `path_or_url`: a file path, or a `sqlite:` URL such as `sqlite:data/ticketing.db`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an unparsable URL; [`StoreError::Unavailable`] /
    /// [`StoreError::Database`] when the file cannot be opened;
    /// [`StoreError::Migration`] when the schema cannot be brought up to date.
    pub async fn open(path_or_url: &str) -> Result<Self, StoreError> {
        Self::open_with(path_or_url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Like [`SqliteStore::open`], with the pool size.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    #[tracing::instrument(skip(path_or_url))]
    pub async fn open_with(path_or_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url)
                .map_err(|e| StoreError::Invalid(format!("not a valid SQLite URL: {e}")))?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing pool without migrating it. The pool's connections should use
    /// WAL mode and a busy timeout, as [`SqliteStore::open`] sets them.
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore {
            pool,
            write_lock: Arc::new(Mutex::new(())),
            turns: StreamTurns::default(),
        }
    }

    /// The pool, shared with other SQLite adapters of the same process (the embedded
    /// read models).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the pending migrations of `migrations/sqlite`.
    ///
    /// # Errors
    /// [`StoreError::Migration`] when a migration fails.
    #[tracing::instrument(skip(self))]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// One attempt at an append, inside a `BEGIN IMMEDIATE` transaction.
    async fn write(
        tx: &mut Transaction<'static, Sqlite>,
        appends: &[StreamAppend],
        records: &[IdempotencyRecord],
    ) -> Result<Vec<Vec<RecordedEvent>>, Refusal> {
        let transaction_id: i64 = sqlx::query_scalar(sql::NEXT_TRANSACTION_ID)
            .fetch_one(&mut **tx)
            .await?;
        let recorded_at = format_instant(Utc::now());
        // The instant as it is stored and read back.
        let recorded_instant = parse_instant(&recorded_at).map_err(Refusal::Failed)?;
        let mut recorded = Vec::with_capacity(appends.len());
        for append in appends {
            let current: i64 = sqlx::query_scalar(sql::STREAM_VERSION)
                .bind(&append.stream_id)
                .fetch_one(&mut **tx)
                .await?;
            let current = common::stored_u64(current, "version").map_err(Refusal::Failed)?;
            common::check_expected_version(&append.stream_id, append.expected_version, current)
                .map_err(Refusal::Conflict)?;
            if append.is_condition() {
                recorded.push(Vec::new());
                continue;
            }
            let mut stream_recorded = Vec::with_capacity(append.events.len());
            for (offset, event) in (1..).zip(&append.events) {
                let version =
                    common::to_i64(current + offset, "a version").map_err(Refusal::Failed)?;
                let schema_version =
                    common::schema_version_to_i32(event.schema_version).map_err(Refusal::Failed)?;
                let position: i64 = sqlx::query_scalar(sql::INSERT_EVENT)
                    .bind(&append.stream_id)
                    .bind(version)
                    .bind(event.event_id.hyphenated().to_string())
                    .bind(&event.event_type)
                    .bind(schema_version)
                    .bind(event.data.to_string())
                    .bind(common::encode_metadata(&event.metadata).to_string())
                    .bind(transaction_id)
                    .bind(&recorded_at)
                    .fetch_one(&mut **tx)
                    .await?;
                stream_recorded.push(RecordedEvent {
                    global_position: GlobalPosition {
                        transaction_id,
                        position,
                    },
                    stream_id: append.stream_id.clone(),
                    version: current + offset,
                    event_id: event.event_id,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    data: event.data.clone(),
                    metadata: event.metadata.clone(),
                    recorded_at: recorded_instant,
                });
            }
            let head = current + append.events.len() as u64;
            let last_event_type = append
                .events
                .last()
                .map(|event| event.event_type.as_str())
                .unwrap_or_default();
            sqlx::query(sql::UPSERT_STREAM_HEAD)
                .bind(&append.stream_id)
                .bind(common::to_i64(head, "a version").map_err(Refusal::Failed)?)
                .bind(last_event_type)
                .bind(&recorded_at)
                .execute(&mut **tx)
                .await?;
            recorded.push(stream_recorded);
        }
        sqlx::query(sql::ENQUEUE_TRANSACTION_EVENTS)
            .bind(transaction_id)
            .execute(&mut **tx)
            .await?;

        for record in records {
            let inserted = sqlx::query(sql::INSERT_IDEMPOTENCY_KEY)
                .bind(&record.key)
                .bind(&record.request_fingerprint)
                .bind(record.outcome.to_string())
                .bind(&recorded_at)
                .execute(&mut **tx)
                .await;
            match inserted {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(Refusal::KeyTaken);
                }
                other => {
                    other?;
                }
            }
            sqlx::query(sql::FINISH_IDEMPOTENCY_CLAIM)
                .bind(&record.key)
                .bind(sql::CLAIM_FINISHED)
                .execute(&mut **tx)
                .await?;
        }
        Ok(recorded)
    }

    /// [`EventStore::append`] with any number of idempotency records.
    async fn append_recording(
        &self,
        appends: Vec<StreamAppend>,
        records: &[IdempotencyRecord],
    ) -> Result<AppendOutcome, StoreError> {
        common::validate(&appends, records)?;
        let _writer = self.write_lock.lock().await;
        common::append_retrying(self, &appends, || async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            match Self::write(&mut tx, &appends, records).await {
                Ok(recorded) => {
                    tx.commit().await?;
                    Ok(Some(AppendOutcome::appended(&appends, recorded)))
                }
                Err(refusal) => {
                    tx.rollback().await?;
                    common::settle(self, refusal, &appends, records).await
                }
            }
        })
        .await
    }
}

#[async_trait]
impl RefusalLookups for SqliteStore {
    async fn stored_event_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        // SQLite has no array parameters: the ids go in as one JSON array.
        let ids_json = serde_json::Value::from(
            ids.iter()
                .map(|id| id.hyphenated().to_string())
                .collect::<Vec<_>>(),
        );
        let stored: Vec<String> = sqlx::query_scalar(sql::STORED_EVENT_IDS)
            .bind(ids_json.to_string())
            .fetch_all(&self.pool)
            .await?;
        stored.iter().map(|id| parse_uuid(id)).collect()
    }

    async fn key_recorded(&self, key: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(sql::IDEMPOTENCY_KEY_EXISTS)
            .bind(key)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A turn on a stream of an SQLite store: appends are serialised anyway, so the turn
/// only keeps this process's writers of the stream in order.
struct SqliteStreamLock {
    store: SqliteStore,
    /// This process's turns, on the first stream and those the turn was extended to.
    turns: Vec<Turn>,
}

#[async_trait]
impl StreamLock for SqliteStreamLock {
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
        self.store.append_recording(appends, &records).await
    }

    async fn extend(&mut self, stream_id: &str, wait: Duration) -> Result<(), StoreError> {
        let turn = self.store.turns.wait(stream_id, wait).await?;
        self.turns.push(turn);
        Ok(())
    }

    async fn load_stream_after(
        &mut self,
        stream_id: &str,
        known: StreamVersion,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        self.store.load_stream_after(stream_id, known).await
    }

    async fn read_stream(
        &mut self,
        stream_id: &str,
        after_version: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_stream(stream_id, after_version).await
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    #[tracing::instrument(
        skip(self, appends, idempotency),
        fields(streams = appends.len(), first_stream = appends.first().map(|a| a.stream_id.as_str()))
    )]
    async fn append(
        &self,
        appends: Vec<StreamAppend>,
        idempotency: Option<IdempotencyRecord>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_recording(appends, idempotency.as_slice()).await
    }

    /// One process owns an SQLite file: this process's turn is the whole lock.
    #[tracing::instrument(skip(self, wait), fields(wait_ms = wait.as_millis()))]
    async fn lock_stream(
        &self,
        stream_id: &str,
        wait: Duration,
    ) -> Result<Box<dyn StreamLock>, StoreError> {
        let turn = self.turns.wait(stream_id, wait).await?;
        Ok(Box::new(SqliteStreamLock {
            store: self.clone(),
            turns: vec![turn],
        }))
    }

    #[tracing::instrument(skip(self), fields(stream_id = %stream_id, after_version))]
    async fn read_stream(
        &self,
        stream_id: &str,
        after_version: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = i64::try_from(after_version).unwrap_or(i64::MAX);
        let rows = sqlx::query(sql::READ_STREAM)
            .bind(stream_id)
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_event).collect()
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
        // SQLite has no array parameters: the types go in as one JSON array.
        let types = serde_json::Value::from(last_event_types.to_vec()).to_string();
        let rows = sqlx::query(sql::FIND_STREAMS)
            .bind(prefix)
            .bind(types)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StreamHead {
                    stream_id: row.try_get("stream_id")?,
                    version: common::stored_u64(row.try_get("version")?, "stream version")?,
                    last_event_type: row.try_get("last_event_type")?,
                    updated_at: parse_instant(row.try_get("updated_at")?)?,
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
                    row.try_get("schema_version")?,
                    "snapshot schema_version",
                )?,
                state: parse_json(row.try_get("state")?, "snapshot state")?,
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
            .bind(snapshot.state.to_string())
            .bind(format_instant(Utc::now()))
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
                outcome: parse_json(row.try_get("outcome")?, "idempotency outcome")?,
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
        // Recorded already: nothing to claim. A command that records its outcome
        // between this look-up and the claim finishes its claim in the same commit,
        // so the claim below fails and the caller is told busy, never claimed.
        if let Some(record) = self.idempotency_record(key).await? {
            return Ok(KeyClaim::Done(record));
        }
        // The claim and the look-up of its holder are two statements: a holder that
        // releases in between is simply claimed over on the next round.
        for _ in 0..3 {
            let claimed: Option<String> = sqlx::query_scalar(sql::CLAIM_IDEMPOTENCY_KEY)
                .bind(key)
                .bind(request_fingerprint)
                .bind(format_instant(until))
                .bind(format_instant(now))
                .fetch_optional(&self.pool)
                .await?;
            if claimed.is_some() {
                return Ok(KeyClaim::Claimed);
            }
            let holder: Option<String> = sqlx::query_scalar(sql::IDEMPOTENCY_CLAIM_HOLDER)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(request_fingerprint) = holder {
                return Ok(KeyClaim::Busy {
                    request_fingerprint,
                });
            }
        }
        Ok(KeyClaim::Busy {
            request_fingerprint: request_fingerprint.to_owned(),
        })
    }

    #[tracing::instrument(skip(self), fields(key = %key))]
    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(sql::RELEASE_IDEMPOTENCY_KEY)
            .bind(key)
            .bind(sql::CLAIM_FINISHED)
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
            .bind(older_than.map(format_instant))
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
        // SQLite has no array parameters: the positions go in as one JSON array. The
        // delete is a write: it queues behind this process's appends like one.
        let positions = serde_json::Value::from(positions.to_vec()).to_string();
        let _writer = self.write_lock.lock().await;
        sqlx::query(sql::MARK_PUBLISHED)
            .bind(positions)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let (depth, oldest): (i64, Option<String>) = sqlx::query_as(sql::OUTBOX_STATUS)
            .fetch_one(&self.pool)
            .await?;
        Ok(OutboxStatus {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest: oldest.as_deref().map(parse_instant).transpose()?,
        })
    }

    fn provider_ledger(&self) -> Option<std::sync::Arc<dyn crate::ProviderLedger>> {
        Some(std::sync::Arc::new(SqliteLedger(self.pool.clone())))
    }
}

/// Turns a row of the event columns into a [`RecordedEvent`].
fn decode_event(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        global_position: GlobalPosition {
            transaction_id: row.try_get("transaction_id")?,
            position: row.try_get("position")?,
        },
        stream_id: row.try_get("stream_id")?,
        version: common::stored_u64(row.try_get("version")?, "version")?,
        event_id: parse_uuid(row.try_get("event_id")?)?,
        event_type: row.try_get("event_type")?,
        schema_version: common::stored_u32(row.try_get("schema_version")?, "schema_version")?,
        data: parse_json(row.try_get("data")?, "event data")?,
        metadata: common::decode_metadata(parse_json(row.try_get("metadata")?, "event metadata")?)?,
        recorded_at: parse_instant(row.try_get("recorded_at")?)?,
    })
}

/// Writes an instant as RFC 3339 in UTC with exactly six fractional digits: the
/// precision PostgreSQL keeps, so both backends read back the same instant, and a fixed
/// width, so that the text sorts in time order.
pub(crate) fn format_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("instant `{text}`: {e}")))
}

fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("event id `{text}`: {e}")))
}

fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_to_the_microsecond() {
        let instant = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let text = format_instant(instant);
        assert_eq!(text, "2023-11-14T22:13:20.123456Z");
        assert_eq!(parse_instant(&text).unwrap(), instant);
    }

    #[test]
    fn instants_format_with_a_fixed_width_so_text_order_is_time_order() {
        let whole_second = DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        assert_eq!(format_instant(whole_second), "2023-11-14T22:13:20.000000Z");
    }
}

/// The simulated provider's ledger in this database (table `simulated_provider_ledger`).
#[derive(Debug, Clone)]
struct SqliteLedger(SqlitePool);

const INSERT_ENTRY: &str = "insert into simulated_provider_ledger (kind, key, entry) values (?, ?, ?) on conflict (kind, key) do nothing";
const SELECT_ENTRY: &str = "select entry from simulated_provider_ledger where kind = ? and key = ?";

#[async_trait]
impl crate::ProviderLedger for SqliteLedger {
    async fn record_once(
        &self,
        kind: &str,
        key: &str,
        entry: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        sqlx::query(INSERT_ENTRY)
            .bind(kind)
            .bind(key)
            .bind(entry.to_string())
            .execute(&self.0)
            .await?;
        self.entry(kind, key)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a ledger entry vanished after its insert".into()))
    }

    async fn entry(&self, kind: &str, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let entry: Option<String> = sqlx::query_scalar(SELECT_ENTRY)
            .bind(kind)
            .bind(key)
            .fetch_optional(&self.0)
            .await?;
        entry
            .map(|text| {
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("ledger entry: {e}")))
            })
            .transpose()
    }
}
