//! The store -> bus guarantee through the command layer: a command publishes its
//! events right after its commit; with the bus down it still succeeds and the relay
//! publishes the backlog once the bus is back; events a command could not publish
//! (its process died after the commit) are published by the relay, and nothing the
//! relay marked is published again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ticketing_app::{PaymentResult, Settings};
use ticketing_bus::message::{headers, INVENTORY_TOPIC, RESERVATION_TOPIC, TOPICS};
use ticketing_bus::{relay_once, topic_for, InProcessBus, KafkaBus, KafkaConfig};
use ticketing_domain::*;
use ticketing_store::{EventStore, RecordedEvent};
use uuid::Uuid;

use crate::support::*;

// The scenarios on both backends are in `on_both_backends!`; these run on SQLite
// against librdkafka's mock broker or a bus of their own.
/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    ticketing_store::trials![
        ticketing_store::testing::async_trial =>
            commands_publish_to_kafka_and_the_relay_catches_up_after_a_broker_outage,
            with_the_broker_down_a_command_waits_no_longer_than_its_publish_budget,
            a_publish_slower_than_the_budget_finishes_behind_the_command_and_is_marked,
    ]
}

/// Every committed event, in the global order.
async fn committed(store: &dyn EventStore, expected: usize) -> Vec<RecordedEvent> {
    ticketing_store::testing::read_all_settled(store, Default::default(), 10_000, expected).await
}

async fn outbox(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store.unpublished(None, 10_000).await.unwrap()
}

fn published_ids(bus: &InProcessBus) -> Vec<Uuid> {
    bus.messages()
        .iter()
        .map(|m| m.header(headers::EVENT_ID).unwrap().parse().unwrap())
        .collect()
}

fn ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

/// A show on sale, a hold and its payment: the events of every stream type.
async fn purchase(h: &Harness) -> (ShowId, ReservationId) {
    let show_id = show_on_sale(h, 100).await;
    let held = hold(h, show_id, 1, 2).await;
    let paid = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(matches!(paid, PaymentResult::Confirmed { .. }), "{paid:?}");
    (show_id, held.reservation_id)
}

pub async fn a_command_publishes_its_events_after_commit_with_topic_key_and_headers(
    store: Arc<dyn EventStore>,
) {
    let bus = Arc::new(InProcessBus::default());
    let h = harness_with_bus(store, bus.clone());
    let show_id = show_on_sale(&h, 100).await;
    let ctx = customer_ctx(1);
    let held = h
        .app
        .hold_seats(&ctx, hold_request(show_id, 1, 2))
        .await
        .unwrap();

    // A show on sale (3 events) and a hold (2).
    let events = committed(h.store.as_ref(), 5).await;
    assert_eq!(published_ids(&bus), ids(&events), "every event, in order");
    assert!(
        outbox(h.store.as_ref()).await.is_empty(),
        "and marked published"
    );

    let messages = bus.messages();
    let seats_held = messages
        .iter()
        .find(|m| m.header(headers::EVENT_TYPE) == Some("SeatsHeld"))
        .expect("SeatsHeld was published");
    let section = inventory_stream(show_id, &floor());
    assert_eq!(seats_held.topic, INVENTORY_TOPIC);
    assert_eq!(seats_held.key, section);
    assert_eq!(
        seats_held.header(headers::STREAM_ID),
        Some(section.as_str())
    );
    let correlation = ctx.correlation_id.to_string();
    assert_eq!(
        seats_held.header(headers::CORRELATION_ID),
        Some(correlation.as_str())
    );
    let stored = events.iter().find(|e| e.event_type == "SeatsHeld").unwrap();
    assert_eq!(
        seats_held.header(headers::STREAM_VERSION),
        Some(stored.version.to_string().as_str())
    );
    assert_eq!(
        seats_held.header(headers::SCHEMA_VERSION),
        Some(stored.schema_version.to_string().as_str())
    );
    let payload: serde_json::Value = serde_json::from_slice(&seats_held.payload).unwrap();
    assert_eq!(payload, stored.data);

    let placed = messages
        .iter()
        .find(|m| m.header(headers::EVENT_TYPE) == Some("ReservationPlaced"))
        .expect("ReservationPlaced was published");
    assert_eq!(placed.topic, RESERVATION_TOPIC);
    assert_eq!(placed.key, reservation_stream(held.reservation_id));
}

