//! The read models' errors: a store operation's, and opening the configured store's.

use thiserror::Error;
use ticketing_store::StoreError;

/// Why a read-model store operation failed. Every backend uses it.
#[derive(Debug, Error)]
pub enum ReadModelError {
    /// Another writer applied events of `stream_id` between this batch's read and its
    /// write. Nothing was written: apply the batch again (its duplicates are skipped).
    #[error("stream {stream_id} was applied by another writer meanwhile")]
    Conflict { stream_id: String },
    /// The database could not be reached or timed out: retry later; an API answers 503.
    #[error("read-model store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure: logged, an opaque 500.
    #[error("read-model store failure: {0}")]
    Database(#[source] sqlx::Error),
    /// A read-model service (DynamoDB) throttled the request, timed out or could not
    /// be reached: retry later; an API answers 503.
    #[error("read-model service unavailable: {0}")]
    ServiceUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other failure of a read-model service (a missing table, a refused
    /// request): logged, an opaque 500.
    #[error("read-model service failure: {0}")]
    Service(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// One stream's part of a batch is more than the store can write atomically
    /// (DynamoDB: 100 items or 4 MB per transaction). Nothing of that stream was
    /// written; apply it in smaller batches (fewer events per stream).
    #[error("stream {stream_id} needs {items} items in one transaction; at most {limit} fit")]
    TooLarge {
        stream_id: String,
        items: usize,
        limit: usize,
    },
    /// A stored row could not be read back (a value out of range, corrupt JSON): a bug
    /// or a hand-edited table; a rebuild rewrites it.
    #[error("read-model row could not be decoded: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for ReadModelError {
    fn from(error: sqlx::Error) -> Self {
        match StoreError::from_sqlx(error) {
            StoreError::Unavailable(e) => Self::Unavailable(e),
            StoreError::Database(e) => Self::Database(e),
            other => Self::Corrupt(other.to_string()),
        }
    }
}

impl ReadModelError {
    /// Whether applying the same batch again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Conflict { .. } | Self::Unavailable(_) | Self::ServiceUnavailable(_)
        )
    }
}

/// Why the configured read models cannot be opened.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The event store (whose database also holds the SQL read models).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A read-model setting is malformed, or names a store this build lacks: fix
    /// the configuration; nothing was opened.
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}
