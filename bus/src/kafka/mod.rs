//! The Kafka (RedPanda) bus: an idempotent rdkafka `FutureProducer` with `acks=all`.
//!
//! A publish queues every event at once and then waits for each acknowledgement, so
//! a batch costs about one round trip. The producer connects in the background: creating
//! it does no network I/O, which keeps a Lambda cold start fast. With the broker down a
//! publish fails after `message.timeout.ms` ([`KafkaConfig::message_timeout`]) instead
//! of blocking, and the events stay in the store's outbox for the relay.
//!
//! The consumer side, [`KafkaSource`], reads the same topics as a consumer group for
//! the projector; [`ensure_topics`] creates them; [`bus_status`] and [`read_topic`]
//! look at them for operators.
//!
//! Layout: `mod.rs` (the bus), `config.rs` ([`KafkaConfig`], [`KafkaSourceConfig`]),
//! `error.rs` ([`KafkaBusError`], [`KafkaSourceError`]), `source.rs` ([`KafkaSource`]),
//! `admin.rs` ([`ensure_topics`]), `inspect.rs` ([`bus_status`], [`read_topic`]).

mod admin;
mod config;
mod error;
mod inspect;
#[cfg(feature = "msk")]
pub mod msk;
mod source;

use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientContext;
use ticketing_store::RecordedEvent;

pub use admin::ensure_topics;
pub use config::{
    KafkaAuth, KafkaConfig, KafkaSourceConfig, DEFAULT_GROUP_ID, DEFAULT_MESSAGE_TIMEOUT,
    DEFAULT_STATS_INTERVAL,
};
pub use error::{KafkaBusError, KafkaSourceError};
pub use inspect::{
    bus_status, read_topic, BusStatus, MessageSummary, PartitionStatus, TopicStatus,
};
pub use source::KafkaSource;

use crate::{BusError, BusMessage, EventBus};

/// The Kafka settings from the environment, at cold start; see
/// [`kafka_config_from_lookup`].
///
/// # Errors
/// As [`kafka_config_from_lookup`].
pub async fn kafka_config_from_env() -> Result<Option<KafkaConfig>, BusError> {
    kafka_config_from_lookup(|name| std::env::var(name).ok()).await
}

/// The Kafka settings read through `var`: with feature `msk` and `MSK_CLUSTER_ARN`
/// set, the cluster's SASL/IAM brokers (asked of MSK) with IAM authentication; else
/// `KAFKA_BROKERS` and the rest ([`KafkaConfig::from_lookup`]); `None` when neither
/// is set (or both are empty).
///
/// # Errors
/// [`BusError::Config`] for a malformed setting, both `KAFKA_BROKERS` and
/// `MSK_CLUSTER_ARN` set (which cluster was meant is a guess either way), or
/// `MSK_CLUSTER_ARN` in a build without `msk`; [`BusError::Unavailable`] when MSK
/// cannot be asked.
pub async fn kafka_config_from_lookup(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<KafkaConfig>, BusError> {
    let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    if var("MSK_CLUSTER_ARN").is_some() && var("KAFKA_BROKERS").is_some() {
        return Err(BusError::Config(
            "both KAFKA_BROKERS and MSK_CLUSTER_ARN are set: set KAFKA_BROKERS for RedPanda \
             or Kafka, or MSK_CLUSTER_ARN for MSK with IAM authentication, not both"
                .to_owned(),
        ));
    }
    #[cfg(feature = "msk")]
    if let Some(cluster) = msk::MskConfig::from_lookup(var)? {
        return msk::kafka_config(&cluster, var).await.map(Some);
    }
    #[cfg(not(feature = "msk"))]
    if var("MSK_CLUSTER_ARN").is_some() {
        return Err(BusError::Config(
            "MSK_CLUSTER_ARN is set, but this build has no MSK support (feature `msk`)".into(),
        ));
    }
    KafkaConfig::from_lookup(var)
}

/// The context of the bus's Kafka clients. With MSK IAM authentication (feature
/// `msk`) it hands librdkafka a freshly signed token whenever it asks for one (before
/// the first connection, and before each token expires).
#[derive(Debug, Clone, Default)]
pub struct BusContext {
    #[cfg(feature = "msk")]
    tokens: Option<msk::MskTokens>,
}

impl BusContext {
    /// The context `config`'s authentication needs.
    pub fn for_config(config: &KafkaConfig) -> Self {
        match &config.auth {
            KafkaAuth::Plaintext => Self::default(),
            #[cfg(feature = "msk")]
            KafkaAuth::MskIam { region } => Self {
                tokens: Some(msk::MskTokens::new(region.clone())),
            },
        }
    }

    /// A context that signs MSK tokens with `tokens`: what [`Self::for_config`] makes
    /// for MSK, with another source of credentials.
    #[cfg(feature = "msk")]
    pub fn with_tokens(tokens: msk::MskTokens) -> Self {
        Self {
            tokens: Some(tokens),
        }
    }

    /// An OAUTHBEARER token, for the clients' `generate_oauth_token`.
    #[cfg(feature = "msk")]
    pub(crate) fn oauth_token(
        &self,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let tokens = self
            .tokens
            .as_ref()
            .ok_or("OAUTHBEARER is only used with MSK IAM authentication")?;
        let (token, lifetime_ms) = tokens.token().map_err(|e| {
            tracing::error!(error = %e, "no MSK authentication token");
            e
        })?;
        Ok(rdkafka::client::OAuthToken {
            token,
            // MSK takes the principal from the signed request.
            principal_name: String::new(),
            lifetime_ms,
        })
    }
}

impl ClientContext for BusContext {
    #[cfg(feature = "msk")]
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    #[cfg(feature = "msk")]
    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.oauth_token()
    }
}

