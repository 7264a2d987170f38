use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ticketing_bus::message::{SHOW_TOPIC, TOPICS};
use ticketing_bus::source::dead_letter_headers;
use ticketing_bus::{
    topic_for, DeadLetterMessage, Delivered, Delivery, EventBus, EventSource, KafkaBus,
    KafkaConfig, KafkaSource, KafkaSourceConfig, PoisonMessage, DEAD_LETTER_TOPIC,
};
use ticketing_store::{EventMetadata, GlobalPosition, RecordedEvent};
use uuid::Uuid;

/// Two partitions per event topic, so that a stream's order is only kept by its key.
const PARTITIONS: i32 = 2;

/// A one-broker mock cluster, owned by a producer client (dropping it drops the
/// cluster), with the event topics and the dead-letter topic.
struct Broker {
    owner: FutureProducer,
}

impl Broker {
    fn new() -> Self {
        let owner: FutureProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .expect("a client with a mock cluster");
        let cluster = owner
            .client()
            .mock_cluster()
            .expect("the client owns a mock cluster");
        for topic in TOPICS {
            cluster
                .create_topic(topic, PARTITIONS, 1)
                .expect("an event topic");
        }
        cluster
            .create_topic(DEAD_LETTER_TOPIC, 1, 1)
            .expect("the dead-letter topic");
        drop(cluster);
        form_groups_at_once(&owner);
        Self { owner }
    }

    fn bootstrap_servers(&self) -> String {
        self.owner
            .client()
            .mock_cluster()
            .expect("the client owns a mock cluster")
            .bootstrap_servers()
    }

    fn bus(&self) -> KafkaBus {
        KafkaBus::new(self.kafka_config()).expect("a producer")
    }

    fn kafka_config(&self) -> KafkaConfig {
        let mut config = KafkaConfig::new(self.bootstrap_servers());
        config.message_timeout = Duration::from_secs(3);
        config
    }

    fn source(&self, group_id: &str) -> KafkaSource {
        let mut config = KafkaSourceConfig::new(self.kafka_config());
        config.group_id = group_id.to_owned();
        config.stats_interval = Duration::from_millis(100);
        // When the last member leaves, the mock broker waits almost a session timeout
        // for members to rejoin before a new one can form the group again.
        config.session_timeout = Duration::from_millis(1500);
        KafkaSource::new(config).expect("a consumer")
    }

    /// Produces a message that is not a recorded event; `payload: None` is a tombstone.
    async fn produce_raw(&self, key: &str, headers: &[(&str, &[u8])], payload: Option<&[u8]>) {
        let headers = headers
            .iter()
            .fold(OwnedHeaders::new(), |all, (name, value)| {
                all.insert(Header {
                    key: name,
                    value: Some(*value),
                })
            });
        let mut record = FutureRecord::<str, [u8]>::to(SHOW_TOPIC)
            .key(key)
            .headers(headers);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        self.owner
            .send(record, Duration::from_secs(5))
            .await
            .expect("the raw message was acknowledged");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Let the owner's pending requests finish before the cluster goes.
        let _ = self.owner.flush(Duration::from_secs(1));
    }
}

/// The mock broker waits 3 s before it forms a new consumer group (Kafka's
/// `group.initial.rebalance.delay.ms`), which every source of these tests would pay.
/// rdkafka has no safe wrapper for lowering it, and only the client that owns the
/// cluster can hand out the raw pointer: hence the one unsafe call of the crate's
/// tests (the crate's lints deny unsafe code rather than forbid it for this).
#[allow(unsafe_code)]
fn form_groups_at_once(owner: &FutureProducer) {
    // SAFETY: `owner` is a live client that created the mock cluster (so the pointer
    // is valid and non-null, checked below, for as long as `owner` lives, which
    // outlasts this call), and setting the delay only writes a default under the
    // cluster's own lock.
    unsafe {
        let cluster = rdkafka_sys::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
        assert!(!cluster.is_null(), "the client owns a mock cluster");
        rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
    }
}

fn unique_group() -> String {
    format!("projector-test-{}", Uuid::new_v4())
}

