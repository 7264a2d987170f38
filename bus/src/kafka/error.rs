use rdkafka::error::KafkaError;
use thiserror::Error;
use uuid::Uuid;

use crate::BusError;

/// What went wrong talking to Kafka.
#[derive(Debug, Error)]
pub enum KafkaBusError {
    /// The producer could not be created from its configuration. Fatal at start-up.
    #[error("the Kafka producer cannot be created")]
    Client(#[source] KafkaError),
    /// An event could not be queued, or the broker did not acknowledge it within
    /// `message.timeout.ms` (broker down, topic missing, refused). Transient.
    #[error("event {event_id} was not acknowledged by topic {topic}")]
    Delivery {
        event_id: Uuid,
        topic: &'static str,
        #[source]
        source: KafkaError,
    },
    /// The producer went away while a delivery was pending (the process is shutting
    /// down). Transient.
    #[error("the Kafka producer was dropped before event {event_id} was acknowledged")]
    Cancelled { event_id: Uuid },
}

impl From<KafkaBusError> for BusError {
    fn from(error: KafkaBusError) -> Self {
        match error {
            KafkaBusError::Client(_) => BusError::Config(error.to_string()),
            other => BusError::Unavailable(Box::new(other)),
        }
    }
}
