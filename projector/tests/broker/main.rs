//! The bus path against a Kafka-protocol broker running as its own process (tansu):
//! commands publish, the projector (the `projector` binary, or its live loop in
//! process) consumes, the read models answer. PostgreSQL only: the deployed setup.
//!
//! Needs `tansu` on the `PATH` (or `TANSU_BIN`) and PostgreSQL (`TEST_DATABASE_URL`).
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that without either of
//! them the tests are reported as skipped (ignored) by name when `CI` is not set
//! ([`broker_trial`]); with `CI` set they run, and fail. A new test is listed in
//! `with_broker!`.

// The projection suite's support (the day of purchases, dumps, rebuilds); not every
// helper of it is used here.
#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../projection/support.rs"]
mod support;
mod tansu;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ticketing_app::payments::SimulatedGateway;
use ticketing_app::{Settings, Ticketing};
use ticketing_bus::{EventBus, KafkaBus, KafkaConfig, KafkaSource, KafkaSourceConfig};
use ticketing_projector::{run_live, LiveReport, LiveSettings, ProjectorMetrics};
use ticketing_store::postgres::PostgresStore;
use ticketing_store::testing::{postgres_reachable, run_trials, trial_needing, Trial};
use ticketing_store::{EventMetadata, ExpectedVersion, NewEvent, RecordedEvent, StreamAppend};
use uuid::Uuid;

use support::{busy_day, Env};
use tansu::Tansu;

fn main() {
    run_trials(broker::trials());
}

/// A trial for a test that needs the broker program ([`tansu::installed`]) and
/// PostgreSQL ([`postgres_reachable`]): skipped by name when either is missing and
/// `CI` is not set ([`trial_needing`]).
fn broker_trial<F, Fut>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    trial_needing(tansu::installed() && postgres_reachable(), name, test)
}

/// Runs `test` with a fresh PostgreSQL database and its own broker: a test function
/// of the same name in this module, and the module's `trials()`, a [`broker_trial`]
/// for each.
macro_rules! with_broker {
    ($($name:ident),* $(,)?) => {
        $(
            pub async fn $name() {
                let broker = Tansu::start().await;
                ticketing_store::testing::with_postgres(stringify!($name), |store| async move {
                    super::$name(Setup::new(store, broker)).await
                })
                .await;
            }
        )*

        pub fn trials() -> Vec<Trial> {
            ticketing_store::trials![super::broker_trial => $($name),*]
        }
    };
}

mod broker {
    use super::*;
    with_broker!(
        published_purchases_are_projected_by_the_projector_binary,
        a_projector_killed_mid_batch_resumes_to_the_clean_rebuild,
        duplicated_and_reordered_deliveries_give_the_clean_rebuild,
        poison_and_undecodable_messages_go_to_the_dead_letter_topic,
        with_the_broker_down_commands_succeed_and_nothing_is_missing_after_it_returns,
        events_of_a_function_that_died_after_commit_reach_the_read_models_through_the_relay,
    );
}

