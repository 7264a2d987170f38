use std::time::Duration;

use rdkafka::ClientConfig;

use crate::BusError;

/// How long a message may wait for the broker's acknowledgement when nothing else is
/// configured: long enough to ride out a leader election, short enough that a command
/// whose broker is down answers within a few seconds (its events are then left to the
/// relay).
pub const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the [`super::KafkaBus`], from the environment:
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `KAFKA_BROKERS` | (none: in-process bus) | `host:port[,host:port...]` |
/// | `KAFKA_MESSAGE_TIMEOUT_MS` | `5000` | how long a publish waits for every acknowledgement |
/// | `KAFKA_CLIENT_ID` | `ticketing` | the producer's client id, as brokers log it |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    pub brokers: String,
    /// librdkafka's `message.timeout.ms`: a publish to a broker that is down fails
    /// after this long instead of blocking.
    pub message_timeout: Duration,
    pub client_id: String,
}

impl KafkaConfig {
    /// Settings for `brokers` with the defaults.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            client_id: "ticketing".to_owned(),
        }
    }

    /// Reads the settings through `var` (the environment in production): `None` when
    /// `KAFKA_BROKERS` is unset or empty.
    ///
    /// # Errors
    /// [`BusError::Config`] when `KAFKA_MESSAGE_TIMEOUT_MS` is not a positive number.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, BusError> {
        let Some(brokers) = var("KAFKA_BROKERS").filter(|b| !b.trim().is_empty()) else {
            return Ok(None);
        };
        let mut config = Self::new(brokers.trim());
        if let Some(millis) = var("KAFKA_MESSAGE_TIMEOUT_MS") {
            let millis: u64 = millis
                .trim()
                .parse()
                .ok()
                .filter(|m| *m > 0)
                .ok_or_else(|| {
                    BusError::Config(format!(
                        "KAFKA_MESSAGE_TIMEOUT_MS must be a positive number of milliseconds, not `{millis}`"
                    ))
                })?;
            config.message_timeout = Duration::from_millis(millis);
        }
        if let Some(client_id) = var("KAFKA_CLIENT_ID").filter(|c| !c.trim().is_empty()) {
            config.client_id = client_id.trim().to_owned();
        }
        Ok(Some(config))
    }

    /// The producer's librdkafka configuration: idempotent (no duplicates or
    /// reordering from its own retries), every in-sync replica acknowledges, and a
    /// bounded wait for the acknowledgement.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                self.message_timeout.as_millis().max(1).to_string(),
            );
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn no_brokers_means_no_kafka() {
        assert_eq!(KafkaConfig::from_lookup(lookup(&[])).unwrap(), None);
        assert_eq!(
            KafkaConfig::from_lookup(lookup(&[("KAFKA_BROKERS", " ")])).unwrap(),
            None
        );
    }

    #[test]
    fn brokers_and_timeout_are_read_from_the_environment() {
        let config = KafkaConfig::from_lookup(lookup(&[
            ("KAFKA_BROKERS", "redpanda-0:9092,redpanda-1:9092"),
            ("KAFKA_MESSAGE_TIMEOUT_MS", "1500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.brokers, "redpanda-0:9092,redpanda-1:9092");
        assert_eq!(config.message_timeout, Duration::from_millis(1500));
        let producer = config.producer_config();
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("message.timeout.ms"), Some("1500"));
    }

    #[test]
    fn a_malformed_timeout_is_a_configuration_error() {
        for bad in ["0", "-1", "soon"] {
            let error = KafkaConfig::from_lookup(lookup(&[
                ("KAFKA_BROKERS", "localhost:9092"),
                ("KAFKA_MESSAGE_TIMEOUT_MS", bad),
            ]))
            .unwrap_err();
            assert!(matches!(error, BusError::Config(_)), "{bad}: {error:?}");
        }
    }
}
