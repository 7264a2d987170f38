//! Waiting for one's turn on a stream inside this process.
//!
//! A hot stream (a section in an on-sale) is written by many concurrent commands.
//! Deciding optimistically, most of them would lose the version race and retry; so a
//! writer that asks for it waits its turn on the stream instead
//! ([`crate::EventStore::lock_stream`]). Inside one process the turns are kept here, in
//! arrival order (tokio's mutex is fair), so that only the writer whose turn it is
//! holds a database connection for it: a hundred waiting tasks never take a pool's
//! connections away from the one that is deciding. Across processes the PostgreSQL
//! backend adds a database lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// Past this many streams known, the ones nobody waits on are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// Per-stream turns of one process.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamTurns {
    streams: Arc<SyncMutex<HashMap<String, Arc<Mutex<()>>>>>,
}

/// This process's turn on a stream, until dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _guard: OwnedMutexGuard<()>,
}

impl StreamTurns {
    /// Waits up to `wait` for the turn on `stream_id`.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when the turn did not come in time.
    pub(crate) async fn wait(&self, stream_id: &str, wait: Duration) -> Result<Turn, StoreError> {
        let mutex = {
            let mut streams = self
                .streams
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if streams.len() > PRUNE_ABOVE {
                streams.retain(|_, m| Arc::strong_count(m) > 1);
            }
            Arc::clone(streams.entry(stream_id.to_owned()).or_default())
        };
        match tokio::time::timeout(wait, mutex.lock_owned()).await {
            Ok(guard) => Ok(Turn { _guard: guard }),
            Err(_) => Err(StoreError::Busy {
                stream_id: stream_id.to_owned(),
            }),
        }
    }
}