/// Events of `streams`, `count` each, in global order, with every kind of metadata.
fn events(streams: &[&str], count: u64) -> Vec<RecordedEvent> {
    let mut position = 0;
    let mut events = Vec::new();
    for version in 1..=count {
        for stream_id in streams {
            position += 1;
            events.push(RecordedEvent {
                global_position: GlobalPosition {
                    transaction_id: 500 + position,
                    position,
                },
                stream_id: (*stream_id).to_owned(),
                version,
                event_id: Uuid::now_v7(),
                event_type: "SomethingHappened".to_owned(),
                schema_version: 1,
                data: serde_json::json!({ "stream": stream_id, "version": version }),
                metadata: EventMetadata {
                    correlation_id: Some(Uuid::new_v4()),
                    causation_id: Some(Uuid::new_v4()),
                    actor: Some("user-1".to_owned()),
                    idempotency_key: Some(format!("key-{position}")),
                    traceparent: Some(format!(
                        "00-4bf92f3577b34da6a3ce929d0e0e{position:04x}-00f067aa0ba902b7-01"
                    )),
                },
                recorded_at: chrono::DateTime::from_timestamp_micros(
                    1_700_000_000_000_000 + position * 1_000,
                )
                .expect("an instant"),
            });
        }
    }
    events
}

/// What a consumer gets back: the bus carries only the correlation id of the metadata.
fn as_delivered(event: &RecordedEvent) -> RecordedEvent {
    RecordedEvent {
        metadata: EventMetadata {
            correlation_id: event.metadata.correlation_id,
            traceparent: event.metadata.traceparent.clone(),
            ..EventMetadata::default()
        },
        ..event.clone()
    }
}

/// Batches of at most `max` until `expected` deliveries arrived or `timeout` passed.
async fn receive(
    source: &mut KafkaSource,
    max: usize,
    expected: usize,
    timeout: Duration,
) -> Vec<Vec<Delivery>> {
    let started = Instant::now();
    let mut batches = Vec::new();
    let mut received = 0;
    while received < expected && started.elapsed() < timeout {
        let batch = source
            .next_batch(max, Duration::from_millis(300))
            .await
            .expect("a batch");
        if !batch.is_empty() {
            received += batch.len();
            batches.push(batch);
        }
    }
    batches
}

fn delivered_events(deliveries: &[Delivery]) -> Vec<RecordedEvent> {
    deliveries
        .iter()
        .map(|delivery| match &delivery.content {
            Delivered::Event(event) => event.clone(),
            Delivered::Poison(poison) => panic!("{} is poison: {poison:?}", delivery.origin),
        })
        .collect()
}

pub async fn batches_hold_at_most_max_events_decoded_as_published_in_stream_order() {
    let broker = Broker::new();
    let streams = ["show-1", "inventory-1-floor", "reservation-1", "payment-1"];
    let published = events(&streams, 3);
    broker.bus().publish(&published).await.unwrap();
    let mut source = broker.source(&unique_group());

    let batches = receive(&mut source, 5, published.len(), Duration::from_secs(8)).await;

    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|size| *size <= 5), "{sizes:?}");
    assert!(
        sizes.contains(&5),
        "with 12 messages waiting, a batch fills up to max: {sizes:?}"
    );
    let deliveries: Vec<Delivery> = batches.into_iter().flatten().collect();
    for delivery in &deliveries {
        let Delivered::Event(event) = &delivery.content else {
            panic!("{} is poison", delivery.origin);
        };
        assert_eq!(
            Some(delivery.origin.topic.as_str()),
            topic_for(&event.stream_id)
        );
    }
    let received = delivered_events(&deliveries);
    let by_id: HashMap<Uuid, &RecordedEvent> = received.iter().map(|e| (e.event_id, e)).collect();
    assert_eq!(
        by_id.len(),
        published.len(),
        "each event once: {received:#?}"
    );
    for event in &published {
        assert_eq!(
            by_id.get(&event.event_id).copied(),
            Some(&as_delivered(event)),
            "{} as published, with only its correlation id for metadata",
            event.event_id
        );
    }
    for stream_id in streams {
        let versions: Vec<u64> = received
            .iter()
            .filter(|event| event.stream_id == stream_id)
            .map(|event| event.version)
            .collect();
        assert_eq!(versions, [1, 2, 3], "{stream_id} in order");
    }
    drop(source);
}

