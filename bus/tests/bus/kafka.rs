use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use ticketing_bus::message::{headers, TOPICS};
use ticketing_bus::{relay_once, topic_for, EventBus, KafkaBus, KafkaConfig};
use ticketing_store::testing::with_sqlite;
use ticketing_store::EventStore;
use uuid::Uuid;

use crate::support::{append_unpublished, consume, outbox};

const STREAMS: [&str; 4] = ["show-1", "inventory-1-floor", "reservation-1", "payment-1"];

/// A one-broker mock cluster with the system's topics.
fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    for topic in TOPICS {
        cluster.create_topic(topic, 1, 1).expect("a topic");
    }
    cluster
}

fn bus(cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>) -> KafkaBus {
    let mut config = KafkaConfig::new(cluster.bootstrap_servers());
    config.message_timeout = Duration::from_secs(2);
    KafkaBus::new(config).expect("a producer")
}

pub async fn each_event_goes_to_its_stream_topic_keyed_by_stream_with_its_headers_and_payload() {
    with_sqlite(|store| async move {
        let cluster = cluster();
        let bus = bus(&cluster);
        append_unpublished(&store, &STREAMS, 2).await;
        let events = outbox(&store).await;

        bus.publish(&events).await.unwrap();

        let consumed = consume(
            cluster.bootstrap_servers(),
            &TOPICS,
            events.len(),
            Duration::from_secs(20),
            Duration::ZERO,
        )
        .await;
        assert_eq!(consumed.len(), events.len());
        for event in &events {
            let id = event.event_id.to_string();
            let message = consumed
                .iter()
                .find(|m| m.headers.get(headers::EVENT_ID) == Some(&id))
                .unwrap_or_else(|| panic!("{id} was consumed"));
            assert_eq!(message.topic, topic_for(&event.stream_id).unwrap());
            assert_eq!(message.key, event.stream_id);
            assert_eq!(message.payload, event.data);
            let header = |name: &str| message.headers.get(name).cloned();
            assert_eq!(header(headers::EVENT_TYPE), Some(event.event_type.clone()));
            assert_eq!(header(headers::SCHEMA_VERSION), Some("1".to_owned()));
            assert_eq!(header(headers::STREAM_ID), Some(event.stream_id.clone()));
            assert_eq!(
                header(headers::STREAM_VERSION),
                Some(event.version.to_string())
            );
            assert_eq!(
                header(headers::TRANSACTION_ID),
                Some(event.global_position.transaction_id.to_string())
            );
            assert_eq!(
                header(headers::POSITION),
                Some(event.global_position.position.to_string())
            );
            assert_eq!(
                header(headers::CORRELATION_ID),
                event.metadata.correlation_id.map(|c| c.to_string())
            );
        }
        // A stream's events arrive in version order (one partition per stream key).
        let versions: Vec<&str> = consumed
            .iter()
            .filter(|m| m.key == "reservation-1")
            .map(|m| m.headers[headers::STREAM_VERSION].as_str())
            .collect();
        assert_eq!(versions, ["1", "2"]);
        drop(bus);
        drop(cluster);
    })
    .await;
}

