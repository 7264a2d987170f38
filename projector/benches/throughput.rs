//! The projector's throughput: a clean rebuild from the event store, and the live loop
//! consuming from a Kafka-protocol broker (librdkafka's mock broker, or tansu).
//!
//! ```text
//! cargo bench -p ticketing-projector --bench throughput
//! ```
//!
//! Knobs (environment):
//! - `BENCH_EVENTS` (default 1 000 000): events to generate, rounded up to whole copies
//!   of the template day;
//! - `BENCH_LIVE_EVENTS` (default: all of them): how many of those events the live part
//!   publishes and projects (the rebuild always runs over every event);
//! - `BENCH_REBUILD_BATCHES` (default `2000,500`): the rebuild batch sizes to time;
//! - `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`): the
//!   server on which a fresh database is created, migrated and dropped at the end;
//! - `BENCH_BROKER` (default `mock`): the live part's broker, `mock` (librdkafka's
//!   protocol-level mock cluster in this process) or `tansu` (a tansu process, from
//!   `TANSU_BIN` or the `PATH`; skipped when it is not installed).
//!
//! The events: `busy_day` (a day of purchases through the command layer) runs once on a
//! template SQLite store; its events are then appended again and again to the bench
//! store, every UUID (in payloads, metadata and stream ids) and every customer id
//! replaced consistently per copy, so that every copy is a new show with its own
//! reservations, payments and customers.
//!
//! The results are printed as a Markdown table, for BENCHMARKS.md.

// The projection suite's support (the day of purchases) and the broker suite's tansu
// launcher; not every helper of them is used here.
#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../tests/projection/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "../tests/broker/tansu.rs"]
mod tansu;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use ticketing_bus::{EventBus, KafkaBus, KafkaConfig, KafkaSource, KafkaSourceConfig};
use ticketing_projector::{run_live, LiveSettings, Projector, ProjectorMetrics};
use ticketing_read_models::postgres::PostgresReadModels;
use ticketing_read_models::ReadModelStore;
use ticketing_store::postgres::PostgresStore;
use ticketing_store::sqlite::SqliteStore;
use ticketing_store::{
    EventMetadata, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    StreamAppend,
};
use uuid::Uuid;

/// Copies of the template per `append` call, and appends in flight at once.
const COPIES_PER_APPEND: usize = 20;
const APPENDS_IN_FLIGHT: usize = 4;
/// Events per `KafkaBus::publish` call.
const PUBLISH_CHUNK: usize = 5_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', ""))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// One row of the results table.
struct Row {
    what: String,
    events: u64,
    seconds: f64,
    note: String,
}

impl Row {
    fn new(what: impl Into<String>, events: u64, seconds: f64, note: impl Into<String>) -> Self {
        let row = Self {
            what: what.into(),
            events,
            seconds,
            note: note.into(),
        };
        println!(
            ">> {}: {} events in {:.1} s = {:.0} events/s {}",
            row.what,
            row.events,
            row.seconds,
            row.rate(),
            row.note
        );
        row
    }

    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let target = env_usize("BENCH_EVENTS", 1_000_000);
        // The database is created, migrated, and dropped afterwards even on a panic.
        ticketing_store::testing::with_postgres("throughput", move |store| async move {
            bench(store, target).await;
        })
        .await;
    });
}