pub async fn a_new_source_of_the_group_resumes_after_the_commit_and_gets_uncommitted_events_again()
{
    let broker = Broker::new();
    let published = events(&["show-1"], 6);
    broker.bus().publish(&published).await.unwrap();
    let group = unique_group();
    let versions = |batches: Vec<Vec<Delivery>>| -> Vec<u64> {
        delivered_events(&batches.concat())
            .iter()
            .map(|event| event.version)
            .collect()
    };

    let mut first = broker.source(&group);
    let mut applied = Vec::new();
    while applied.len() < 4 {
        let batch = receive(&mut first, 4 - applied.len(), 1, Duration::from_secs(8)).await;
        assert!(!batch.is_empty(), "the first source got {applied:?} only");
        applied.extend(versions(batch));
    }
    assert_eq!(applied, [1, 2, 3, 4]);
    first.commit().await.expect("the commit");
    drop(first);

    let mut second = broker.source(&group);
    let rest = versions(receive(&mut second, 10, 2, Duration::from_secs(8)).await);
    assert_eq!(rest, [5, 6], "resumes after the committed offset");
    let more = second
        .next_batch(10, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(more.is_empty(), "nothing else: {more:?}");
    // Not committed: the process "crashes" here.
    drop(second);

    let mut third = broker.source(&group);
    let again = versions(receive(&mut third, 10, 2, Duration::from_secs(8)).await);
    assert_eq!(again, [5, 6], "uncommitted events are delivered again");
    third.commit().await.expect("the commit");
    drop(third);
}

/// A message of the dead-letter topic as a plain consumer reads it.
struct Letter {
    key: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
    payload: Option<Vec<u8>>,
}

/// Reads the dead-letter topic from the beginning until `expected` letters arrived.
async fn read_dead_letters(bootstrap_servers: String, expected: usize) -> Vec<Letter> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap_servers)
            .set("group.id", unique_group())
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(DEAD_LETTER_TOPIC, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let started = Instant::now();
        let mut letters = Vec::new();
        while letters.len() < expected && started.elapsed() < Duration::from_secs(8) {
            let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = polled.expect("a message, not an error");
            letters.push(Letter {
                key: message.key().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|header| {
                                let value = header.value.expect("a header value");
                                (
                                    header.key.to_owned(),
                                    String::from_utf8(value.to_vec()).expect("UTF-8"),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                payload: message.payload().map(<[u8]>::to_vec),
            });
        }
        letters
    })
    .await
    .unwrap()
}

pub async fn a_message_that_is_not_an_event_is_poison_and_goes_to_the_dead_letter_topic_with_its_origin(
) {
    let broker = Broker::new();
    broker
        .produce_raw(
            "show-9",
            &[
                ("origin", b"legacy-import"),
                ("checksum", &[0xff, 0xfe, 0x00]),
            ],
            Some(b"\x00\x01 not json"),
        )
        .await;
    broker.produce_raw("show-9", &[], None).await;
    let mut source = broker.source(&unique_group());

    let deliveries = receive(&mut source, 10, 2, Duration::from_secs(8))
        .await
        .concat();

    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    let poison: Vec<(&Delivery, &PoisonMessage)> = deliveries
        .iter()
        .map(|delivery| match &delivery.content {
            Delivered::Poison(poison) => (delivery, poison),
            Delivered::Event(event) => panic!("{event:?} is not poison"),
        })
        .collect();
    let (raw_delivery, raw) = poison[0];
    assert_eq!(raw_delivery.origin.topic, SHOW_TOPIC);
    assert_eq!(raw.key.as_deref(), Some(b"show-9".as_slice()));
    assert_eq!(
        raw.headers,
        [("origin".to_owned(), "legacy-import".to_owned())],
        "the header that is not UTF-8 is dropped"
    );
    assert_eq!(raw.payload, b"\x00\x01 not json");
    assert_eq!(raw.error, "missing header `stream-id`");
    let (tombstone_delivery, tombstone) = poison[1];
    assert_eq!(
        tombstone_delivery.origin.offset,
        raw_delivery.origin.offset + 1
    );
    assert_eq!(tombstone.error, "the message has no payload");

    let letter = DeadLetterMessage {
        origin: Some(raw_delivery.origin.clone()),
        key: raw.key.clone(),
        headers: raw.headers.clone(),
        payload: raw.payload.clone(),
        reason: raw.error.clone(),
    };
    source.dead_letter(&[letter]).await.expect("acknowledged");

    let letters = read_dead_letters(broker.bootstrap_servers(), 1).await;
    assert_eq!(letters.len(), 1);
    let dead = &letters[0];
    assert_eq!(dead.key.as_deref(), Some(b"show-9".as_slice()));
    assert_eq!(
        dead.payload.as_deref(),
        Some(b"\x00\x01 not json".as_slice())
    );
    let headers: BTreeMap<&str, &str> = dead
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let partition = raw_delivery.origin.partition.to_string();
    let offset = raw_delivery.origin.offset.to_string();
    assert_eq!(
        headers,
        BTreeMap::from([
            ("origin", "legacy-import"),
            (dead_letter_headers::REASON, "missing header `stream-id`"),
            (dead_letter_headers::SOURCE_TOPIC, SHOW_TOPIC),
            (dead_letter_headers::SOURCE_PARTITION, partition.as_str()),
            (dead_letter_headers::SOURCE_OFFSET, offset.as_str()),
        ])
    );
    drop(source);
}