/// Holds that commit at the same time, each on its own, are each published once, and
/// every one of their events is marked published, however their marks were grouped.
pub async fn holds_committed_at_once_are_each_published_once_and_all_marked(
    store: Arc<dyn EventStore>,
) {
    let bus = Arc::new(InProcessBus::default());
    let settings = Settings {
        // Every buyer waits for its publication, and each hold runs on its own.
        publish_budget: Duration::from_secs(60),
        hold_batch_max: 1,
        ..patient()
    };
    let h = harness_with_bus_and(store, bus.clone(), settings);
    let show_id = show_on_sale(&h, 100).await;
    let holds = hold_in_background(&h, show_id, 0..20);
    for hold in holds {
        hold.await.unwrap().expect("a granted hold");
    }

    let events = committed(h.store.as_ref(), 3 + 2 * 20).await;
    let mut published = published_ids(&bus);
    published.sort();
    let mut stored = ids(&events);
    stored.sort();
    assert_eq!(published, stored, "every event published once");
    let left = outbox(h.store.as_ref()).await;
    assert!(left.is_empty(), "all marked published: {left:?}");
}

pub async fn with_the_bus_down_commands_succeed_and_the_relay_publishes_the_backlog(
    store: Arc<dyn EventStore>,
) {
    let bus = Arc::new(InProcessBus::default());
    let h = harness_with_bus(store, bus.clone());
    bus.pause();

    purchase(&h).await;

    // The outbox is read without the global order's horizon (other tests' open
    // transactions may hold `read_all` back for a moment): wait for both to agree.
    let waiting = outbox(h.store.as_ref()).await;
    let events = committed(h.store.as_ref(), waiting.len()).await;
    assert!(bus.messages().is_empty());
    assert_eq!(waiting, events, "all of it waits");

    bus.resume();
    let published = relay_once(h.store.as_ref(), bus.as_ref(), None, 1_000)
        .await
        .unwrap();
    assert_eq!(published, events.len());
    assert_eq!(published_ids(&bus), ids(&events));
    assert!(outbox(h.store.as_ref()).await.is_empty());
    assert_eq!(
        relay_once(h.store.as_ref(), bus.as_ref(), None, 1_000)
            .await
            .unwrap(),
        0,
        "nothing is published twice once marked"
    );
}

pub async fn relay_outbox_publishes_the_backlog_once_it_is_older_than_the_grace(
    store: Arc<dyn EventStore>,
) {
    let without_bus = harness(store.clone());
    show_on_sale(&without_bus, 10).await;
    assert_eq!(
        without_bus
            .app
            .relay_outbox(Duration::ZERO, 1_000)
            .await
            .unwrap(),
        0,
        "nothing to publish to"
    );

    let bus = Arc::new(InProcessBus::default());
    let h = harness_with_bus(store, bus.clone());
    bus.pause();
    purchase(&h).await;
    bus.resume();
    let waiting = outbox(h.store.as_ref()).await;
    let events = committed(h.store.as_ref(), waiting.len()).await;
    assert_eq!(waiting, events);

    // Commands that may still be publishing their own events are left alone.
    assert_eq!(
        h.app
            .relay_outbox(Duration::from_secs(3_600), 1_000)
            .await
            .unwrap(),
        0
    );
    let published = h.app.relay_outbox(Duration::ZERO, 1_000).await.unwrap();
    assert_eq!(published, events.len());
    assert_eq!(published_ids(&bus), ids(&events));
    assert!(outbox(h.store.as_ref()).await.is_empty());
}

pub async fn events_a_command_died_before_publishing_are_published_by_the_relay_once(
    store: Arc<dyn EventStore>,
) {
    // The first command's process dies between its commit and its publish: here, a
    // command layer without a bus commits and publishes nothing.
    let died = harness(store.clone());
    let show_id = show_on_sale(&died, 100).await;
    let left_behind = outbox(store.as_ref()).await;
    assert!(!left_behind.is_empty());

    // The next command publishes its own events, and only those.
    let bus = Arc::new(InProcessBus::default());
    let h = harness_with_bus(store, bus.clone());
    hold(&h, show_id, 1, 2).await;
    let after_hold = published_ids(&bus);
    assert_eq!(after_hold.len(), 2, "SeatsHeld and ReservationPlaced");
    assert_eq!(ids(&outbox(h.store.as_ref()).await), ids(&left_behind));

    // The relay publishes what the dead command left, once.
    assert_eq!(
        relay_once(h.store.as_ref(), bus.as_ref(), None, 1_000)
            .await
            .unwrap(),
        left_behind.len()
    );
    assert_eq!(
        relay_once(h.store.as_ref(), bus.as_ref(), None, 1_000)
            .await
            .unwrap(),
        0
    );
    let events = committed(h.store.as_ref(), left_behind.len() + 2).await;
    let published = published_ids(&bus);
    assert_eq!(
        published.len(),
        events.len(),
        "each event exactly once: {published:?}"
    );
    assert_eq!(
        published.iter().collect::<HashSet<_>>(),
        events.iter().map(|e| &e.event_id).collect::<HashSet<_>>()
    );
}

