use thiserror::Error;

/// Why events could not be published. The events stay in the store's outbox in every
/// case, and the relay tries again.
#[derive(Debug, Error)]
pub enum BusError {
    /// The event's stream id has no topic (see [`crate::topic_for`]): a bug in whoever
    /// named the stream. Publishing it again will not help; the relay leaves it in the
    /// outbox and logs it.
    #[error("no topic for stream {stream_id}")]
    Unroutable { stream_id: String },
    /// The bus did not acknowledge in time (broker down, network, timeout) or refused
    /// the message. Transient: the relay publishes the events again later.
    #[error("the bus is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The bus cannot work as configured (a malformed `KAFKA_BROKERS`, a build without
    /// Kafka support). Fix the configuration; the process should not start.
    #[error("bus configuration: {0}")]
    Config(String),
}

impl BusError {
    /// Whether publishing the same events later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable(_))
    }
}
