//! The bus side of the store -> bus guarantee: publishing stored events to the bus
//! (in-process, or Kafka/RedPanda), and the relay that publishes what the command
//! layer left in the store's outbox.
//!
//! Every committed event is in the event store's outbox until someone put it on the
//! bus and marked it published. The command that appended it publishes it right after
//! its commit; if that fails (broker down, process died), the relay
//! ([`relay::relay_once`], [`relay::run_relay`]) publishes it later. Delivery is thus
//! at least once: consumers deduplicate by event id or stream version.
//!
//! Each event goes to the topic of its stream type ([`message::topic_for`]), keyed by
//! its stream id so that a stream stays in one partition, with its identity and
//! position in headers ([`message::headers`]) and its JSON payload as the value.
//!
//! Layout:
//! - `lib.rs`: the [`EventBus`] trait.
//! - `message.rs`: topics, keys and headers: [`BusMessage`], the one encoding every
//!   adapter uses.
//! - `error.rs`: [`BusError`].
//! - `config.rs`: [`BusConfig`] from the environment, and [`connect`].
//! - `in_process/`: [`InProcessBus`], the embedded default: an in-memory log with
//!   subscribers.
//! - `kafka/` (feature `kafka`): `KafkaBus`, an idempotent rdkafka producer;
//!   `KafkaSource`, a consumer group for the projector; `kafka::ensure_topics`;
//!   `kafka::msk` (feature `msk`): MSK's brokers from the cluster ARN and its IAM
//!   authentication tokens.
//! - `relay.rs`: the outbox relay.
//! - `source.rs`: the consumer side: [`EventSource`] (batches for the projector, commits,
//!   dead letters) and [`decode_event`]; the in-process bus's source is
//!   [`InProcessSource`], Kafka's is `KafkaSource`.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod breaker;
pub mod config;
mod error;
pub mod in_process;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod message;
pub mod relay;
pub mod source;

use async_trait::async_trait;
use ticketing_store::RecordedEvent;

pub use backoff::Backoff;
pub use breaker::CircuitBreaker;
pub use config::{connect, Bus, BusConfig};
pub use error::BusError;
pub use in_process::{InProcessBus, InProcessConfig, InProcessSource};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaBus, KafkaConfig, KafkaSource, KafkaSourceConfig};
pub use message::{topic_for, BusMessage};
pub use relay::{relay_once, run_relay, RelayError, RelaySettings};
pub use source::{
    decode_event, DeadLetterMessage, Delivered, Delivery, EventSource, Origin, PartitionLag,
    PoisonMessage, DEAD_LETTER_TOPIC,
};

/// Where stored events are published for the projector and other consumers.
///
/// The command layer holds one as `Arc<dyn EventBus>` and so does the relay; the
/// adapters are [`InProcessBus`] and, with feature `kafka`, `KafkaBus`.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `events`, in the order given, and returns once the bus has
    /// acknowledged every one of them. Only then may they be marked published.
    ///
    /// # Errors
    /// - [`BusError::Unroutable`] when an event's stream has no topic; nothing is
    ///   published.
    /// - [`BusError::Unavailable`] when the bus did not acknowledge every event in
    ///   time. Some may have been published: publishing them again later is how the
    ///   guarantee is kept (consumers deduplicate).
    /// - [`BusError::Config`] for a bus that cannot work as configured.
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), BusError>;
}
