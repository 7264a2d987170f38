//! The projector's errors: the read-model stores' and the projection's own.

use thiserror::Error;
use ticketing_store::StoreError;

/// Why a read-model store operation failed. Both backends use it.
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
        matches!(self, Self::Conflict { .. } | Self::Unavailable(_))
    }
}

/// Why a batch, a rebuild or a catch-up stopped. Nothing of the failed batch was
/// written; what earlier batches wrote (and their checkpoint) stays.
#[derive(Debug, Error)]
pub enum ProjectionError {
    /// Reading the event store (gap reads, the global order) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the read models failed.
    #[error(transparent)]
    ReadModels(#[from] ReadModelError),
}

impl ProjectionError {
    /// Whether retrying the same batch later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            Self::ReadModels(e) => e.is_transient(),
        }
    }
}