async fn bench(store: PostgresStore, target: usize) {
    let pool = store.pool().clone();
    let mut rows = Vec::new();

    // 1. The template: one busy day through the command layer.
    let template = template_events().await;
    let copies = target.div_ceil(template.len()).max(1);
    let total = (copies * template.len()) as u64;
    println!(
        "template: {} events in {} streams; {copies} copies = {total} events (asked for {target})",
        template.len(),
        template
            .iter()
            .map(|e| &e.stream_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    );

    // 2. Generation.
    let store = Arc::new(store);
    let started = Instant::now();
    generate(store.clone(), &template, copies).await;
    let seconds = started.elapsed().as_secs_f64();
    let count = store.event_count().await.expect("event_count");
    assert_eq!(count, total, "the store holds every generated event");
    rows.push(Row::new(
        "generate (append, 20 copies per call, 4 in flight)",
        count,
        seconds,
        "",
    ));

    // 3. Rebuild.
    let read_models: Arc<dyn ReadModelStore> = Arc::new(PostgresReadModels::new(pool.clone()));
    let projector = Projector::new(store.clone(), read_models.clone());
    let batches = std::env::var("BENCH_REBUILD_BATCHES").unwrap_or_else(|_| "2000,500".into());
    for batch in batches
        .split(',')
        .filter_map(|b| b.trim().parse::<usize>().ok())
    {
        let started = Instant::now();
        let mut last_report = Instant::now();
        let progress = projector
            .rebuild(batch, |p| {
                if last_report.elapsed() >= Duration::from_secs(30) {
                    last_report = Instant::now();
                    println!(
                        "   rebuild({batch}): {} events, {:.0} events/s",
                        p.events,
                        p.events as f64 / started.elapsed().as_secs_f64()
                    );
                }
            })
            .await
            .expect("the rebuild succeeds");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(progress.events, total, "the rebuild read every event");
        check_projected(&pool, total).await;
        rows.push(Row::new(
            format!("rebuild, batch {batch}"),
            progress.events,
            seconds,
            format!("{} batches", progress.batches),
        ));
    }

    // 4. Live, from a broker: librdkafka's protocol-level mock broker in this
    // process by default; `BENCH_BROKER=tansu` for a tansu process (whose SQLite
    // storage stalls on large fetches: see BENCHMARKS.md).
    let live_events = env_usize("BENCH_LIVE_EVENTS", total as usize).min(total as usize);
    // Without tansu the live part is skipped; with `CI` set, `Tansu::start` fails.
    let mut tansu_broker = None;
    let mut mock_cluster = None;
    let broker = match std::env::var("BENCH_BROKER").as_deref() {
        Ok("tansu") if tansu::installed() || std::env::var_os("CI").is_some() => {
            let broker = tansu::Tansu::start().await;
            let brokers = broker.brokers();
            tansu_broker = Some(broker);
            Some((brokers, "tansu"))
        }
        Ok("tansu") => {
            println!("live part skipped: tansu is not installed (set TANSU_BIN)");
            None
        }
        Ok("mock") | Err(_) => {
            let (brokers, cluster) = MockBroker::start();
            mock_cluster = Some(cluster);
            Some((brokers, "the mock broker"))
        }
        Ok(other) => panic!("BENCH_BROKER must be `mock` or `tansu`, not `{other}`"),
    };
    if let Some((brokers, name)) = broker {
        live(
            &brokers,
            name,
            &projector,
            store.as_ref(),
            &pool,
            live_events,
            &mut rows,
        )
        .await;
    }
    if let Some(cluster) = mock_cluster {
        cluster.stop();
    }
    drop(tansu_broker);

    // 5. The table.
    let version: String = sqlx::query_scalar("select version()")
        .fetch_one(&pool)
        .await
        .expect("select version()");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("Machine: {cores} cores (available parallelism); {version}");
    // Other work on the machine skews every figure: say how busy it was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("Load average at the end (1, 5, 15 min): {}", load.trim());
    }
    println!(
        "Template: busy_day, {} events per copy; {copies} copies, {total} events",
        template.len()
    );
    println!();
    println!("| step | events | seconds | events/s | notes |");
    println!("|---|---:|---:|---:|---|");
    for row in &rows {
        println!(
            "| {} | {} | {:.1} | {:.0} | {} |",
            row.what,
            row.events,
            row.seconds,
            row.rate(),
            row.note
        );
    }
    pool.close().await;
}

/// librdkafka's mock cluster (one broker) on a thread of its own: the cluster is not
/// `Send`, so it cannot live in the benchmark's future.
///
/// The mock broker keeps at most 5 MB (and 100,000 messages) per partition and drops
/// the oldest beyond that, as a retention limit would: a million events (about 450 MB)
/// need enough partitions that none of them drops anything before the consumer reads
/// it, or the streams whose events were dropped never reach the read models.
const MOCK_PARTITIONS: i32 = 128;

/// See [`MOCK_PARTITIONS`].
struct MockBroker {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl MockBroker {
    /// The bootstrap servers, and the handle that stops the cluster.
    fn start() -> (String, Self) {
        let (brokers_tx, brokers_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let cluster = rdkafka::mocking::MockCluster::new(1).expect("a mock cluster");
            for topic in ticketing_bus::message::TOPICS
                .into_iter()
                .chain([ticketing_bus::DEAD_LETTER_TOPIC])
            {
                cluster
                    .create_topic(topic, MOCK_PARTITIONS, 1)
                    .expect("a topic");
            }
            brokers_tx
                .send(cluster.bootstrap_servers())
                .expect("the benchmark waits for the brokers");
            let _ = stopped.recv();
        });
        let brokers = brokers_rx.recv().expect("the mock cluster starts");
        (brokers, Self { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("the mock cluster's thread");
    }
}

/// The events of one busy day, from a throwaway SQLite store, in the global order.
async fn template_events() -> Vec<RecordedEvent> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("template.db");
    let store = SqliteStore::open(path.to_str().expect("a UTF-8 path"))
        .await
        .expect("the template store opens");
    let env = support::Env::sqlite(store);
    support::busy_day(&env).await;
    env.all_events().await
}

/// Replaces every UUID (anywhere in a string) and every customer id, consistently
/// within one copy.
struct Renamer {
    copy: usize,
    uuids: HashMap<Uuid, Uuid>,
}

impl Renamer {
    fn new(copy: usize) -> Self {
        Self {
            copy,
            uuids: HashMap::new(),
        }
    }

