//! The in-process bus, the embedded default: an append-only in-memory log of the
//! published messages with live subscribers. Nothing leaves the process, so it suits
//! one process that both commands and projects (`ticketing serve` on SQLite), and
//! tests.
//!
//! Layout: `mod.rs` (the bus), `config.rs` ([`InProcessConfig`]), `error.rs`
//! ([`InProcessError`]).

mod config;
mod error;
mod source;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ticketing_store::RecordedEvent;
use tokio::sync::broadcast;

pub use config::InProcessConfig;
pub use error::InProcessError;
pub use source::InProcessSource;

use crate::source::DeadLetterMessage;
use crate::{BusError, BusMessage, EventBus};

/// An in-memory bus: every published message is appended to a bounded log and sent
/// to every current subscriber.
#[derive(Debug)]
pub struct InProcessBus {
    log: Mutex<VecDeque<Arc<BusMessage>>>,
    sender: broadcast::Sender<Arc<BusMessage>>,
    paused: AtomicBool,
    retain: usize,
    dead_letters: Arc<Mutex<Vec<DeadLetterMessage>>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(InProcessConfig::default())
    }
}

impl InProcessBus {
    pub fn new(config: InProcessConfig) -> Self {
        let (sender, _) = broadcast::channel(config.channel_capacity.max(1));
        Self {
            log: Mutex::new(VecDeque::new()),
            sender,
            paused: AtomicBool::new(false),
            retain: config.retain,
            dead_letters: Arc::default(),
        }
    }

    /// Receives every message published from now on, in publication order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.sender.subscribe()
    }

    /// A consumer of every message published from now on, for the projector.
    pub fn source(&self) -> InProcessSource {
        InProcessSource::new(self.sender.subscribe(), self.dead_letters.clone())
    }

    /// What consumers sent to the dead-letter topic, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetterMessage> {
        self.dead_letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The messages the log still holds (the latest [`InProcessConfig::retain`]),
    /// oldest first.
    pub fn messages(&self) -> Vec<Arc<BusMessage>> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Makes every publish fail with [`InProcessError::Paused`] until
    /// [`InProcessBus::resume`], as a broker that is down would.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Ends a [`InProcessBus::pause`].
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    #[tracing::instrument(skip(self, events), fields(count = events.len()))]
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), BusError> {
        if self.paused.load(Ordering::SeqCst) {
            return Err(InProcessError::Paused.into());
        }
        // Encode everything first: an unroutable event publishes nothing.
        let messages = events
            .iter()
            .map(|event| BusMessage::from_event(event).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        for message in messages {
            log.push_back(message.clone());
            // No subscriber is not an error: the log still has the message.
            let _ = self.sender.send(message);
        }
        let excess = log.len().saturating_sub(self.retain);
        log.drain(..excess);
        Ok(())
    }
}