/// A message as a consumer of the mock broker received it: (topic, key, headers).
type Consumed = (String, String, HashMap<String, String>);

/// Reads every topic from the beginning until `expected` distinct events arrived (or
/// 20 s).
async fn consume(bootstrap_servers: String, expected: usize) -> Vec<Consumed> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap_servers)
            .set("group.id", format!("test-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for topic in TOPICS {
            assignment
                .add_partition_offset(topic, 0, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Until `expected` distinct events: the bus is at-least-once, and a command that
        // gave up waiting within its publish budget may see its events delivered after
        // the relay published them again.
        let mut received = Vec::new();
        let mut distinct = HashSet::new();
        while distinct.len() < expected && Instant::now() < deadline {
            let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = polled.unwrap();
            let headers = message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            let value = h.value.unwrap_or_default();
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(value).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let message_headers: HashMap<String, String> = headers;
            distinct.insert(message_headers.get(headers::EVENT_ID).cloned());
            received.push((message.topic().to_owned(), key, message_headers));
        }
        received
    })
    .await
    .unwrap()
}

/// The whole guarantee against librdkafka's mock broker: commands publish to Kafka;
/// with the broker down they still succeed; once it is back the relay publishes every
/// event that is missing.
async fn commands_publish_to_kafka_and_the_relay_catches_up_after_a_broker_outage() {
    ticketing_store::testing::with_sqlite(|store| async move {
        let cluster = MockCluster::new(1).unwrap();
        for topic in TOPICS {
            cluster.create_topic(topic, 1, 1).unwrap();
        }
        let mut config = KafkaConfig::new(cluster.bootstrap_servers());
        config.message_timeout = Duration::from_secs(1);
        let bus = Arc::new(KafkaBus::new(config).unwrap());
        let settings = ticketing_app::Settings {
            // Longer than the bus's message timeout: a command waits for its own
            // publication, however long a loaded machine takes to connect, and no
            // longer than the bus fails in.
            publish_budget: Duration::from_secs(10),
            ..Default::default()
        };
        let h = harness_with_bus_and(Arc::new(store), bus.clone(), settings);

        // With the broker up, a command's events are on Kafka when it returns.
        let show_id = show_on_sale(&h, 100).await;
        // A show created (2 events) and its sales opened (1).
        let published = committed(h.store.as_ref(), 3).await;
        assert!(outbox(h.store.as_ref()).await.is_empty());
        let consumed = consume(cluster.bootstrap_servers(), published.len()).await;
        assert_eq!(consumed.len(), published.len());
        for event in &published {
            // Topics are consumed side by side: find each event by its id.
            let id = event.event_id.to_string();
            let (topic, key, message_headers) = consumed
                .iter()
                .find(|(_, _, hs)| hs.get(headers::EVENT_ID) == Some(&id))
                .unwrap_or_else(|| panic!("{id} was consumed"));
            assert_eq!(topic, topic_for(&event.stream_id).unwrap());
            assert_eq!(key, &event.stream_id);
            assert_eq!(
                message_headers.get(headers::EVENT_ID),
                Some(&event.event_id.to_string())
            );
            assert_eq!(
                message_headers.get(headers::EVENT_TYPE),
                Some(&event.event_type)
            );
        }

        // With the broker down, commands still succeed; their events wait.
        cluster.broker_down(1).unwrap();
        let held = hold(&h, show_id, 1, 2).await;
        let paid = h
            .app
            .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
            .await
            .unwrap();
        assert!(matches!(paid, PaymentResult::Confirmed { .. }), "{paid:?}");
        let backlog = outbox(h.store.as_ref()).await;
        assert!(
            backlog.len() >= 6,
            "hold, payment request, capture: {backlog:?}"
        );

        // Once it is back, the relay publishes every missing event.
        cluster.broker_up(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match relay_once(h.store.as_ref(), bus.as_ref(), None, 1_000).await {
                Ok(relayed) => {
                    assert_eq!(relayed, backlog.len());
                    break;
                }
                Err(error) => assert!(Instant::now() < deadline, "never caught up: {error:?}"),
            }
        }
        assert!(outbox(h.store.as_ref()).await.is_empty());

        let stored = committed(h.store.as_ref(), published.len() + backlog.len()).await;
        let consumed = consume(cluster.bootstrap_servers(), stored.len()).await;
        let consumed_ids: HashSet<String> = consumed
            .iter()
            .map(|(_, _, hs)| hs[headers::EVENT_ID].clone())
            .collect();
        let stored_ids: HashSet<String> = stored.iter().map(|e| e.event_id.to_string()).collect();
        assert_eq!(
            consumed_ids, stored_ids,
            "every committed event is on Kafka"
        );
        drop(h);
        drop(bus);
        drop(cluster);
    })
    .await;
}