pub async fn with_the_broker_down_a_publish_fails_within_the_timeout_and_the_relay_catches_up() {
    with_sqlite(|store| async move {
        let cluster = cluster();
        let bus = bus(&cluster);
        // The producer has talked to the broker before it goes down.
        append_unpublished(&store, &["show-1"], 1).await;
        assert_eq!(relay_once(&store, &bus, None, 100).await.unwrap(), 1);

        cluster.broker_down(1).unwrap();
        append_unpublished(&store, &STREAMS, 3).await;
        let backlog = outbox(&store).await;
        assert_eq!(backlog.len(), 12);

        let started = Instant::now();
        let error = relay_once(&store, &bus, None, 100).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a down broker fails the publish after message.timeout.ms, it does not block: {:?}",
            started.elapsed()
        );
        assert!(
            matches!(&error, ticketing_bus::RelayError::Bus(e) if e.is_transient()),
            "{error:?}"
        );
        assert_eq!(outbox(&store).await, backlog, "nothing is marked published");

        cluster.broker_up(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match relay_once(&store, &bus, None, 100).await {
                Ok(published) => {
                    assert_eq!(published, 12);
                    break;
                }
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!(?error, "broker not back yet");
                }
                Err(error) => panic!("the relay never caught up: {error:?}"),
            }
        }
        assert!(outbox(&store).await.is_empty());
        assert_eq!(relay_once(&store, &bus, None, 100).await.unwrap(), 0);

        let consumed = consume(
            cluster.bootstrap_servers(),
            &TOPICS,
            13,
            Duration::from_secs(20),
            Duration::from_millis(500),
        )
        .await;
        let consumed_ids: HashSet<Uuid> = consumed
            .iter()
            .map(|m| m.headers[headers::EVENT_ID].parse().unwrap())
            .collect();
        let stored_ids: HashSet<Uuid> = store
            .read_all(Default::default(), 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(
            consumed_ids, stored_ids,
            "every committed event reached the bus"
        );
        drop(bus);
        drop(cluster);
    })
    .await;
}

pub async fn status_and_read_topic_report_what_the_broker_holds_without_joining_the_group() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    use ticketing_bus::kafka::{bus_status, read_topic};
    use ticketing_bus::source::DEAD_LETTER_TOPIC;
    use ticketing_bus::BusError;

    with_sqlite(|store| async move {
        let cluster = cluster();
        let bus = bus(&cluster);
        append_unpublished(&store, &STREAMS, 2).await;
        bus.publish(&outbox(&store).await).await.unwrap();
        let config = KafkaConfig::new(cluster.bootstrap_servers());
        let show_topic = topic_for("show-1").unwrap();

        // The group has consumed one show event and committed it.
        let servers = cluster.bootstrap_servers();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &servers)
                .set("group.id", "projectors")
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut offsets = TopicPartitionList::new();
            offsets
                .add_partition_offset(show_topic, 0, Offset::Offset(1))
                .unwrap();
            consumer.commit(&offsets, CommitMode::Sync).unwrap();
            drop(offsets);
            drop(consumer);
        })
        .await
        .unwrap();

        let status = bus_status(&config, "projectors", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(status.broker_ids.len(), 1);
        assert_eq!(status.missing_topics(), vec![DEAD_LETTER_TOPIC]);
        for topic in status.topics.iter().filter(|t| t.exists) {
            assert_eq!(topic.partitions.len(), 1, "{topic:?}");
            assert_eq!(topic.messages, 2, "{topic:?}");
            let partition = &topic.partitions[0];
            assert_eq!(partition.high_watermark, 2);
            if topic.topic == show_topic {
                assert_eq!((partition.committed, partition.lag), (Some(1), 1));
            } else {
                assert_eq!((partition.committed, partition.lag), (None, 2), "{topic:?}");
            }
        }
        assert_eq!(status.lag, 7, "eight events, one committed");

        let messages = read_topic(&config, show_topic, Duration::from_secs(10))
            .await
            .unwrap();
        let read: Vec<(Option<&str>, &str)> = messages
            .iter()
            .map(|m| {
                (
                    m.key.as_deref(),
                    m.headers[headers::STREAM_VERSION].as_str(),
                )
            })
            .collect();
        assert_eq!(read, [(Some("show-1"), "1"), (Some("show-1"), "2")]);

        let missing = read_topic(&config, "no-such-topic", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&missing, BusError::Config(message) if message.contains("no-such-topic")),
            "{missing:?}"
        );
        drop(bus);
        drop(cluster);
    })
    .await;
}

/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    use ticketing_store::testing::async_trial;
    ticketing_store::trials![
        async_trial =>
            each_event_goes_to_its_stream_topic_keyed_by_stream_with_its_headers_and_payload,
            with_the_broker_down_a_publish_fails_within_the_timeout_and_the_relay_catches_up,
            status_and_read_topic_report_what_the_broker_holds_without_joining_the_group,
    ]
}
