use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use ticketing_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamAppend,
};
use uuid::Uuid;

/// Appends `count` events to each stream, one append per stream, as a command whose
/// process died right after its commit would leave them: committed, never published.
pub async fn append_unpublished(store: &dyn EventStore, streams: &[&str], count: usize) {
    for stream_id in streams {
        let events = (0..count)
            .map(|n| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "SomethingHappened".to_owned(),
                schema_version: 1,
                data: json!({ "stream": stream_id, "n": n }),
                metadata: EventMetadata {
                    correlation_id: Some(Uuid::new_v4()),
                    ..EventMetadata::default()
                },
            })
            .collect();
        store
            .append(
                vec![StreamAppend {
                    stream_id: (*stream_id).to_owned(),
                    expected_version: ExpectedVersion::Any,
                    events,
                }],
                None,
            )
            .await
            .unwrap();
    }
}

/// Everything in the outbox.
pub async fn outbox(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store.unpublished(None, 10_000).await.unwrap()
}

/// A message as a consumer of the mock broker received it.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub topic: String,
    pub key: String,
    pub headers: HashMap<String, String>,
    pub payload: serde_json::Value,
}

/// Reads every topic's partition 0 from the beginning until `expected` messages
/// arrived or `timeout` passed, then `linger` more to catch duplicates. No consumer
/// group: the partitions are assigned, so there is no rebalance to wait for.
pub async fn consume(
    bootstrap_servers: String,
    topics: &'static [&'static str],
    expected: usize,
    timeout: Duration,
    linger: Duration,
) -> Vec<Consumed> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap_servers)
            .set("group.id", format!("test-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .expect("a consumer");
        let mut assignment = TopicPartitionList::new();
        for topic in topics {
            assignment
                .add_partition_offset(topic, 0, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut received = Vec::new();
        let start = Instant::now();
        let mut lingering_since: Option<Instant> = None;
        loop {
            if received.len() >= expected && lingering_since.is_none() {
                lingering_since = Some(Instant::now());
            }
            if lingering_since.is_some_and(|since| since.elapsed() >= linger)
                || start.elapsed() >= timeout
            {
                break;
            }
            let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = polled.expect("a message, not an error");
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            received.push(Consumed {
                topic: message.topic().to_owned(),
                key: String::from_utf8(message.key().unwrap_or_default().to_vec()).unwrap(),
                headers,
                payload: serde_json::from_slice(message.payload().unwrap_or_default()).unwrap(),
            });
        }
        received
    })
    .await
    .unwrap()
}
