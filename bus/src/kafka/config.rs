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
    /// How the clients authenticate.
    pub auth: KafkaAuth,
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
            auth: KafkaAuth::Plaintext,
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
        let mut config = self.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                self.message_timeout.as_millis().max(1).to_string(),
            );
        config
    }

    /// What every client of these brokers is configured with: the brokers, the
    /// client id and the authentication.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        self.auth.apply(&mut config);
        config
    }
}

/// How Kafka clients authenticate to the brokers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KafkaAuth {
    /// Not at all, in plaintext: RedPanda on a private network.
    #[default]
    Plaintext,
    /// Amazon MSK's IAM authentication, over TLS: SASL OAUTHBEARER with tokens signed
    /// for `region` (feature `msk`; see `super::msk`).
    #[cfg(feature = "msk")]
    MskIam { region: String },
}

impl KafkaAuth {
    /// Sets the security settings on a client configuration.
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        match self {
            Self::Plaintext => {}
            #[cfg(feature = "msk")]
            Self::MskIam { .. } => {
                config
                    .set("security.protocol", "SASL_SSL")
                    .set("sasl.mechanism", "OAUTHBEARER")
                    // librdkafka's OpenSSL is built in, with its own idea of where
                    // the CA certificates are; `probe` looks in the system's usual
                    // places (Amazon Linux's among them).
                    .set("ssl.ca.location", "probe");
            }
        }
        let _ = config;
    }

    /// Whether the clients sign OAUTHBEARER tokens (and so must serve librdkafka's
    /// token refresh before they can connect).
    pub(crate) fn signs_tokens(&self) -> bool {
        match self {
            Self::Plaintext => false,
            #[cfg(feature = "msk")]
            Self::MskIam { .. } => true,
        }
    }
}

/// The projector's consumer group when nothing else is configured.
pub const DEFAULT_GROUP_ID: &str = "ticketing-projector";

/// How often librdkafka reports statistics (and so how fresh [`crate::EventSource::lag`]
/// is) when nothing else is configured: often enough for a lag metric scraped every
/// few seconds, rarely enough that parsing the statistics costs nothing.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(5);

/// librdkafka's upper bound for `statistics.interval.ms`.
const MAX_STATS_INTERVAL_MS: u64 = 86_400_000;

/// How long the group waits for a silent member before it hands the member's
/// partitions to the others, when nothing else is configured: librdkafka's default.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(45);

/// librdkafka's upper bound for `session.timeout.ms`.
const MAX_SESSION_TIMEOUT_MS: u64 = 3_600_000;

/// librdkafka's default `heartbeat.interval.ms`, kept for long session timeouts.
const DEFAULT_HEARTBEAT_INTERVAL_MS: u128 = 3_000;

/// Settings of the [`super::KafkaSource`]: the brokers and client id of
/// [`KafkaConfig`] (whose message timeout bounds dead-letter publishing), and, from
/// the environment:
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `PROJECTOR_GROUP_ID` | `ticketing-projector` | the consumer group: its committed offsets are where the projector resumes |
/// | `KAFKA_STATS_INTERVAL_MS` | `5000` | how often librdkafka reports statistics, and so consumer lag |
/// | `KAFKA_SESSION_TIMEOUT_MS` | `45000` | how long the group waits for a silent member before reassigning its partitions |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSourceConfig {
    pub kafka: KafkaConfig,
    pub group_id: String,
    /// librdkafka's `statistics.interval.ms`.
    pub stats_interval: Duration,
    /// librdkafka's `session.timeout.ms`; the heartbeat interval follows it (a third
    /// of it, at most librdkafka's default of 3 s).
    pub session_timeout: Duration,
}

impl KafkaSourceConfig {
    /// Settings for `kafka` with the defaults.
    pub fn new(kafka: KafkaConfig) -> Self {
        Self {
            kafka,
            group_id: DEFAULT_GROUP_ID.to_owned(),
            stats_interval: DEFAULT_STATS_INTERVAL,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
        }
    }

    /// The source settings from the environment, at cold start: `None` when there is
    /// no Kafka (see [`super::kafka_config_from_env`], which may ask MSK for the
    /// brokers), else [`Self::from_lookup`] over it.
    ///
    /// # Errors
    /// As [`super::kafka_config_from_env`] and [`Self::from_lookup`].
    pub async fn from_env() -> Result<Option<Self>, BusError> {
        let var = |name: &str| std::env::var(name).ok();
        match super::kafka_config_from_lookup(var).await? {
            Some(kafka) => Self::from_lookup(kafka, var).map(Some),
            None => Ok(None),
        }
    }

