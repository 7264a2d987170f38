//! Creating the bus's topics: every event topic ([`crate::message::TOPICS`]) and the
//! dead-letter topic, for a set-up command or a deployment step. Brokers that
//! auto-create topics would create them with their own defaults (one partition,
//! unbounded retention), which is not what a consumer group spread over several
//! projectors wants.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::{BusContext, KafkaConfig, KafkaSourceError};
use crate::message::TOPICS;
use crate::source::DEAD_LETTER_TOPIC;
use crate::BusError;

/// Creates every event topic and [`DEAD_LETTER_TOPIC`] with `partitions` partitions,
/// `replication` replicas and, when given, `retention.ms = retention_ms` (`-1`:
/// forever). A topic that already exists is left as it is, so running it again is
/// harmless. Returns the topics it created.
///
/// # Errors
/// - [`BusError::Config`] on MSK with IAM authentication (rdkafka's admin client
///   cannot authenticate there), for a partition count or replication factor below 1, a
///   retention that is neither `-1` nor positive, or a topic the broker refuses as
///   configured (too many replicas for the cluster, a policy, no authorisation).
/// - [`BusError::Unavailable`] when no broker answered within `timeout`, or the
///   broker failed to create a topic for another reason; running it again may work.
#[tracing::instrument(skip(config), fields(brokers = %config.brokers))]
pub async fn ensure_topics(
    config: &KafkaConfig,
    partitions: i32,
    replication: i32,
    retention_ms: Option<i64>,
    timeout: Duration,
) -> Result<Vec<String>, BusError> {
    if partitions < 1 {
        return Err(BusError::Config(format!(
            "a topic needs at least one partition, not {partitions}"
        )));
    }
    if replication < 1 {
        return Err(BusError::Config(format!(
            "a topic needs at least one replica, not {replication}"
        )));
    }
    if let Some(retention) = retention_ms.filter(|ms| *ms != -1 && *ms < 1) {
        return Err(BusError::Config(format!(
            "the retention must be -1 (forever) or a positive number of milliseconds, not {retention}"
        )));
    }

    if config.auth.signs_tokens() {
        // rdkafka's admin client never serves librdkafka's OAUTHBEARER token refresh
        // (it polls only its own result queue), so it cannot authenticate to MSK
        // with IAM: it would wait for a token until the timeout.
        return Err(BusError::Config(
            "creating topics on MSK with IAM authentication is not supported here: \
             create them with the Kafka tools and the aws-msk-iam-auth library \
             (OPERATIONS.md, \"Topics on MSK\")"
                .to_owned(),
        ));
    }
    let admin: AdminClient<BusContext> = config
        .client_config()
        .create_with_context(BusContext::for_config(config))
        .map_err(|source| KafkaSourceError::Client {
            client: "admin client",
            source,
        })?;
    let retention = retention_ms.map(|ms| ms.to_string());
    let new_topics: Vec<NewTopic<'_>> = TOPICS
        .into_iter()
        .chain([DEAD_LETTER_TOPIC])
        .map(|name| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
            match &retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(KafkaSourceError::Admin)?;

    let mut created = Vec::new();
    let mut first_failure = None;
    for result in results {
        match result {
            Ok(topic) => {
                tracing::info!(topic, partitions, replication, "topic created");
                created.push(topic);
            }
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic, "topic already exists");
            }
            Err((topic, code)) => {
                tracing::error!(topic, %code, "topic not created");
                first_failure.get_or_insert(KafkaSourceError::CreateTopic { topic, code });
            }
        }
    }
    match first_failure {
        Some(failure) => Err(failure.into()),
        None => Ok(created),
    }
}
