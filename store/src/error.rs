use sqlx::error::DatabaseError as _;
use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A stream was not at the version the writer expected: somebody else appended
    /// first. Nothing was written. Reload, decide again and retry; in an HTTP API,
    /// a 409 once retries are exhausted.
    #[error("stream {stream_id} is at version {actual}, expected {expected}")]
    VersionConflict {
        stream_id: String,
        expected: String,
        actual: u64,
    },
    /// The idempotency key was already recorded by another append. Nothing was
    /// written; read the stored record and answer with it.
    #[error("idempotency key {0} is already recorded")]
    IdempotencyKeyTaken(String),
    /// Some of the append's event ids were already stored, but not all of them: the
    /// caller reused an id. Nothing was written. A caller bug: an HTTP 500.
    #[error("event id {0} is already stored in another append")]
    DuplicateEventId(uuid::Uuid),
    /// The request was malformed (no events, an empty stream id). A caller bug.
    #[error("invalid append: {0}")]
    Invalid(String),
    /// The stream stayed locked by other writers for longer than the caller would wait
    /// ([`crate::EventStore::lock_stream`]). Nothing was written. In an HTTP API, a 409
    /// with `Retry-After`.
    #[error("stream {stream_id} stayed busy with other writers")]
    Busy { stream_id: String },
    /// The database could not be reached or timed out: retry later; in an HTTP API,
    /// a 503 with `Retry-After`.
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure: logged, and an opaque 500.
    #[error("event store failure: {0}")]
    Database(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database lacks migrations this binary relies on (a new database, or a
    /// deploy that went ahead of its migration). Fatal at start-up.
    #[error("{0}: run `ticketing migrate` against this database first")]
    SchemaBehind(String),
    /// A stored row could not be decoded (corrupt metadata, say).
    #[error("stored row could not be decoded: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Classifies an infrastructure error: a database that cannot be reached, a pool
    /// that timed out or a server that is shutting down is [`StoreError::Unavailable`]
    /// (worth retrying later); anything else is [`StoreError::Database`].
    ///
    /// Constraint violations that the contract gives a meaning to (version conflicts,
    /// retried appends, taken idempotency keys) are recognised by the backends before
    /// they fall through to this.
    pub fn from_sqlx(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            StoreError::Unavailable(error)
        } else {
            StoreError::Database(error)
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from_sqlx(error)
    }
}

/// Whether an error means "the database is not there right now" rather than "the
/// database refused this".
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                // Class 08: connection exceptions; 53300: too many connections;
                // 57P01..57P03: the server is shutting down or starting up.
                code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03")
            } else if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code: another
                // writer held the database for longer than the busy timeout.
                sqlite
                    .code()
                    .and_then(|code| code.parse::<i32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6))
            } else {
                false
            }
        }
        _ => false,
    }
}
