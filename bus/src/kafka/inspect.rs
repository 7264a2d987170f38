//! Looking at the bus from outside, for operators and checks: what [`bus_status`]
//! reports (the topics, their partitions and high watermarks, and how far a consumer
//! group has committed on each) and what [`read_topic`] reads (a topic's messages from
//! the beginning, keys and headers only). Neither joins the consumer group, so they
//! can run beside a live projector without causing a rebalance.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::{BusContext, KafkaConfig, KafkaSourceError};
use crate::message::TOPICS;
use crate::source::DEAD_LETTER_TOPIC;
use crate::BusError;

/// One partition of a topic, as the broker and the group see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The first offset still on the broker (retention moves it on).
    pub low_watermark: i64,
    /// The offset the next message will get: the partition holds
    /// `high_watermark - low_watermark` messages.
    pub high_watermark: i64,
    /// The group's committed offset, `None` when it has committed nothing here.
    pub committed: Option<i64>,
    /// Messages the group has not committed yet: from its committed offset (or the
    /// low watermark when it has none, since a new group starts at the beginning) to
    /// the high watermark.
    pub lag: i64,
}

/// A topic and its partitions; `exists` is false for an expected topic the broker
/// does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicStatus {
    pub topic: String,
    pub exists: bool,
    pub partitions: Vec<PartitionStatus>,
    /// Messages on the broker, every partition together.
    pub messages: i64,
    /// The group's lag, every partition together.
    pub lag: i64,
}

/// What [`bus_status`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusStatus {
    pub brokers: String,
    /// The broker ids in the cluster's metadata.
    pub broker_ids: Vec<i32>,
    pub group: String,
    /// Every event topic, then the dead-letter topic.
    pub topics: Vec<TopicStatus>,
    /// The group's lag over the event topics (the dead-letter topic is nobody's input).
    pub lag: i64,
}

impl BusStatus {
    /// The expected topics the broker does not have.
    pub fn missing_topics(&self) -> Vec<&str> {
        self.topics
            .iter()
            .filter(|t| !t.exists)
            .map(|t| t.topic.as_str())
            .collect()
    }
}

/// One message of a topic: where it is, its key and the event headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The message's headers (`event-type`, `stream-id`, `stream-version`, ...).
    pub headers: BTreeMap<String, String>,
}

/// Asks the broker for the event topics and the dead-letter topic (partitions and
/// watermarks) and for `group`'s committed offsets, within `timeout` per request.
/// A metadata request that succeeds is the proof that the broker answers.
///
/// # Errors
/// [`BusError::Config`] when the client cannot be created; [`BusError::Unavailable`]
/// when the broker does not answer within `timeout`.
pub async fn bus_status(
    config: &KafkaConfig,
    group: &str,
    timeout: Duration,
) -> Result<BusStatus, BusError> {
    let config = config.clone();
    let group = group.to_owned();
    tokio::task::spawn_blocking(move || status_blocking(&config, &group, timeout))
        .await
        .map_err(|join| BusError::Unavailable(Box::new(join)))?
}

fn inspector(config: &KafkaConfig, group: &str) -> Result<BaseConsumer<BusContext>, BusError> {
    let consumer: BaseConsumer<BusContext> = config
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create_with_context(BusContext::for_config(config))
        .map_err(|source| KafkaSourceError::Client {
            client: "inspecting consumer",
            source,
        })?;
    if config.auth.signs_tokens() {
        // The first token is asked for on the consumer's queue, which only a poll
        // serves; the metadata and offset requests below do not.
        let _ = consumer.poll(TOKEN_POLL);
    }
    Ok(consumer)
}

/// How long the inspecting consumer serves its queue for the first MSK token: the
/// request is queued when the consumer is created, and signing it takes
/// milliseconds.
const TOKEN_POLL: Duration = Duration::from_millis(200);

fn unavailable(what: &'static str) -> impl FnOnce(KafkaError) -> BusError {
    move |source| KafkaSourceError::Inspect { what, source }.into()
}