    fn uuid(&mut self, old: Uuid) -> Uuid {
        *self.uuids.entry(old).or_insert_with(Uuid::new_v4)
    }

    fn string(&mut self, s: &str) -> String {
        if s.starts_with("customer-") {
            return format!("{s}-{}", self.copy);
        }
        let bytes = s.as_bytes();
        if bytes.len() < 36 {
            return s.to_owned();
        }
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        let mut copied = 0;
        while i + 36 <= bytes.len() {
            if looks_like_uuid(&bytes[i..i + 36]) {
                if let Ok(old) = Uuid::parse_str(&s[i..i + 36]) {
                    out.push_str(&s[copied..i]);
                    let new = self.uuid(old);
                    out.push_str(&new.hyphenated().to_string());
                    i += 36;
                    copied = i;
                    continue;
                }
            }
            i += 1;
        }
        out.push_str(&s[copied..]);
        out
    }

    fn value(&mut self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.string(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn metadata(&mut self, metadata: &EventMetadata) -> EventMetadata {
        EventMetadata {
            correlation_id: metadata.correlation_id.map(|u| self.uuid(u)),
            causation_id: metadata.causation_id.map(|u| self.uuid(u)),
            actor: metadata.actor.as_deref().map(|a| self.string(a)),
            idempotency_key: metadata.idempotency_key.as_deref().map(|k| self.string(k)),
            traceparent: metadata.traceparent.clone(),
        }
    }

    /// One copy of the template, one `StreamAppend` per stream (its events in version
    /// order), streams in the order of their first event.
    fn copy(&mut self, template: &[RecordedEvent]) -> Vec<StreamAppend> {
        let mut appends: Vec<StreamAppend> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for event in template {
            let slot = *index.entry(event.stream_id.as_str()).or_insert_with(|| {
                appends.push(StreamAppend {
                    stream_id: self.string(&event.stream_id),
                    expected_version: ExpectedVersion::NoStream,
                    events: Vec::new(),
                });
                appends.len() - 1
            });
            let new = NewEvent {
                event_id: self.uuid(event.event_id),
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                data: self.value(&event.data),
                metadata: self.metadata(&event.metadata),
            };
            appends[slot].events.push(new);
        }
        appends
    }
}

/// 8-4-4-4-12 hexadecimal digits with hyphens.
fn looks_like_uuid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

/// Appends `copies` renamed copies of `template`, several per call, several calls at
/// once.
async fn generate(store: Arc<PostgresStore>, template: &[RecordedEvent], copies: usize) {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut next = 0;
    let started = Instant::now();
    let mut last_report = Instant::now();
    while next < copies {
        let end = (next + COPIES_PER_APPEND).min(copies);
        let appends: Vec<StreamAppend> = (next..end)
            .flat_map(|copy| Renamer::new(copy).copy(template))
            .collect();
        next = end;
        if in_flight.len() >= APPENDS_IN_FLIGHT {
            in_flight
                .join_next()
                .await
                .expect("a task")
                .expect("the append task");
        }
        let store = store.clone();
        in_flight.spawn(async move {
            store
                .append(appends, None)
                .await
                .expect("the append succeeds");
        });
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            let done = next * template.len();
            println!(
                "   generated ~{done} events, {:.0} events/s",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    while let Some(done) = in_flight.join_next().await {
        done.expect("the append task");
    }
}

/// The read models have applied `total` events (the sum of the applied versions), and
/// none was dead-lettered.
async fn check_projected(pool: &PgPool, total: u64) {
    assert_eq!(
        applied_total(pool).await,
        total as i64,
        "every event applied"
    );
    let dead: i64 = sqlx::query_scalar("select count(*) from projection_dead_letters")
        .fetch_one(pool)
        .await
        .expect("count the dead letters");
    assert_eq!(dead, 0, "no event was dead-lettered");
}

/// The sum of every stream's applied version: the number of events applied.
async fn applied_total(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select coalesce(sum(version), 0)::bigint from projection_applied")
        .fetch_one(pool)
        .await
        .expect("sum the applied versions")
}

async fn live(
    brokers: &str,
    broker_name: &str,
    projector: &Projector,
    store: &PostgresStore,
    pool: &PgPool,
    events: usize,
    rows: &mut Vec<Row>,
) {
    // Publish the first `events` events of the global order. Whole streams are not
    // guaranteed at the cut; the applied versions are compared with what was published.
    let mut kafka = KafkaConfig::new(brokers.to_owned());
    kafka.message_timeout = Duration::from_secs(120);
    let bus = KafkaBus::new(kafka).expect("a producer");
    let mut published: HashMap<String, u64> = HashMap::new();
    let mut position = GlobalPosition::START;
    let mut sent = 0usize;
    let mut publishing = Duration::ZERO;
    let started = Instant::now();
    let mut last_report = Instant::now();
    while sent < events {
        let chunk = store
            .read_all(position, PUBLISH_CHUNK.min(events - sent))
            .await
            .expect("read_all");
        let Some(last) = chunk.last() else { break };
        position = last.global_position;
        for event in &chunk {
            published.insert(event.stream_id.clone(), event.version);
        }
        let publish_started = Instant::now();
        bus.publish(&chunk)
            .await
            .expect("the broker takes the events");
        publishing += publish_started.elapsed();
        sent += chunk.len();
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "   published {sent} events, {:.0} events/s",
                sent as f64 / publishing.as_secs_f64()
            );
        }
    }
    let wall = started.elapsed().as_secs_f64();
    rows.push(Row::new(
        format!("publish to {broker_name} (KafkaBus, chunks of {PUBLISH_CHUNK})"),
        sent as u64,
        publishing.as_secs_f64(),
        format!("{wall:.1} s including reading the store"),
    ));
    let expected: i64 = published.values().map(|v| *v as i64).sum();
    assert_eq!(expected, sent as i64);

    // Consume them into empty read models.
    projector.read_models().clear().await.expect("clear");
    let mut config = KafkaSourceConfig::new(KafkaConfig::new(brokers.to_owned()));
    config.group_id = format!("bench-{}", Uuid::new_v4().simple());
    let mut source = KafkaSource::new(config).expect("a consumer");
    let settings = LiveSettings {
        batch_size: 2_000,
        batch_wait: Duration::from_millis(100),
        ..LiveSettings::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live_projector = projector.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        run_live(
            &live_projector,
            &mut source,
            &settings,
            &ProjectorMetrics::new(),
            async move {
                let _ = stopped.await;
            },
        )
        .await
    });
    let timeout = Duration::from_secs(env_usize("BENCH_LIVE_TIMEOUT_S", 3_600) as u64);
    let mut first_applied = None;
    let mut last_report = Instant::now();
    let finished = loop {
        let applied = applied_total(pool).await;
        if applied > 0 && first_applied.is_none() {
            first_applied = Some((started.elapsed(), applied));
        }
        if applied >= expected {
            break Some(started.elapsed());
        }
        if started.elapsed() > timeout {
            println!("live: timed out after {timeout:?} with {applied} of {expected} applied");
            break None;
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "   live: {applied} of {expected} applied, {:.0} events/s",
                applied as f64 / started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = stop.send(());
    let report = task.await.expect("the live loop");
    println!(
        "live loop: {} batches, {} messages, abandoned: {}",
        report.batches, report.messages, report.abandoned_batch
    );
    let Some(elapsed) = finished else {
        let applied = applied_total(pool).await;
        rows.push(Row::new(
            format!("live from {broker_name} (INCOMPLETE: timed out)"),
            applied as u64,
            started.elapsed().as_secs_f64(),
            "",
        ));
        return;
    };
    let dead: i64 = sqlx::query_scalar("select count(*) from projection_dead_letters")
        .fetch_one(pool)
        .await
        .expect("count the dead letters");
    assert_eq!(dead, 0, "no event was dead-lettered");
    let batches = report.batches.max(1);
    rows.push(Row::new(
        format!(
            "live from {broker_name} (run_live, batch 2000, wait 100 ms), start to all applied"
        ),
        expected as u64,
        elapsed.as_secs_f64(),
        format!(
            "{} batches, {:.0} messages per batch",
            report.batches,
            report.messages as f64 / batches as f64
        ),
    ));
    if let Some((at, applied)) = first_applied {
        let steady = elapsed.saturating_sub(at).as_secs_f64();
        rows.push(Row::new(
            format!("live from {broker_name}, first applied batch to all applied"),
            (expected - applied) as u64,
            steady,
            format!("first batch visible after {:.1} s", at.as_secs_f64()),
        ));
    }
}