struct Setup {
    env: Env,
    broker: Tansu,
    database_url: String,
    bus: Arc<KafkaBus>,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(store: PostgresStore, broker: Tansu) -> Self {
        // The in-process projector's logs, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
        let database = store
            .pool()
            .connect_options()
            .get_database()
            .expect("the test database has a name")
            .to_owned();
        let base = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| ticketing_store::testing::DEFAULT_TEST_DATABASE_URL.to_owned());
        let (server, _) = base.rsplit_once('/').expect("a URL with a database");
        let database_url = format!("{server}/{database}");
        let mut kafka = KafkaConfig::new(broker.brokers());
        // A command whose broker is down waits this long before leaving its events to
        // the relay.
        kafka.message_timeout = Duration::from_millis(1_500);
        let bus = Arc::new(KafkaBus::new(kafka).expect("a producer"));
        let mut env = Env::postgres(store);
        env.app = Ticketing::new(
            env.store.clone(),
            Arc::new(SimulatedGateway::new()),
            Arc::new(env.clock.clone()),
            Settings::default(),
        )
        .with_ticket_keys(support::ticket_keys())
        .with_bus(bus.clone());
        Self {
            env,
            broker,
            database_url,
            bus,
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn source(&self, group: &str) -> KafkaSource {
        let mut config = KafkaSourceConfig::new(KafkaConfig::new(self.broker.brokers()));
        config.group_id = group.to_owned();
        config.stats_interval = Duration::from_millis(500);
        KafkaSource::new(config).expect("a consumer")
    }

    /// The live loop in this process, on its own task, until the returned sender fires.
    fn project_in_process(
        &self,
        group: &str,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<LiveReport>,
    ) {
        let projector = self.env.projector.clone();
        let mut source = self.source(group);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = LiveSettings {
            batch_size: 50,
            batch_wait: Duration::from_millis(100),
            ..LiveSettings::default()
        };
        let task = tokio::spawn(async move {
            run_live(
                &projector,
                &mut source,
                &settings,
                &ProjectorMetrics::new(),
                async move {
                    let _ = stopped.await;
                },
            )
            .await
        });
        (stop, task)
    }

    /// Waits until the read models have applied every stream to its current version.
    async fn wait_until_projected(&self, timeout: Duration) {
        let expected: BTreeMap<String, u64> = self
            .env
            .all_events()
            .await
            .into_iter()
            .map(|event| (event.stream_id, event.version))
            .collect();
        let streams: Vec<String> = expected.keys().cloned().collect();
        let deadline = Instant::now() + timeout;
        loop {
            let applied = self
                .env
                .read_models
                .applied_versions(&streams)
                .await
                .unwrap();
            if applied == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not projected within {timeout:?}: {} of {} streams up to date",
                expected
                    .iter()
                    .filter(|(s, v)| applied.get(*s) == Some(v))
                    .count(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until consumer group `group` has committed every message on the event
    /// topics, and they hold at least `published` messages: the in-process projector
    /// has read them all and applied them (it commits a batch only once written).
    async fn wait_until_committed(&self, group: &str, published: usize, timeout: Duration) {
        let config = KafkaConfig::new(self.broker.brokers());
        let deadline = Instant::now() + timeout;
        loop {
            let seen = match ticketing_bus::kafka::bus_status(
                &config,
                group,
                Duration::from_secs(5),
            )
            .await
            {
                Ok(status) => {
                    let messages: i64 = status
                        .topics
                        .iter()
                        .filter(|t| ticketing_bus::message::TOPICS.contains(&t.topic.as_str()))
                        .map(|t| t.messages)
                        .sum();
                    if status.missing_topics().is_empty()
                        && messages >= published as i64
                        && status.lag == 0
                    {
                        return;
                    }
                    format!(
                        "{messages} messages on the event topics, {} of them not committed",
                        status.lag
                    )
                }
                Err(error) => format!("the bus status failed: {error}"),
            };
            assert!(
                Instant::now() < deadline,
                "group `{group}` did not commit all {published} published messages \
                 within {timeout:?}: {seen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The read models as they are, then as a clean rebuild makes them.
    async fn live_and_rebuilt(
        &self,
    ) -> (
        ticketing_read_models::ReadModelDump,
        ticketing_read_models::ReadModelDump,
    ) {
        let live = self.env.read_models.dump().await.unwrap();
        let rebuilt = self.env.rebuilt().await;
        (live, rebuilt)
    }

    fn spawn_projector(&self, name: &str, extra_env: &[(&str, &str)]) -> ProjectorProcess {
        ProjectorProcess::spawn(
            &self.database_url,
            &self.broker.brokers(),
            self.dir.path(),
            name,
            extra_env,
        )
    }
}

/// How many partitions of the event topics hold messages: those the projector reports
/// a lag for (an empty partition has no lag to report).
fn non_empty_partitions(brokers: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "watermarks")
        .create()
        .expect("a consumer");
    let mut non_empty = 0;
    for topic in ticketing_bus::message::TOPICS {
        for partition in 0..tansu::PARTITIONS {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .expect("the partition's watermarks");
            if high > low {
                non_empty += 1;
            }
        }
    }
    non_empty
}

/// The `projector` binary as a child process.
struct ProjectorProcess {
    child: Child,
    log: PathBuf,
}

impl ProjectorProcess {
    fn spawn(
        database_url: &str,
        brokers: &str,
        dir: &Path,
        name: &str,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("the projector's log file");
        let child = Command::new(env!("CARGO_BIN_EXE_projector"))
            .arg("run")
            .env("DATABASE_URL", database_url)
            .env("KAFKA_BROKERS", brokers)
            .env("PROJECTOR_GROUP_ID", "projector-under-test")
            .env("PROJECTOR_METRICS_ADDR", "127.0.0.1:0")
            .env("KAFKA_STATS_INTERVAL_MS", "500")
            .env("RUST_LOG", "info")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the projector binary starts");
        Self { child, log }
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("the projector's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the projector did not stop within 30 s of SIGTERM; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the process reports a lag of 0 on each of the `partitions` that
    /// hold messages, by its consumer lag metric: it has joined the group, been
    /// assigned them, and read what it would apply again.
    async fn wait_until_caught_up(&self, partitions: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        loop {
            if let Some(exposition) = self.metrics().await {
                let lags: Vec<f64> = exposition
                    .lines()
                    .filter(|line| line.starts_with("projector_consumer_lag{"))
                    .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
                    .collect();
                if lags.len() == partitions && lags.iter().all(|&lag| lag == 0.0) {
                    return;
                }
                last = Some(exposition);
            }
            assert!(
                Instant::now() < deadline,
                "not caught up within 60 s; its metrics:\n{}\nits log:\n{}",
                last.unwrap_or_default(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its `/metrics`, once its log names the endpoint's address.
    async fn metrics(&self) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.log().lines().find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            (line["message"] == "metrics endpoint listening")
                .then(|| line["addr"].as_str().map(str::to_owned))
                .flatten()
        })?;
        let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().expect("the projector is reaped");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ProjectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as read back from the broker.
struct OnBus {
    key: Option<String>,
    headers: BTreeMap<String, String>,
    payload: Vec<u8>,
}

/// Every message of `topics` on the broker, read from the beginning until `expected`
/// distinct events arrived (or 20 s passed).
fn consume_all(brokers: &str, topics: &[&str], expected: usize) -> Vec<OnBus> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..3 {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&assignment).unwrap();
    // Until `expected` distinct events (by their event id, when they carry one): the
    // bus is at-least-once, and a command that stopped waiting within its publish
    // budget may see its events delivered beside the relay's copies.
    let mut messages = Vec::new();
    let mut distinct = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while distinct.len() < expected && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|h| {
                        Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let headers: BTreeMap<String, String> = headers;
        distinct.insert(
            headers
                .get("event-id")
                .cloned()
                .unwrap_or_else(|| format!("#{}", messages.len())),
        );
        messages.push(OnBus {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            payload: message.payload().unwrap_or_default().to_vec(),
        });
    }
    messages
}

async fn published_purchases_are_projected_by_the_projector_binary(setup: Setup) {
    let day = busy_day(&setup.env).await;
    assert!(
        setup
            .env
            .store
            .unpublished(None, 10)
            .await
            .unwrap()
            .is_empty(),
        "the commands published their events themselves"
    );

    let mut projector = setup.spawn_projector("projector", &[]);
    setup.wait_until_projected(Duration::from_secs(60)).await;

    // The query side: Floor sold 2 + 3; Balcony's sales were all refunded and one
    // hold is still live (the other expired an hour ago, unrecorded).
    let now = ticketing_app::Clock::now(&setup.env.clock);
    let projected = setup
        .env
        .read_models
        .section_availability(day.show_id, now)
        .await
        .unwrap();
    let seats: Vec<_> = projected
        .iter()
        .map(|s| (s.section.as_str(), s.capacity, s.held, s.sold, s.available))
        .collect();
    assert_eq!(seats, [("Balcony", 20, 1, 0, 19), ("Floor", 10, 0, 5, 5)]);
    let sales = setup
        .env
        .read_models
        .show_sales(day.show_id)
        .await
        .unwrap()
        .expect("the show's sales are projected");
    // Floor: 2 + 3 seats at 45.00; Balcony: 1 (refunded) + 2 (refunded) at 30.00.
    assert_eq!(sales.total.tickets_sold, 5);
    assert_eq!(
        sales.total.gross_revenue.amount_minor,
        5 * 4_500 + 3 * 3_000
    );
    assert_eq!(sales.total.refunds_amount.amount_minor, 3 * 3_000);
    let history = setup
        .env
        .read_models
        .customer_reservations(&day.customers[0], 10, None)
        .await
        .unwrap();
    assert_eq!(history.reservations.len(), 2, "customer-1 bought twice");

    // SIGTERM: the batch in hand is finished, offsets committed, exit 0.
    let status = projector.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        projector.log()
    );
    assert!(projector.log().contains("projector stopped"));

    // The group resumes after its committed offsets: a restarted projector applies
    // nothing again.
    let before = setup.env.read_models.dump().await.unwrap();
    let mut again = setup.spawn_projector("projector-again", &[]);
    again
        .wait_until_caught_up(non_empty_partitions(&setup.broker.brokers()))
        .await;
    assert_eq!(again.terminate().code(), Some(0));
    assert_eq!(setup.env.read_models.dump().await.unwrap(), before);
}

async fn a_projector_killed_mid_batch_resumes_to_the_clean_rebuild(setup: Setup) {
    // Enough events for many small batches.
    for _ in 0..4 {
        busy_day(&setup.env).await;
    }
    let total = setup.env.all_events().await.len();
    let small_batches = [
        ("PROJECTOR_BATCH_SIZE", "3"),
        ("PROJECTOR_BATCH_WAIT_MS", "20"),
    ];
    let mut first = setup.spawn_projector("first", &small_batches);
    // Kill it once it has applied some of the events, but not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let applied = setup.env.read_models.dump().await.unwrap().applied.len();
        if applied > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing applied:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    let partial = setup.env.read_models.dump().await.unwrap();
    let applied_events: u64 = partial.applied.iter().map(|(_, v)| v).sum();
    assert!(
        (applied_events as usize) < total,
        "killed before the end ({applied_events} of {total} applied)"
    );

    let mut second = setup.spawn_projector("second", &small_batches);
    setup.wait_until_projected(Duration::from_secs(90)).await;
    second.terminate();
    let (live, rebuilt) = setup.live_and_rebuilt().await;
    assert_eq!(live, rebuilt);
}

async fn duplicated_and_reordered_deliveries_give_the_clean_rebuild(setup: Setup) {
    busy_day(&setup.env).await;
    let events = setup.env.all_events().await;
    // Everything again, newest first (later versions before earlier ones), and a
    // third time in order.
    let mut reversed = events.clone();
    reversed.reverse();
    setup.bus.publish(&reversed).await.unwrap();
    setup.bus.publish(&events).await.unwrap();

    let (stop, task) = setup.project_in_process("reordered");
    setup.wait_until_projected(Duration::from_secs(60)).await;
    // Until it has read to the end of the topics, every copy applied and committed:
    // the duplicates must change nothing.
    let published = events.len() * 3;
    setup
        .wait_until_committed("reordered", published, Duration::from_secs(60))
        .await;
    let live = setup.env.read_models.dump().await.unwrap();
    let _ = stop.send(());
    let report = task.await.unwrap();
    assert!(
        report.messages as usize >= published,
        "{} of {published} messages consumed",
        report.messages
    );
    assert!(!report.abandoned_batch, "{report:?}");
    let rebuilt = setup.env.rebuilt().await;
    assert_eq!(live, rebuilt);
}

async fn poison_and_undecodable_messages_go_to_the_dead_letter_topic(setup: Setup) {
    let day = busy_day(&setup.env).await;
    // Not an event at all: no headers, not JSON.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", setup.broker.brokers())
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to("ticketing-inventory-events")
                .key("inventory-garbage")
                .payload(&b"\x00\x01 not an event"[..]),
            Duration::from_secs(10),
        )
        .await
        .expect("the poison message is produced");
    // An event of a type this version does not know, in a real stream.
    let stream = setup
        .env
        .all_events()
        .await
        .into_iter()
        .find(|e| e.stream_id.starts_with("inventory-"))
        .unwrap()
        .stream_id;
    let version = setup.env.store.stream_version(&stream).await.unwrap();
    setup
        .env
        .store
        .append(
            vec![StreamAppend {
                stream_id: stream.clone(),
                expected_version: ExpectedVersion::Exact(version),
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "SeatsTeleported".to_owned(),
                    schema_version: 1,
                    data: serde_json::json!({ "to": "the moon" }),
                    metadata: EventMetadata::default(),
                }],
            }],
            None,
        )
        .await
        .unwrap();
    ticketing_bus::relay_once(setup.env.store.as_ref(), setup.bus.as_ref(), None, 100)
        .await
        .unwrap();
    // A purchase after both: the projector keeps going.
    let later = setup
        .env
        .app
        .hold_seats(
            &support::ctx("customer-9"),
            ticketing_app::HoldSeats {
                show_id: day.show_id,
                section: support::section("Floor"),
                customer_id: support::customer(9),
                quantity: ticketing_domain::Quantity::new(1).unwrap(),
            },
        )
        .await
        .unwrap();

    let (stop, task) = setup.project_in_process("poisoned");
    setup.wait_until_projected(Duration::from_secs(60)).await;
    let _ = stop.send(());
    task.await.unwrap();

    let history = setup
        .env
        .read_models
        .customer_reservations(&support::customer(9), 10, None)
        .await
        .unwrap();
    assert_eq!(
        history.reservations[0].reservation_id, later.reservation_id,
        "applied after the poison"
    );
    let letters = setup.env.read_models.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().any(|l| l.letter.stream_id == stream
        && l.letter.version == version + 1
        && l.letter.event_type == "SeatsTeleported"));
    assert!(letters.iter().any(|l| l
        .letter
        .stream_id
        .starts_with("bus:ticketing-inventory-events/")
        && l.letter.error.contains("missing header")));

    let dead = consume_all(&setup.broker.brokers(), &["ticketing-dead-letters"], 2);
    assert_eq!(dead.len(), 2, "both on the dead-letter topic");
    let poison = dead
        .iter()
        .find(|m| m.key.as_deref() == Some("inventory-garbage"))
        .expect("the poison message, byte for byte");
    assert_eq!(poison.payload, b"\x00\x01 not an event");
    assert!(poison.headers["dead-letter-reason"].contains("missing header"));
    assert_eq!(
        poison.headers["dead-letter-source-topic"],
        "ticketing-inventory-events"
    );
    let teleported = dead
        .iter()
        .find(|m| m.key.as_deref() == Some(stream.as_str()))
        .expect("the undecodable event");
    assert_eq!(teleported.headers["event-type"], "SeatsTeleported");
}

async fn with_the_broker_down_commands_succeed_and_nothing_is_missing_after_it_returns(
    mut setup: Setup,
) {
    setup.broker.stop();
    // Every command succeeds; their events wait in the outbox.
    busy_day(&setup.env).await;
    let committed = setup.env.all_events().await;
    let waiting = setup.env.store.unpublished(None, 10_000).await.unwrap();
    assert!(
        !waiting.is_empty(),
        "the outbox holds what could not be published"
    );

    setup.broker.resume();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = ticketing_bus::relay_once(setup.env.store.as_ref(), setup.bus.as_ref(), None, 500)
            .await;
        if setup
            .env
            .store
            .unpublished(None, 1)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not empty the outbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every committed event is on the bus...
    let on_bus: BTreeSet<String> = consume_all(
        &setup.broker.brokers(),
        &ticketing_bus::message::TOPICS,
        committed.len(),
    )
    .into_iter()
    .map(|message| message.headers["event-id"].clone())
    .collect();
    let in_store: BTreeSet<String> = committed.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(
        in_store.difference(&on_bus).count(),
        0,
        "no event is missing"
    );

    // ...and in the read models.
    let (stop, task) = setup.project_in_process("after-outage");
    setup.wait_until_projected(Duration::from_secs(60)).await;
    let _ = stop.send(());
    task.await.unwrap();
    let (live, rebuilt) = setup.live_and_rebuilt().await;
    assert_eq!(live, rebuilt);
}

async fn events_of_a_function_that_died_after_commit_reach_the_read_models_through_the_relay(
    mut setup: Setup,
) {
    // The commands commit and never publish: a function that died right after its
    // commit.
    setup.env.app = Ticketing::new(
        setup.env.store.clone(),
        Arc::new(SimulatedGateway::new()),
        Arc::new(setup.env.clock.clone()),
        Settings::default(),
    )
    .with_ticket_keys(support::ticket_keys());
    busy_day(&setup.env).await;
    let committed: Vec<RecordedEvent> = setup.env.all_events().await;
    assert_eq!(
        setup
            .env
            .store
            .unpublished(None, 10_000)
            .await
            .unwrap()
            .len(),
        committed.len()
    );

    let (stop, task) = setup.project_in_process("relayed");
    let relayed =
        ticketing_bus::relay_once(setup.env.store.as_ref(), setup.bus.as_ref(), None, 10_000)
            .await
            .unwrap();
    assert_eq!(relayed, committed.len());
    setup.wait_until_projected(Duration::from_secs(60)).await;
    let _ = stop.send(());
    task.await.unwrap();
    let (live, rebuilt) = setup.live_and_rebuilt().await;
    assert_eq!(live, rebuilt);
}
