//! The `projector-fn` Lambda function: the projector on Lambda. A Kafka event source
//! mapping (self-managed Kafka for RedPanda, or MSK) polls the event topics and
//! invokes it with batches of records; it applies them to the read models with the
//! same core as the `projector` binary ([`Projector::prepare`],
//! [`Projector::write_prepared`]) and reports the records it could not apply, so that
//! Lambda retries only those.
//!
//! Layout:
//! - `lib.rs`: [`Handler`] (one invocation: [`Handler::handle`]), the decoding of
//!   Lambda's Kafka records ([`delivery`]), the partial batch response
//!   ([`KafkaBatchResponse`]), [`DeadLetterTopic`], [`StartError`].
//! - `main.rs`: the binary: logging, the handler built once per cold start, and
//!   `lambda_runtime::run`.
//!
//! Per invocation, each partition's records (`<topic>-<partition>`, in offset order)
//! are one batch: folded, dead letters published, written. Streams are keyed, so one
//! stream's events are all in one partition and partitions are independent. A
//! partition whose batch cannot be written is reported from its first record on
//! (Kafka offsets are per partition: Lambda resumes that partition there); the others
//! are done. Poison messages and undecodable events are dead letters (the table, and
//! the dead-letter topic when `KAFKA_BROKERS` is set), never failures: retrying them
//! would never succeed.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use serde::{Deserialize, Serialize};
use ticketing_bus::{
    BusError, DeadLetterMessage, Delivered, Delivery, KafkaBus, Origin, PoisonMessage,
};
use ticketing_projector::live::{dead_letter_messages, poison_dead_letter, split};
use ticketing_projector::{BatchOutcome, ProjectionError, Projector};
use ticketing_read_models::{ConnectError, DeadLetter, ReadModelConfig, ReadModelError};
use ticketing_store::StoreConfig;

/// What the function answers: the records Lambda must deliver again. Empty when the
/// whole batch is applied. Lambda honours it when the event source mapping has
/// `FunctionResponseTypes: [ReportBatchItemFailures]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaBatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One record to deliver again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: ItemIdentifier,
}

/// A record of a Kafka batch: its `records` key (`<topic>-<partition>`) and offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemIdentifier {
    pub partition: String,
    pub offset: i64,
}

/// Where dead letters go besides the table: the dead-letter topic.
#[async_trait]
pub trait DeadLetterTopic: Send + Sync {
    /// Publishes `letters` and waits for the acknowledgements.
    ///
    /// # Errors
    /// [`BusError::Unavailable`]: the batch is not written and is retried.
    async fn publish(&self, letters: &[DeadLetterMessage]) -> Result<(), BusError>;
}

#[async_trait]
impl DeadLetterTopic for KafkaBus {
    async fn publish(&self, letters: &[DeadLetterMessage]) -> Result<(), BusError> {
        self.dead_letter(letters).await
    }
}

/// Why the function cannot start: the configuration. Reported to the Lambda runtime
/// at cold start; nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    ReadModels(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] ticketing_store::StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Why one partition's batch was not applied; its records are reported as failures.
#[derive(Debug, thiserror::Error)]
enum PartitionError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("publishing dead letters failed: {0}")]
    DeadLetters(#[from] BusError),
}

/// A conflict means another projector applied some of the same streams meanwhile:
/// folding again skips what it applied. After this many, the records are reported.
const CONFLICT_ATTEMPTS: usize = 3;

/// The projector an invocation runs, built once per cold start.
#[derive(Clone)]
pub struct Handler {
    projector: Projector,
    dead_letter_topic: Option<Arc<dyn DeadLetterTopic>>,
}

impl Handler {
    /// A handler over `projector`, publishing dead letters to `dead_letter_topic` when
    /// there is one.
    pub fn new(projector: Projector, dead_letter_topic: Option<Arc<dyn DeadLetterTopic>>) -> Self {
        Self {
            projector,
            dead_letter_topic,
        }
    }

    /// Everything from the environment: the event store (`DATABASE_URL`, read to
    /// fill gaps), the read models (`READ_MODEL_STORE`, `DYNAMODB_*`), and the
    /// dead-letter topic's broker when `KAFKA_BROKERS` is set.
    ///
    /// # Errors
    /// A [`StartError`] for a malformed setting.
    pub async fn from_env() -> Result<Self, StartError> {
        let (store, read_models) = ticketing_read_models::connect_configured(
            &StoreConfig::from_env()?,
            &ReadModelConfig::from_env()?,
        )
        .await?;
        let dead_letter_topic = match ticketing_bus::kafka::kafka_config_from_env().await? {
            Some(config) => Some(Arc::new(KafkaBus::new(config).map_err(BusError::from)?)
                as Arc<dyn DeadLetterTopic>),
            None => None,
        };
        Ok(Self::new(
            Projector::new(store, read_models),
            dead_letter_topic,
        ))
    }

