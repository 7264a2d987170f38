//! The projection's errors: what stops a batch, a rebuild or a catch-up.

use thiserror::Error;
use ticketing_read_models::ReadModelError;
use ticketing_store::StoreError;

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
