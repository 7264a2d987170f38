//! The Kafka (RedPanda) bus: an idempotent rdkafka `FutureProducer` with `acks=all`.
//!
//! A publish queues every event at once and then waits for each acknowledgement, so
//! a batch costs about one round trip. The producer connects in the background: creating
//! it does no network I/O, which keeps a Lambda cold start fast. With the broker down a
//! publish fails after `message.timeout.ms` ([`KafkaConfig::message_timeout`]) instead
//! of blocking, and the events stay in the store's outbox for the relay.
//!
//! The consumer side, [`KafkaSource`], reads the same topics as a consumer group for
//! the projector; [`ensure_topics`] creates them.
//!
//! Layout: `mod.rs` (the bus), `config.rs` ([`KafkaConfig`], [`KafkaSourceConfig`]),
//! `error.rs` ([`KafkaBusError`], [`KafkaSourceError`]), `source.rs` ([`KafkaSource`]),
//! `admin.rs` ([`ensure_topics`]).

mod admin;
mod config;
mod error;
mod source;

use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use ticketing_store::RecordedEvent;

pub use admin::ensure_topics;
pub use config::{
    KafkaConfig, KafkaSourceConfig, DEFAULT_GROUP_ID, DEFAULT_MESSAGE_TIMEOUT,
    DEFAULT_STATS_INTERVAL,
};
pub use error::{KafkaBusError, KafkaSourceError};
pub use source::KafkaSource;

use crate::{BusError, BusMessage, EventBus};

/// Publishes events to Kafka, one topic per stream type, keyed by stream id.
pub struct KafkaBus {
    producer: FutureProducer,
    config: KafkaConfig,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Creates the producer. It connects lazily, on the first publish.
    ///
    /// # Errors
    /// [`KafkaBusError::Client`] when librdkafka refuses the configuration.
    pub fn new(config: KafkaConfig) -> Result<Self, KafkaBusError> {
        let producer = config
            .producer_config()
            .create()
            .map_err(KafkaBusError::Client)?;
        Ok(Self { producer, config })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Publishes `letters` to the dead-letter topic and waits for the broker to
    /// acknowledge them: what a projector without its own consumer (the Lambda
    /// function, whose records Lambda polls) does with what it cannot apply.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when a letter was not acknowledged.
    pub async fn dead_letter(&self, letters: &[crate::DeadLetterMessage]) -> Result<(), BusError> {
        source::send_dead_letters(&self.producer, letters).await
    }
}

fn record_headers(message: &BusMessage) -> OwnedHeaders {
    message.headers.iter().fold(
        OwnedHeaders::new_with_capacity(message.headers.len()),
        |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_str()),
            })
        },
    )
}

#[async_trait]
impl EventBus for KafkaBus {
    #[tracing::instrument(skip(self, events), fields(count = events.len()))]
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), BusError> {
        // Encode everything first: an unroutable event publishes nothing.
        let messages = events
            .iter()
            .map(BusMessage::from_event)
            .collect::<Result<Vec<_>, _>>()?;

        let mut deliveries = Vec::with_capacity(messages.len());
        for (event, message) in events.iter().zip(&messages) {
            let record = FutureRecord::to(message.topic)
                .key(message.key.as_str())
                .payload(message.payload.as_slice())
                .headers(record_headers(message));
            let delivery = self.producer.send_result(record).map_err(|(source, _)| {
                KafkaBusError::Delivery {
                    event_id: event.event_id,
                    topic: message.topic,
                    source,
                }
            })?;
            deliveries.push((event.event_id, message.topic, delivery));
        }
        for (event_id, topic, delivery) in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((source, _))) => {
                    return Err(KafkaBusError::Delivery {
                        event_id,
                        topic,
                        source,
                    }
                    .into())
                }
                Err(_) => return Err(KafkaBusError::Cancelled { event_id }.into()),
            }
        }
        Ok(())
    }
}