    /// The source settings for `kafka`, the rest read through `var` (the
    /// environment in production).
    ///
    /// # Errors
    /// [`BusError::Config`] when `PROJECTOR_GROUP_ID` is set but blank (a template
    /// that meant to set it: falling back to the default group would silently share
    /// offsets with another deployment), when `KAFKA_STATS_INTERVAL_MS` is not a
    /// number of milliseconds from 1 to 86400000, or when `KAFKA_SESSION_TIMEOUT_MS`
    /// is not one from 1 to 3600000.
    pub fn from_lookup(
        kafka: KafkaConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BusError> {
        let mut config = Self::new(kafka);
        if let Some(group_id) = var("PROJECTOR_GROUP_ID") {
            if group_id.trim().is_empty() {
                return Err(BusError::Config(
                    "PROJECTOR_GROUP_ID is set but blank; unset it for the default group `ticketing-projector`".to_owned(),
                ));
            }
            config.group_id = group_id.trim().to_owned();
        }
        if let Some(millis) = var("KAFKA_STATS_INTERVAL_MS") {
            config.stats_interval =
                milliseconds("KAFKA_STATS_INTERVAL_MS", &millis, MAX_STATS_INTERVAL_MS)?;
        }
        if let Some(millis) = var("KAFKA_SESSION_TIMEOUT_MS") {
            config.session_timeout =
                milliseconds("KAFKA_SESSION_TIMEOUT_MS", &millis, MAX_SESSION_TIMEOUT_MS)?;
        }
        Ok(config)
    }

    /// The consumer's librdkafka configuration: a consumer group that commits only
    /// when told to (after the projector applied a batch: at least once), starts a
    /// new group at the beginning of each topic (the projection needs every event),
    /// and reports statistics for the lag.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.kafka.client_config();
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "statistics.interval.ms",
                self.stats_interval
                    .as_millis()
                    .clamp(1, u128::from(MAX_STATS_INTERVAL_MS))
                    .to_string(),
            );
        let session_ms = self
            .session_timeout
            .as_millis()
            .clamp(1, u128::from(MAX_SESSION_TIMEOUT_MS));
        // A member that heartbeats less often than its session timeout is expelled;
        // Kafka recommends a third of it.
        let heartbeat_ms = (session_ms / 3).clamp(1, DEFAULT_HEARTBEAT_INTERVAL_MS);
        config
            .set("session.timeout.ms", session_ms.to_string())
            .set("heartbeat.interval.ms", heartbeat_ms.to_string());
        config
    }
}

/// A duration in milliseconds from 1 to `max`, read from the variable `name`.
fn milliseconds(name: &str, value: &str, max: u64) -> Result<Duration, BusError> {
    value
        .trim()
        .parse()
        .ok()
        .filter(|millis| (1..=max).contains(millis))
        .map(Duration::from_millis)
        .ok_or_else(|| {
            BusError::Config(format!(
                "{name} must be a number of milliseconds from 1 to {max}, not `{value}`"
            ))
        })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A lookup of `vars`, as the environment would answer.
    pub(in crate::kafka) fn lookup<'a>(
        vars: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    /// The source settings for `vars`, which name the brokers.
    fn source(vars: &[(&str, &str)]) -> Result<KafkaSourceConfig, BusError> {
        let kafka = KafkaConfig::from_lookup(lookup(vars))?.expect("KAFKA_BROKERS in `vars`");
        KafkaSourceConfig::from_lookup(kafka, lookup(vars))
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

    #[test]
    fn the_source_defaults_to_the_projector_group_and_five_second_statistics() {
        let config = source(&[
            ("KAFKA_BROKERS", "redpanda-0:9092"),
            ("KAFKA_CLIENT_ID", "projector-1"),
        ])
        .unwrap();
        assert_eq!(config.kafka.brokers, "redpanda-0:9092");
        assert_eq!(config.group_id, "ticketing-projector");
        assert_eq!(config.stats_interval, Duration::from_secs(5));
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("bootstrap.servers"), Some("redpanda-0:9092"));
        assert_eq!(consumer.get("client.id"), Some("projector-1"));
        assert_eq!(consumer.get("group.id"), Some("ticketing-projector"));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(consumer.get("statistics.interval.ms"), Some("5000"));
        assert_eq!(consumer.get("session.timeout.ms"), Some("45000"));
        assert_eq!(consumer.get("heartbeat.interval.ms"), Some("3000"));
    }

    #[test]
    fn the_source_reads_its_group_and_statistics_interval_from_the_environment() {
        let config = source(&[
            ("KAFKA_BROKERS", "localhost:9092"),
            ("PROJECTOR_GROUP_ID", " projector-blue "),
            ("KAFKA_STATS_INTERVAL_MS", "1000"),
            ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ])
        .unwrap();
        assert_eq!(config.group_id, "projector-blue");
        assert_eq!(config.stats_interval, Duration::from_millis(1000));
        assert_eq!(config.session_timeout, Duration::from_millis(6000));
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("statistics.interval.ms"), Some("1000"));
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(
            consumer.get("heartbeat.interval.ms"),
            Some("2000"),
            "a third of the session timeout"
        );
    }

    #[test]
    fn a_blank_group_or_malformed_statistics_interval_is_a_configuration_error() {
        let blank_group = source(&[
            ("KAFKA_BROKERS", "localhost:9092"),
            ("PROJECTOR_GROUP_ID", "  "),
        ])
        .unwrap_err();
        assert!(
            matches!(&blank_group, BusError::Config(message) if message.contains("PROJECTOR_GROUP_ID")),
            "{blank_group:?}"
        );
        for bad in ["0", "-5", "often", "86400001"] {
            let error = source(&[
                ("KAFKA_BROKERS", "localhost:9092"),
                ("KAFKA_STATS_INTERVAL_MS", bad),
            ])
            .unwrap_err();
            assert!(
                matches!(&error, BusError::Config(message) if message.contains("KAFKA_STATS_INTERVAL_MS") && message.contains(bad)),
                "{bad}: {error:?}"
            );
        }
        for bad in ["0", "3600001", "1s"] {
            let error = source(&[
                ("KAFKA_BROKERS", "localhost:9092"),
                ("KAFKA_SESSION_TIMEOUT_MS", bad),
            ])
            .unwrap_err();
            assert!(
                matches!(&error, BusError::Config(message) if message.contains("KAFKA_SESSION_TIMEOUT_MS") && message.contains(bad)),
                "{bad}: {error:?}"
            );
        }
        let bad_timeout = source(&[
            ("KAFKA_BROKERS", "localhost:9092"),
            ("KAFKA_MESSAGE_TIMEOUT_MS", "never"),
        ])
        .unwrap_err();
        assert!(
            matches!(bad_timeout, BusError::Config(_)),
            "{bad_timeout:?}"
        );
    }
}