pub async fn lag_counts_the_messages_after_the_committed_offset_of_an_assigned_partition() {
    let broker = Broker::new();
    let published = events(&["show-1"], 5);
    broker.bus().publish(&published).await.unwrap();
    let mut source = broker.source(&unique_group());

    let mut applied = 0;
    let mut partition = None;
    while applied < 2 {
        let batch = receive(&mut source, 2 - applied, 1, Duration::from_secs(8))
            .await
            .concat();
        assert!(!batch.is_empty(), "only {applied} events arrived");
        partition = batch.first().map(|d| d.origin.partition);
        applied += batch.len();
    }
    source.commit().await.expect("the commit");

    // Statistics are served while the source polls: keep it polling.
    let started = Instant::now();
    let expected = (SHOW_TOPIC.to_owned(), partition.expect("a partition"), 3);
    let mut lag = Vec::new();
    while started.elapsed() < Duration::from_secs(8) {
        source
            .next_batch(10, Duration::from_millis(100))
            .await
            .unwrap();
        lag = source.lag();
        if lag
            .iter()
            .any(|l| (l.topic.clone(), l.partition, l.lag) == expected)
        {
            break;
        }
    }
    let show_lag: Vec<(String, i32, i64)> = lag
        .iter()
        .filter(|l| l.topic == SHOW_TOPIC)
        .map(|l| (l.topic.clone(), l.partition, l.lag))
        .collect();
    assert_eq!(
        show_lag,
        [expected],
        "3 of 5 messages after the committed offset; no lag known for partitions never committed: {lag:?}"
    );
    let assigned: HashSet<&str> = lag.iter().map(|l| l.topic.as_str()).collect();
    assert!(
        assigned.is_subset(&HashSet::from(TOPICS)),
        "only the subscribed topics: {lag:?}"
    );
    drop(source);
}

pub async fn with_nothing_published_a_batch_is_empty_after_the_wait() {
    let broker = Broker::new();
    let mut source = broker.source(&unique_group());
    let wait = Duration::from_millis(500);

    let started = Instant::now();
    let batch = source.next_batch(10, wait).await.expect("a batch");
    let elapsed = started.elapsed();

    assert!(batch.is_empty(), "{batch:?}");
    assert!(elapsed >= wait, "returned before the wait: {elapsed:?}");
    assert!(
        elapsed < wait + Duration::from_secs(2),
        "blocked past the wait: {elapsed:?}"
    );
    source.commit().await.expect("nothing to commit is fine");
    drop(source);
}

