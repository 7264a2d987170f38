use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use crate::source::{decode_event, DeadLetterMessage, Delivered, Delivery, EventSource, Origin};
use crate::source::{PoisonMessage, DEAD_LETTER_TOPIC};
use crate::{BusError, BusMessage};

/// The in-process bus as an [`EventSource`]: every message published after
/// [`super::InProcessBus::source`] was called, in publication order. There is one
/// partition per source; the offset is the message's number since the source began.
///
/// Committing changes nothing here (the bus keeps no group offsets), and dead letters
/// are kept in the bus ([`super::InProcessBus::dead_letters`]). A source that falls
/// more than `channel_capacity` messages behind misses messages:
/// [`EventSource::take_missed`] then says so once, and the caller catches up from the
/// event store.
#[derive(Debug)]
pub struct InProcessSource {
    receiver: broadcast::Receiver<Arc<BusMessage>>,
    dead_letters: Arc<Mutex<Vec<DeadLetterMessage>>>,
    next_offset: i64,
    missed: bool,
}

impl InProcessSource {
    pub(super) fn new(
        receiver: broadcast::Receiver<Arc<BusMessage>>,
        dead_letters: Arc<Mutex<Vec<DeadLetterMessage>>>,
    ) -> Self {
        Self {
            receiver,
            dead_letters,
            next_offset: 0,
            missed: false,
        }
    }

    fn delivery(&mut self, message: &BusMessage) -> Delivery {
        let origin = Origin {
            topic: message.topic.to_owned(),
            partition: 0,
            offset: self.next_offset,
        };
        self.next_offset += 1;
        let content = match decode_event(
            Some(message.key.as_bytes()),
            |name| message.header(name),
            &message.payload,
        ) {
            Ok(event) => Delivered::Event(event),
            Err(error) => Delivered::Poison(PoisonMessage {
                key: Some(message.key.clone().into_bytes()),
                headers: message
                    .headers
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), value.clone()))
                    .collect(),
                payload: message.payload.clone(),
                error,
            }),
        };
        Delivery { origin, content }
    }

    /// The next message before `deadline`; `Ok(None)` at the deadline.
    async fn receive_until(&mut self, deadline: Instant) -> Result<Option<Delivery>, BusError> {
        loop {
            match tokio::time::timeout_at(deadline, self.receiver.recv()).await {
                Err(_) => return Ok(None),
                Ok(Ok(message)) => return Ok(Some(self.delivery(&message))),
                Ok(Err(RecvError::Lagged(skipped))) => {
                    tracing::warn!(
                        skipped,
                        "the in-process subscriber fell behind and missed messages"
                    );
                    self.next_offset += i64::try_from(skipped).unwrap_or(i64::MAX);
                    self.missed = true;
                }
                Ok(Err(RecvError::Closed)) => {
                    // The bus is gone: nothing will arrive. Behave as an idle source.
                    tokio::time::sleep_until(deadline).await;
                    return Ok(None);
                }
            }
        }
    }
}

#[async_trait]
impl EventSource for InProcessSource {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let max = max.max(1);
        let Some(first) = self.receive_until(Instant::now() + wait).await? else {
            return Ok(Vec::new());
        };
        let deadline = Instant::now() + wait;
        let mut batch = vec![first];
        while batch.len() < max {
            // Take what is already there without waiting, then wait for the rest.
            match self.receiver.try_recv() {
                Ok(message) => {
                    let delivery = self.delivery(&message);
                    batch.push(delivery);
                }
                Err(broadcast::error::TryRecvError::Empty) => {
                    match self.receive_until(deadline).await? {
                        Some(delivery) => batch.push(delivery),
                        None => break,
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    // Counted by receive_until on the next call.
                    match self.receive_until(deadline).await? {
                        Some(delivery) => batch.push(delivery),
                        None => break,
                    }
                }
                Err(broadcast::error::TryRecvError::Closed) => break,
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        Ok(())
    }

    async fn dead_letter(&mut self, letters: &[DeadLetterMessage]) -> Result<(), BusError> {
        for letter in letters {
            tracing::warn!(topic = DEAD_LETTER_TOPIC, reason = %letter.reason, "dead letter");
        }
        self.dead_letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(letters);
        Ok(())
    }

    fn take_missed(&mut self) -> bool {
        std::mem::take(&mut self.missed)
    }
}