fn status_blocking(
    config: &KafkaConfig,
    group: &str,
    timeout: Duration,
) -> Result<BusStatus, BusError> {
    let consumer = inspector(config, group)?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(unavailable("the cluster's metadata"))?;
    let broker_ids = metadata.brokers().iter().map(|b| b.id()).collect();
    let partitions_of: BTreeMap<String, Vec<i32>> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| {
            let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            (t.name().to_owned(), ids)
        })
        .collect();
    drop(metadata);

    let wanted: Vec<&str> = TOPICS.into_iter().chain([DEAD_LETTER_TOPIC]).collect();
    let mut list = TopicPartitionList::new();
    for topic in &wanted {
        for partition in partitions_of.get(*topic).into_iter().flatten() {
            list.add_partition(topic, *partition);
        }
    }
    let committed: BTreeMap<(String, i32), Option<i64>> = if list.count() == 0 {
        BTreeMap::new()
    } else {
        let offsets = consumer
            .committed_offsets(list, timeout)
            .map_err(unavailable("the group's committed offsets"))?;
        let read = offsets
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                };
                ((e.topic().to_owned(), e.partition()), offset)
            })
            .collect();
        // Dropped before the consumer: the other way round, the consumer's drop hangs.
        drop(offsets);
        read
    };

    let mut topics = Vec::with_capacity(wanted.len());
    for topic in wanted {
        let Some(ids) = partitions_of.get(topic) else {
            topics.push(TopicStatus {
                topic: topic.to_owned(),
                exists: false,
                partitions: Vec::new(),
                messages: 0,
                lag: 0,
            });
            continue;
        };
        let mut partitions = Vec::with_capacity(ids.len());
        for &partition in ids {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .map_err(unavailable("a partition's watermarks"))?;
            let committed = committed
                .get(&(topic.to_owned(), partition))
                .copied()
                .flatten();
            let lag = (high - committed.unwrap_or(low).max(low)).max(0);
            partitions.push(PartitionStatus {
                partition,
                low_watermark: low,
                high_watermark: high,
                committed,
                lag,
            });
        }
        topics.push(TopicStatus {
            topic: topic.to_owned(),
            exists: true,
            messages: partitions
                .iter()
                .map(|p| p.high_watermark - p.low_watermark)
                .sum(),
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
        });
    }
    drop(consumer);
    let lag = topics
        .iter()
        .filter(|t| t.topic != DEAD_LETTER_TOPIC)
        .map(|t| t.lag)
        .sum();
    Ok(BusStatus {
        brokers: config.brokers.clone(),
        broker_ids,
        group: group.to_owned(),
        topics,
        lag,
    })
}

/// Reads every message of `topic` that is on the broker now, from the low to the high
/// watermark of each partition, in partition and offset order: keys and headers, not
/// payloads. Gives up after `timeout` without a message.
///
/// # Errors
/// [`BusError::Config`] for a topic the broker does not have, or a client that cannot
/// be created; [`BusError::Unavailable`] when the broker does not answer in time.
pub async fn read_topic(
    config: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<MessageSummary>, BusError> {
    let config = config.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_blocking(&config, &topic, timeout))
        .await
        .map_err(|join| BusError::Unavailable(Box::new(join)))?
}

fn read_blocking(
    config: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<MessageSummary>, BusError> {
    // A group id librdkafka wants for a consumer, never joined: partitions are
    // assigned, and nothing is committed.
    let consumer = inspector(config, &format!("{}-reader", config.client_id))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(unavailable("the topic's metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    drop(metadata);
    if partitions.is_empty() {
        return Err(BusError::Config(format!(
            "the broker has no topic `{topic}`"
        )));
    }
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(unavailable("a partition's watermarks"))?;
        if high > low {
            ends.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .map_err(unavailable("an assignment"))?;
        }
    }
    let mut messages = Vec::new();
    if !ends.is_empty() {
        consumer
            .assign(&assignment)
            .map_err(unavailable("an assignment"))?;
        let mut done: BTreeMap<i32, bool> = ends.keys().map(|p| (*p, false)).collect();
        while done.values().any(|d| !d) {
            let Some(message) = consumer.poll(timeout) else {
                return Err(KafkaSourceError::Inspect {
                    what: "the topic's messages",
                    source: KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    ),
                }
                .into());
            };
            let message = message.map_err(unavailable("the topic's messages"))?;
            let partition = message.partition();
            if message.offset() + 1 >= ends.get(&partition).copied().unwrap_or(0) {
                done.insert(partition, true);
            }
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (h.key.to_owned(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            messages.push(MessageSummary {
                topic: topic.to_owned(),
                partition,
                offset: message.offset(),
                key: message
                    .key()
                    .map(|key| String::from_utf8_lossy(key).into_owned()),
                headers,
            });
        }
    }
    drop(assignment);
    drop(consumer);
    messages.sort_by_key(|m| (m.partition, m.offset));
    Ok(messages)
}