    /// Applies one invocation's records, partition by partition, and answers with
    /// the records of the partitions that could not be applied.
    #[tracing::instrument(skip_all, fields(partitions = event.records.len()))]
    pub async fn handle(&self, event: KafkaEvent) -> KafkaBatchResponse {
        let mut response = KafkaBatchResponse::default();
        let partitions: BTreeMap<String, Vec<KafkaRecord>> = event.records.into_iter().collect();
        for (partition, mut records) in partitions {
            records.sort_by_key(|record| record.offset);
            let deliveries: Vec<Delivery> = records
                .iter()
                .map(|record| delivery(&partition, record))
                .collect();
            match self.apply(deliveries).await {
                Ok(outcome) => tracing::info!(
                    %partition,
                    records = records.len(),
                    applied = outcome.applied,
                    duplicates = outcome.duplicates,
                    gap_filled = outcome.gap_filled,
                    dead_lettered = outcome.dead_lettered,
                    "partition applied"
                ),
                Err(error) => {
                    tracing::error!(
                        %partition,
                        error.cause_chain = ?error,
                        "partition not applied; its records are reported for retry"
                    );
                    response
                        .batch_item_failures
                        .extend(records.iter().map(|record| BatchItemFailure {
                            item_identifier: ItemIdentifier {
                                partition: partition.clone(),
                                offset: record.offset,
                            },
                        }));
                }
            }
        }
        response
    }

    async fn apply(&self, deliveries: Vec<Delivery>) -> Result<BatchOutcome, PartitionError> {
        let (events, poison) = split(deliveries);
        let poison_letters: Vec<DeadLetter> = poison
            .iter()
            .map(|(origin, message)| poison_dead_letter(origin, message))
            .collect();
        let mut attempt = 1;
        loop {
            let prepared = self
                .projector
                .prepare(
                    events.iter().map(|(_, event)| event.clone()).collect(),
                    poison_letters.clone(),
                )
                .await?;
            if let Some(topic) = &self.dead_letter_topic {
                let letters = dead_letter_messages(&prepared, &events, &poison);
                if !letters.is_empty() {
                    topic.publish(&letters).await?;
                }
            }
            match self.projector.write_prepared(&prepared).await {
                Ok(()) => return Ok(prepared.outcome()),
                Err(ProjectionError::ReadModels(ReadModelError::Conflict { stream_id }))
                    if attempt < CONFLICT_ATTEMPTS =>
                {
                    tracing::warn!(%stream_id, attempt, "applied meanwhile; folding again");
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// A Lambda Kafka record as what the projector's consumer would have delivered: the
/// recorded event its headers and value carry, or a poison message (kept byte for
/// byte) when they do not, including a key or value that is not base64.
pub fn delivery(partition_key: &str, record: &KafkaRecord) -> Delivery {
    let origin = Origin {
        topic: record
            .topic
            .clone()
            .unwrap_or_else(|| topic_of(partition_key).to_owned()),
        partition: i32::try_from(record.partition).unwrap_or(-1),
        offset: record.offset,
    };
    let headers: Vec<(String, String)> = record
        .headers
        .iter()
        .flat_map(|header| header.iter())
        .filter_map(|(name, value)| {
            let bytes: Vec<u8> = value.iter().map(|b| b.to_ne_bytes()[0]).collect();
            String::from_utf8(bytes)
                .ok()
                .map(|text| (name.clone(), text))
        })
        .collect();
    let base64 = base64::engine::general_purpose::STANDARD;
    let key = record.key.as_deref().map(|key| base64.decode(key));
    let payload = record.value.as_deref().map(|value| base64.decode(value));
    let (key, payload) = match (key.transpose(), payload.transpose()) {
        (Ok(key), Ok(payload)) => (key, payload.unwrap_or_default()),
        (key, payload) => {
            let poison = PoisonMessage {
                key: key.ok().flatten(),
                headers,
                payload: payload.ok().flatten().unwrap_or_default(),
                error: "the record's key or value is not base64".to_owned(),
            };
            return Delivery {
                origin,
                content: Delivered::Poison(poison),
            };
        }
    };
    // A record without a value is an empty payload here, which no event decodes
    // from.
    let content = Delivered::decode(key.as_deref(), headers, Some(&payload));
    Delivery { origin, content }
}

/// The topic of a `records` key: everything before the last `-`.
fn topic_of(partition_key: &str) -> &str {
    partition_key
        .rsplit_once('-')
        .map_or(partition_key, |(topic, _)| topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_of_a_records_key_is_what_precedes_its_partition_number() {
        assert_eq!(
            topic_of("ticketing-inventory-events-11"),
            "ticketing-inventory-events"
        );
        assert_eq!(topic_of("plain"), "plain");
    }

    #[test]
    fn the_response_has_lambdas_kafka_shape() {
        let response = KafkaBatchResponse {
            batch_item_failures: vec![BatchItemFailure {
                item_identifier: ItemIdentifier {
                    partition: "ticketing-show-events-2".to_owned(),
                    offset: 42,
                },
            }],
        };
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({
                "batchItemFailures": [
                    { "itemIdentifier": { "partition": "ticketing-show-events-2", "offset": 42 } }
                ]
            })
        );
        assert_eq!(
            serde_json::to_value(KafkaBatchResponse::default()).unwrap(),
            serde_json::json!({ "batchItemFailures": [] })
        );
    }
}