/// A broker that is down costs a command its publish budget, not the bus's message
/// timeout: the hold answers, its events wait in the outbox for the relay, and the
/// breaker spares the next command even the budget.
async fn with_the_broker_down_a_command_waits_no_longer_than_its_publish_budget() {
    ticketing_store::testing::with_sqlite(|store| async move {
        let cluster = MockCluster::new(1).unwrap();
        for topic in TOPICS {
            cluster.create_topic(topic, 1, 1).unwrap();
        }
        let mut config = KafkaConfig::new(cluster.bootstrap_servers());
        // Far longer than the budget and than the bound asserted below.
        config.message_timeout = Duration::from_secs(60);
        let bus = Arc::new(KafkaBus::new(config).unwrap());
        let settings = ticketing_app::Settings {
            publish_budget: Duration::from_millis(200),
            ..Default::default()
        };
        let h = harness_with_bus_and(Arc::new(store), bus.clone(), settings);
        // The show is put on sale by a process that waits for its publications, so
        // that they are done whatever the machine's load.
        let patient_publisher = ticketing_app::Settings {
            publish_budget: Duration::from_secs(60),
            ..Default::default()
        };
        let setup = harness_with_bus_and(h.store.clone(), bus.clone(), patient_publisher);
        let show_id = show_on_sale(&setup, 100).await;
        assert!(
            outbox(h.store.as_ref()).await.is_empty(),
            "published while up"
        );

        cluster.broker_down(1).unwrap();
        let started = Instant::now();
        let held = hold(&h, show_id, 1, 2).await;
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(20),
            "the hold waited {waited:?}, as if for the bus's 60 s timeout"
        );
        let backlog = outbox(h.store.as_ref()).await;
        assert!(
            backlog
                .iter()
                .any(|e| e.stream_id == reservation_stream(held.reservation_id)),
            "the hold's events wait for the relay: {backlog:?}"
        );
        drop(setup);
        drop(h);
        drop(bus);
        drop(cluster);
    })
    .await;
}

/// A bus that acknowledges only once it is let go: a broker slower than the budget.
struct SlowBus {
    inner: InProcessBus,
    go: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl ticketing_bus::EventBus for SlowBus {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), ticketing_bus::BusError> {
        let _permit = self.go.acquire().await.expect("the semaphore stays open");
        self.inner.publish(events).await
    }
}

/// Past its budget a command answers, and its publish goes on behind it: once the bus
/// acknowledges, the events are published and marked, and the relay has nothing to do.
async fn a_publish_slower_than_the_budget_finishes_behind_the_command_and_is_marked() {
    ticketing_store::testing::with_sqlite(|store| async move {
        let bus = Arc::new(SlowBus {
            inner: InProcessBus::default(),
            go: tokio::sync::Semaphore::new(0),
        });
        let settings = ticketing_app::Settings {
            publish_budget: Duration::from_millis(50),
            ..Default::default()
        };
        let h = harness_with_bus_and(Arc::new(store), bus.clone(), settings);
        // The bus acknowledges nothing yet: every command answers after its budget.
        let show_id = show_on_sale(&h, 10).await;
        let held = hold(&h, show_id, 1, 2).await;
        assert!(published_ids(&bus.inner).is_empty());
        let waiting = outbox(h.store.as_ref()).await;
        assert!(
            waiting
                .iter()
                .any(|e| e.stream_id == reservation_stream(held.reservation_id)),
            "{waiting:?}"
        );

        // Let every publish through: all of them finish and mark their events.
        bus.go.add_permits(1_000);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = outbox(h.store.as_ref()).await;
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "never marked: {left:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stored = committed(h.store.as_ref(), waiting.len()).await;
        let published: HashSet<Uuid> = published_ids(&bus.inner).into_iter().collect();
        assert_eq!(published, stored.iter().map(|e| e.event_id).collect());
    })
    .await;
}