/// The offsets `group` committed for the partitions of `topic`, as a plain consumer
/// asks the coordinator for them.
async fn committed_offsets(
    bootstrap_servers: String,
    group: String,
    topic: &'static str,
) -> Vec<(i32, Offset)> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap_servers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let mut partitions = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            partitions.add_partition(topic, partition);
        }
        let committed = consumer
            .committed_offsets(partitions, Duration::from_secs(5))
            .expect("the committed offsets");
        let offsets = committed
            .elements()
            .iter()
            .map(|element| (element.partition(), element.offset()))
            .collect();
        // Dropped before the consumer: the other way round, the consumer's drop hangs.
        drop(committed);
        drop(consumer);
        offsets
    })
    .await
    .unwrap()
}

pub async fn offsets_of_partitions_revoked_by_a_rebalance_are_not_committed() {
    let broker = Broker::new();
    let streams = ["show-1", "show-2", "show-3", "show-4", "show-5", "show-6"];
    let published = events(&streams, 1);
    broker.bus().publish(&published).await.unwrap();
    let group = unique_group();

    let mut first = broker.source(&group);
    let delivered = receive(&mut first, 10, published.len(), Duration::from_secs(8))
        .await
        .concat();
    assert_eq!(delivered.len(), published.len());
    let partitions: HashSet<i32> = delivered.iter().map(|d| d.origin.partition).collect();
    assert_eq!(
        partitions.len(),
        2,
        "the streams spread over both partitions of the topic"
    );

    // A second member joins: the first must keep polling to take part in the
    // rebalance, which revokes its partitions before they are shared out.
    let mut second = broker.source(&group);
    let joining = tokio::spawn(async move {
        let batches = receive(&mut second, 10, 1, Duration::from_secs(8)).await;
        (second, batches)
    });
    let delivered_in = |partition: i32| {
        delivered
            .iter()
            .filter(|d| d.origin.partition == partition)
            .count()
    };
    // After the rebalance the first member gets one partition back, from its start.
    // On a loaded machine the group may rebalance more than once (a member slow to
    // poll is taken for gone), and each time the partition is delivered again from its
    // start: what counts is the distinct records of the partition it holds last.
    let mut again: Vec<Delivery> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let done = joining.is_finished()
            && again.last().is_some_and(|last| {
                let partition = last.origin.partition;
                let offsets: HashSet<i64> = again
                    .iter()
                    .filter(|d| d.origin.partition == partition)
                    .map(|d| d.origin.offset)
                    .collect();
                offsets.len() == delivered_in(partition)
            });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rebalance did not complete: {again:?}"
        );
        again.extend(
            first
                .next_batch(10, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    let (second, second_batches) = joining.await.unwrap();
    let first_partition = again[again.len() - 1].origin.partition;
    let second_partitions: HashSet<i32> = second_batches
        .concat()
        .iter()
        .map(|d| d.origin.partition)
        .collect();
    assert_eq!(
        second_partitions,
        HashSet::from([1 - first_partition]),
        "the second member got the other partition, from its start"
    );

    first.commit().await.expect("the commit");

    let mut committed = committed_offsets(broker.bootstrap_servers(), group, SHOW_TOPIC).await;
    committed.sort_by_key(|(partition, _)| *partition);
    let expected_of = |partition: i32| {
        if partition == first_partition {
            Offset::Offset(i64::try_from(delivered_in(partition)).unwrap())
        } else {
            Offset::Invalid
        }
    };
    assert_eq!(
        committed,
        [(0, expected_of(0)), (1, expected_of(1))],
        "only what the first member got after the rebalance is committed, not what \
         it got from the partition it lost"
    );
    drop(first);
    drop(second);
}

/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    use ticketing_store::testing::async_trial;
    ticketing_store::trials![
        async_trial =>
            batches_hold_at_most_max_events_decoded_as_published_in_stream_order,
            a_new_source_of_the_group_resumes_after_the_commit_and_gets_uncommitted_events_again,
            a_message_that_is_not_an_event_is_poison_and_goes_to_the_dead_letter_topic_with_its_origin,
            lag_counts_the_messages_after_the_committed_offset_of_an_assigned_partition,
            with_nothing_published_a_batch_is_empty_after_the_wait,
            offsets_of_partitions_revoked_by_a_rebalance_are_not_committed,
    ]
}
