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
    /// Not every event was acknowledged within `message.timeout.ms` and a grace
    /// period, although librdkafka had not failed them yet. Transient; the events may
    /// still reach the bus, so a republish can duplicate them (consumers skip versions
    /// they have applied).
    #[error("{events} events were not all acknowledged within {waited:?}")]
    TimedOut {
        events: usize,
        waited: std::time::Duration,
    },
}

impl From<KafkaBusError> for BusError {
    fn from(error: KafkaBusError) -> Self {
        match error {
            KafkaBusError::Client(_) => BusError::Config(error.to_string()),
            other => BusError::Unavailable(Box::new(other)),
        }
    }
}

/// What went wrong consuming from Kafka, dead-lettering, creating topics or
/// inspecting them.
#[derive(Debug, Error)]
pub enum KafkaSourceError {
    /// The consumer, its dead-letter producer or the admin client could not be created
    /// from its configuration. Fatal at start-up.
    #[error("the Kafka {client} cannot be created")]
    Client {
        client: &'static str,
        #[source]
        source: KafkaError,
    },
    /// The consumer reported a fatal error: it cannot go on. Transient for the
    /// caller in that a new consumer may work; this one will not.
    #[error("the Kafka consumer failed")]
    Consumer(#[source] KafkaError),
    /// The group coordinator did not take the offsets (broker down, group rebalanced).
    /// The messages will be delivered again, which the projector tolerates.
    #[error("committing offsets {offsets} failed")]
    Commit {
        offsets: String,
        #[source]
        source: KafkaError,
    },
    /// The commit task ended without an answer (the runtime is shutting down).
    #[error("the commit of offsets {offsets} did not complete")]
    CommitInterrupted { offsets: String },
    /// A dead letter could not be queued or was not acknowledged. The caller must
    /// not commit past it.
    #[error("a dead letter from {origin} was not acknowledged by the dead-letter topic")]
    DeadLetter {
        origin: String,
        #[source]
        source: KafkaError,
    },
    /// The dead-letter producer went away while an acknowledgement was pending.
    #[error(
        "the dead-letter producer was dropped before the letter from {origin} was acknowledged"
    )]
    DeadLetterCancelled { origin: String },
    /// A topic-creation request failed as a whole (no broker answered in time).
    #[error("the topic-creation request failed")]
    Admin(#[source] KafkaError),
    /// An inspection request (metadata, watermarks, committed offsets, reading a
    /// topic) got no answer in time. Transient: the broker is down or busy.
    #[error("the broker did not answer with {what}")]
    Inspect {
        what: &'static str,
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create a topic.
    #[error("topic {topic} could not be created: {code}")]
    CreateTopic {
        topic: String,
        code: rdkafka::types::RDKafkaErrorCode,
    },
}

impl From<KafkaSourceError> for BusError {
    fn from(error: KafkaSourceError) -> Self {
        use rdkafka::types::RDKafkaErrorCode as Code;
        match &error {
            KafkaSourceError::Client { .. } => BusError::Config(error_chain(&error)),
            // A topic the broker will never create as asked: fix the settings.
            KafkaSourceError::CreateTopic {
                code:
                    Code::InvalidPartitions
                    | Code::InvalidReplicationFactor
                    | Code::InvalidConfig
                    | Code::InvalidTopic
                    | Code::PolicyViolation
                    | Code::TopicAuthorizationFailed
                    | Code::ClusterAuthorizationFailed,
                ..
            } => BusError::Config(error.to_string()),
            _ => BusError::Unavailable(Box::new(error)),
        }
    }
}

/// The error and its causes on one line, for a configuration message read by a human.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