/// The inspecting consumer of [`bus_status`] and [`read_topic`] never joins its
/// group, so it has no rebalance to handle.
impl rdkafka::consumer::ConsumerContext for BusContext {}

/// How much longer than `message.timeout.ms` a publish waits before it gives up on
/// the acknowledgements itself.
const DELIVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Publishes events to Kafka, one topic per stream type, keyed by stream id.
pub struct KafkaBus {
    producer: FutureProducer<BusContext>,
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
        let context = BusContext::for_config(&config);
        Self::with_context(config, context)
    }

    /// Creates the producer with `context` for its authentication instead of the one
    /// `config` implies.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_context(config: KafkaConfig, context: BusContext) -> Result<Self, KafkaBusError> {
        let producer = config
            .producer_config()
            .create_with_context(context)
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

/// `(name, value)` pairs as a Kafka record's headers.
fn record_headers<K: AsRef<str>>(pairs: &[(K, String)]) -> OwnedHeaders {
    pairs.iter().fold(
        OwnedHeaders::new_with_capacity(pairs.len()),
        |headers, (key, value)| {
            headers.insert(Header {
                key: key.as_ref(),
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
                .headers(record_headers(&message.headers));
            let delivery = self.producer.send_result(record).map_err(|(source, _)| {
                KafkaBusError::Delivery {
                    event_id: event.event_id,
                    topic: message.topic,
                    source,
                }
            })?;
            deliveries.push((event.event_id, message.topic, delivery));
        }
        let count = deliveries.len();
        let acknowledged = async {
            for (event_id, topic, delivery) in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((source, _))) => {
                        return Err(KafkaBusError::Delivery {
                            event_id,
                            topic,
                            source,
                        })
                    }
                    Err(_) => return Err(KafkaBusError::Cancelled { event_id }),
                }
            }
            Ok(())
        };
        // librdkafka fails a message after `message.timeout.ms`, but only once the
        // request carrying it is given up, which with a dead connection can take several
        // times as long: the wait is bounded here as well.
        let bound = self.config.message_timeout + DELIVERY_GRACE;
        match tokio::time::timeout(bound, acknowledged).await {
            Ok(result) => result.map_err(BusError::from),
            Err(_) => Err(KafkaBusError::TimedOut {
                events: count,
                waited: bound,
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::config::tests::lookup;
    use super::*;

    const CLUSTER_ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:cluster/ticketing/abc-1";

    #[tokio::test]
    async fn brokers_alone_are_plaintext_kafka_and_nothing_is_no_kafka() {
        let config = kafka_config_from_lookup(lookup(&[("KAFKA_BROKERS", "redpanda:9092")]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(config, KafkaConfig::new("redpanda:9092"));
        assert_eq!(kafka_config_from_lookup(lookup(&[])).await.unwrap(), None);
        let blank = [("KAFKA_BROKERS", " "), ("MSK_CLUSTER_ARN", "")];
        assert_eq!(
            kafka_config_from_lookup(lookup(&blank)).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn brokers_and_a_cluster_arn_together_are_refused() {
        let both = [
            ("KAFKA_BROKERS", "redpanda:9092"),
            ("MSK_CLUSTER_ARN", CLUSTER_ARN),
        ];
        let error = kafka_config_from_lookup(lookup(&both)).await.unwrap_err();
        assert!(
            matches!(&error, BusError::Config(reason)
                if reason.contains("KAFKA_BROKERS") && reason.contains("MSK_CLUSTER_ARN")),
            "{error:?}"
        );
    }

    #[cfg(feature = "msk")]
    #[tokio::test]
    async fn a_malformed_cluster_arn_is_refused_before_asking_aws() {
        let error = kafka_config_from_lookup(lookup(&[("MSK_CLUSTER_ARN", "b-1.msk:9098")]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, BusError::Config(reason) if reason.contains("MSK_CLUSTER_ARN")),
            "{error:?}"
        );
    }

    #[cfg(not(feature = "msk"))]
    #[tokio::test]
    async fn a_cluster_arn_in_a_build_without_msk_is_refused() {
        let error = kafka_config_from_lookup(lookup(&[("MSK_CLUSTER_ARN", CLUSTER_ARN)]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, BusError::Config(reason) if reason.contains("feature `msk`")),
            "{error:?}"
        );
    }
}
