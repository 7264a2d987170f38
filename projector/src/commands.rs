//! The `projector` binary's commands, so that `main.rs` only parses the command
//! line, sets up logging and hands over the shutdown signal. The long-running
//! commands stop when the shutdown future they are given resolves; they do not listen
//! for signals themselves, so tests stop them with a channel.
//!
//! - `projector run`: applies events from the bus (`KAFKA_BROKERS`) to the read
//!   models until SIGTERM; without `KAFKA_BROKERS` it follows the event store itself.
//! - `projector rebuild`: rebuilds every read model from the event store, then runs.
//! - `projector dead-letters`: prints the dead letters, one JSON object per line.
//! - `projector replay-dead-letters`: after a fix, says which dead letters decode
//!   now and rebuilds the read models to apply them.
//! - `projector create-topics`: creates the bus's topics.
//! - `projector status`: the topics, their high watermarks and the group's lag, as
//!   JSON.
//! - `projector messages TOPIC`: the keys and headers of a topic's messages, as JSON
//!   lines.
//!
//! Layout: [`Cli`] and [`Command`], the command line; [`execute`], which runs one
//! command; and what it runs: [`project_live`], [`rebuild_with_progress`],
//! [`replay_dead_letters`], [`print_dead_letters`], the bus's administration
//! ([`print_bus_status`], [`print_topic_messages`], [`create_topics`]) and the
//! metrics endpoint ([`bind_metrics`], [`serve_metrics`]).

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ticketing_bus::{KafkaSource, KafkaSourceConfig};
use ticketing_store::{EventStore, StoreConfig};
use tokio::net::TcpListener;

use ticketing_read_models::{connect_configured, ReadModelConfig, ReadModelStore};

use crate::{
    follow_store, run_live, DeadLetterVerdict, LiveReport, LiveSettings, Progress, Projector,
    ProjectorMetrics,
};

/// The batch projector: keeps the read models (available seats, sales, customer
/// history) up to date from the bus, and rebuilds them from the event store.
#[derive(Debug, Parser)]
#[command(name = "projector", version, about)]
pub struct Cli {
    /// The event store (and read models): a `postgres://` or `sqlite:` URL. Without
    /// one, the embedded SQLite file `ticketing.db` in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the Prometheus metrics are served (`/metrics`, and `/healthz`).
    #[arg(
        long,
        env = "PROJECTOR_METRICS_ADDR",
        global = true,
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_addr: SocketAddr,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Applies events to the read models as they arrive, until SIGTERM or Ctrl-C (the
    /// batch in hand is finished and its offsets committed). From the consumer group's
    /// committed offsets on `KAFKA_BROKERS`; without it, from the event store.
    Run,
    /// Empties the read models and rebuilds them from the event store's global order
    /// with a progress bar, then runs as `projector run` does. Stop the other
    /// projectors first: they would write beside the rebuild.
    Rebuild {
        /// Events per batch (one transaction each).
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch_size: u64,
        /// Continue an interrupted rebuild from its checkpoint instead of starting over.
        #[arg(long)]
        resume: bool,
        /// Exit when the rebuild is done instead of carrying on live.
        #[arg(long)]
        exit: bool,
    },
    /// Prints the dead letters, oldest first, one JSON object per line.
    DeadLetters {
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        limit: u64,
    },
    /// After a fix: reads each dead letter's event from the event store again and
    /// decodes it with this build, printing a verdict per letter (`replayable`,
    /// `still_failing`, `not_in_store`), one JSON object per line. When some are
    /// replayable it then rebuilds the read models, as `projector rebuild --exit`
    /// does, which applies them; the letters that still fail are recorded again.
    /// Stop the other projectors first. Letters of bus messages that were not
    /// events (`not_in_store`) leave the table with the rebuild; they stay on the
    /// dead-letter topic.
    ReplayDeadLetters {
        /// Only print the verdicts; change nothing.
        #[arg(long)]
        check: bool,
        /// Events per batch of the rebuild.
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch_size: u64,
    },
    /// Creates the event topics and the dead-letter topic on `KAFKA_BROKERS`, leaving
    /// those that exist as they are.
    CreateTopics {
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        partitions: i32,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
        replication: i32,
        /// `retention.ms` of every topic; -1 keeps messages forever. The broker's
        /// default when absent.
        #[arg(long, allow_negative_numbers = true)]
        retention_ms: Option<i64>,
    },
    /// Prints what the broker on `KAFKA_BROKERS` holds, as one JSON object: every
    /// topic (missing ones with `"exists": false`), its partitions with their
    /// watermarks, the committed offsets of the group `PROJECTOR_GROUP_ID` and its lag.
    /// Does not join the group. Fails when the broker does not answer.
    Status {
        /// How long each request to the broker may take.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout_seconds: u64,
    },
    /// Prints every message on a topic now, one JSON object per line: partition,
    /// offset, key (the stream id) and headers; not the payload.
    Messages {
        /// The topic, e.g. `ticketing-inventory-events`.
        topic: String,
        /// How long to wait for the broker, and for the next message.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout_seconds: u64,
    },
}

/// Runs `cli`'s command. The commands that run on (`run`, `rebuild`, the rebuild of
/// `replay-dead-letters`) stop when `shutdown` resolves, finishing the batch in hand.
///
/// # Errors
/// When the configuration is invalid, the store, the read models or the broker
/// cannot be reached, the metrics endpoint cannot be bound, or a command fails.
pub async fn execute(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Cli {
        database_url,
        metrics_addr,
        command,
    } = cli;
    match command {
        Command::Run => {
            let target = ProjectionTarget::connect(database_url).await?;
            let metrics = ProjectorMetrics::new();
            while_serving_metrics(metrics_addr, async {
                let bus = KafkaSourceConfig::from_env().await?;
                project_live(&target.projector, bus, &target.settings, &metrics, shutdown).await?;
                Ok(())
            })
            .await
        }
        Command::Rebuild {
            batch_size,
            resume,
            exit,
        } => {
            let target = ProjectionTarget::connect(database_url).await?;
            let metrics = ProjectorMetrics::new();
            while_serving_metrics(metrics_addr, async {
                // One shutdown for the rebuild and the live run after it.
                tokio::pin!(shutdown);
                let outcome = rebuild_with_progress(
                    &target.projector,
                    target.store.as_ref(),
                    batch_size_from(batch_size),
                    resume,
                    &metrics,
                    shutdown.as_mut(),
                )
                .await?;
                if outcome == RebuildOutcome::Finished && !exit {
                    let bus = KafkaSourceConfig::from_env().await?;
                    project_live(&target.projector, bus, &target.settings, &metrics, shutdown)
                        .await?;
                }
                Ok(())
            })
            .await
        }
        Command::DeadLetters { limit } => {
            let target = ProjectionTarget::connect(database_url).await?;
            print_dead_letters(target.projector.read_models().as_ref(), limit).await
        }
        Command::ReplayDeadLetters { check, batch_size } => {
            let target = ProjectionTarget::connect(database_url).await?;
            replay_dead_letters(
                &target.projector,
                target.store.as_ref(),
                check,
                batch_size_from(batch_size),
                shutdown,
            )
            .await
        }
        Command::CreateTopics {
            partitions,
            replication,
            retention_ms,
        } => create_topics(partitions, replication, retention_ms).await,
        Command::Status { timeout_seconds } => {
            print_bus_status(Duration::from_secs(timeout_seconds)).await
        }
        Command::Messages {
            topic,
            timeout_seconds,
        } => print_topic_messages(&topic, Duration::from_secs(timeout_seconds)).await,
    }
}

/// What the commands on the event store work with, configured from the environment.
struct ProjectionTarget {
    store: Arc<dyn EventStore>,
    projector: Projector,
    settings: LiveSettings,
}

impl ProjectionTarget {
    /// The store of `database_url` (the environment's when absent or blank), the read
    /// models `READ_MODEL_STORE` names, and the live settings (`PROJECTOR_BATCH_*`),
    /// which every such command checks so a bad value is found before it matters.
    async fn connect(database_url: Option<String>) -> anyhow::Result<Self> {
        let config = StoreConfig {
            database_url: database_url.filter(|url| !url.trim().is_empty()),
            ..StoreConfig::from_env().context("reading the store configuration")?
        };
        // READ_MODEL_STORE=dynamodb needs a build with the `dynamodb` feature.
        let read_model_config =
            ReadModelConfig::from_env().context("reading the read-model configuration")?;
        let (store, read_models) = connect_configured(&config, &read_model_config)
            .await
            .context("connecting to the event store and the read models")?;
        let settings = LiveSettings::from_lookup(|name| std::env::var(name).ok())
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            projector: Projector::new(store.clone(), read_models),
            store,
            settings,
        })
    }
}

/// A batch size from the command line, which clap keeps at most 100,000.
fn batch_size_from(flag: u64) -> usize {
    usize::try_from(flag).unwrap_or(usize::MAX)
}

/// Why a command that talks to the broker cannot run.
const NO_BUS_TO_ASK: &str =
    "neither KAFKA_BROKERS nor MSK_CLUSTER_ARN is set: there is no broker to ask";

/// The live path until `shutdown`: the Kafka consumer group of `bus`, or without one
/// the event store itself ([`follow_store`]). Logs how much it did when it stops.
///
/// # Errors
/// When the Kafka consumer cannot be created.
pub async fn project_live(
    projector: &Projector,
    bus: Option<KafkaSourceConfig>,
    settings: &LiveSettings,
    metrics: &ProjectorMetrics,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<LiveReport> {
    let report = match bus {
        Some(config) => {
            tracing::info!(
                brokers = %config.kafka.brokers,
                group = %config.group_id,
                batch_size = settings.batch_size,
                batch_wait_ms = settings.batch_wait.as_millis() as u64,
                "projecting from the bus"
            );
            let mut source = KafkaSource::new(config)?;
            run_live(projector, &mut source, settings, metrics, shutdown).await
        }
        None => {
            tracing::info!(
                "neither KAFKA_BROKERS nor MSK_CLUSTER_ARN is set: projecting from the event store"
            );
            follow_store(projector, settings, metrics, shutdown).await
        }
    };
    tracing::info!(
        batches = report.batches,
        messages = report.messages,
        abandoned_batch = report.abandoned_batch,
        "projector stopped"
    );
    Ok(report)
}

/// Whether a rebuild ran to the end of the event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildOutcome {
    Finished,
    /// `shutdown` resolved between two batches; `projector rebuild --resume`
    /// continues from the checkpoint.
    Interrupted,
}

/// Rebuilds the read models (or, with `resume`, continues an interrupted rebuild
/// from its checkpoint) with a progress bar on stderr, recording the applied events
/// in `metrics`, until the end of `store` or until `shutdown`.
///
/// # Errors
/// When the store cannot be counted or the rebuild fails.
pub async fn rebuild_with_progress(
    projector: &Projector,
    store: &dyn EventStore,
    batch_size: usize,
    resume: bool,
    metrics: &ProjectorMetrics,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<RebuildOutcome> {
    let total = store.event_count().await?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events, {per_sec}, {eta} left",
        )
        .context("the progress bar's template")?,
    );
    let mut previous = Progress {
        batches: 0,
        events: 0,
        position: ticketing_store::GlobalPosition::START,
    };
    let on_batch = |progress: Progress| {
        let size = progress.events - previous.events;
        previous = progress;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        metrics.record_applied(size, size);
        bar.set_position(progress.events.min(total));
        if progress.batches % 100 == 0 {
            // The bar is hidden when stderr is not a terminal; the log still says.
            tracing::info!(events = progress.events, total, "rebuild progress");
        }
    };
    let work = async {
        if resume {
            projector.catch_up(batch_size, on_batch).await
        } else {
            projector.rebuild(batch_size, on_batch).await
        }
    };
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        () = shutdown => None,
    };
    bar.finish_and_clear();
    match outcome {
        Some(Ok(done)) => {
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(
                events = done.events,
                batches = done.batches,
                seconds,
                events_per_second = done.events as f64 / seconds.max(f64::EPSILON),
                "rebuild done"
            );
            Ok(RebuildOutcome::Finished)
        }
        Some(Err(error)) => Err(error).context("rebuilding the read models"),
        None => {
            tracing::warn!(
                "rebuild interrupted; `projector rebuild --resume` continues from its checkpoint"
            );
            Ok(RebuildOutcome::Interrupted)
        }
    }
}

/// Prints the oldest `limit` dead letters to stdout, one JSON object per line.
///
/// # Errors
/// When the read models cannot be read.
pub async fn print_dead_letters(
    read_models: &dyn ReadModelStore,
    limit: u64,
) -> anyhow::Result<()> {
    let letters = read_models
        .dead_letters(usize::try_from(limit).unwrap_or(usize::MAX))
        .await?;
    for letter in letters {
        println!("{}", serde_json::to_string(&letter)?);
    }
    Ok(())
}

/// Prints each dead letter's verdict with this build (stdout, one JSON object per
/// line) and a summary (stderr). Unless `check_only`, when some letters are
/// replayable, rebuilds the read models in batches of `batch_size` to apply them,
/// until `shutdown`.
///
/// # Errors
/// When the store or the read models fail, or `shutdown` interrupts the rebuild.
pub async fn replay_dead_letters(
    projector: &Projector,
    store: &dyn EventStore,
    check_only: bool,
    batch_size: usize,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let checks = projector.check_dead_letters(usize::MAX >> 1).await?;
    for check in &checks {
        println!("{}", serde_json::to_string(check)?);
    }
    let replayable = checks
        .iter()
        .filter(|c| c.verdict == DeadLetterVerdict::Replayable)
        .count();
    let found = format!(
        "{replayable} of {} dead letters decode with this build",
        checks.len()
    );
    if check_only || replayable == 0 {
        let outcome = if check_only {
            ""
        } else {
            "; nothing to replay"
        };
        eprintln!("{found}{outcome}");
        return Ok(());
    }
    eprintln!("{found}; rebuilding the read models to apply them");
    // No metrics endpoint here: the counts go to the facade's no-op recorder.
    let metrics = ProjectorMetrics::new();
    let outcome =
        rebuild_with_progress(projector, store, batch_size, false, &metrics, shutdown).await?;
    if outcome == RebuildOutcome::Interrupted {
        anyhow::bail!(
            "the replay was interrupted; `projector rebuild --resume --exit` finishes it"
        );
    }
    let left = projector
        .read_models()
        .dead_letters(usize::MAX >> 1)
        .await?
        .len();
    eprintln!("replayed {replayable} dead letters; {left} dead letters left");
    Ok(())
}

/// Creates the event topics and the dead-letter topic on the environment's broker,
/// leaving those that exist as they are, and prints which it created.
///
/// # Errors
/// When no broker is configured or the broker refuses.
pub async fn create_topics(
    partitions: i32,
    replication: i32,
    retention_ms: Option<i64>,
) -> anyhow::Result<()> {
    let kafka = ticketing_bus::kafka::kafka_config_from_env()
        .await?
        .context(NO_BUS_TO_ASK)?;
    let created = ticketing_bus::kafka::ensure_topics(
        &kafka,
        partitions,
        replication,
        retention_ms,
        Duration::from_secs(30),
    )
    .await?;
    for topic in &created {
        println!("created {topic}");
    }
    println!("{} topics created; the others existed", created.len());
    Ok(())
}

/// Prints the environment's broker's topics, watermarks and the projector group's
/// lag as one JSON object, without joining the group.
///
/// # Errors
/// When no broker is configured or it does not answer within `timeout`.
pub async fn print_bus_status(timeout: Duration) -> anyhow::Result<()> {
    let source = KafkaSourceConfig::from_env()
        .await?
        .context(NO_BUS_TO_ASK)?;
    let status = ticketing_bus::kafka::bus_status(&source.kafka, &source.group_id, timeout)
        .await
        .with_context(|| format!("asking the broker at {}", source.kafka.brokers))?;
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(())
}

/// Prints every message on `topic` now, one JSON object per line: partition, offset,
/// key and headers, not the payload.
///
/// # Errors
/// When no broker is configured or the topic cannot be read within `timeout`.
pub async fn print_topic_messages(topic: &str, timeout: Duration) -> anyhow::Result<()> {
    let kafka = ticketing_bus::kafka::kafka_config_from_env()
        .await?
        .context(NO_BUS_TO_ASK)?;
    let messages = ticketing_bus::kafka::read_topic(&kafka, topic, timeout)
        .await
        .with_context(|| format!("reading {topic} on {}", kafka.brokers))?;
    for message in messages {
        println!("{}", serde_json::to_string(&message)?);
    }
    Ok(())
}

/// Runs `work` with the process's metrics served on `addr`, and stops serving when
/// it ends, however it ends.
async fn while_serving_metrics<T>(
    addr: SocketAddr,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let exposition = prometheus_exposition();
    let listener = bind_metrics(addr).await?;
    let (work_ended, stop_serving) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async {
            let _ = stop_serving.await;
        };
        if let Err(error) = serve_metrics(listener, exposition, stopped).await {
            tracing::error!(error = %error, "the metrics endpoint failed");
        }
    });
    let result = work.await;
    let _ = work_ended.send(());
    // It returns as soon as told; an error in it was logged.
    let _ = server.await;
    result
}

/// The process's metrics, kept for a Prometheus scrape: installs the Prometheus
/// recorder and registers the projector's metrics with it.
fn prometheus_exposition() -> ticketing_telemetry::PrometheusHandle {
    let handle = ticketing_telemetry::prometheus();
    ProjectorMetrics::register();
    handle
}

/// Binds the metrics endpoint's listener (port 0 picks a free one).
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn bind_metrics(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics endpoint to {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics endpoint listening");
    Ok(listener)
}

/// Serves `/metrics` (the text exposition of `metrics`) and `/healthz` on
/// `listener` until `shutdown` resolves, then stops accepting connections at once;
/// a scrape in flight finishes on its own.
///
/// # Errors
/// When the server fails.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: ticketing_telemetry::PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;

    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    tokio::select! {
        served = axum::serve(listener, app).into_future() => served,
        () = shutdown => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    /// The whole answer to `GET path` on `addr`, head and body.
    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("the endpoint accepts");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn the_metrics_endpoint_serves_until_its_shutdown_resolves_then_refuses() {
        let listener = bind_metrics(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        // A recorder of this test's own: the process-wide one is the binary's.
        let exposition = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_metrics(listener, exposition, async move {
            let _ = stopped.await;
        }));

        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with("\r\n\r\nok"), "{health}");
        let scrape = get(addr, "/metrics").await.to_ascii_lowercase();
        assert!(
            scrape.contains("content-type: text/plain; version=0.0.4"),
            "{scrape}"
        );

        stop.send(()).unwrap();
        // A guard against hanging, not a synchronisation: it returns when told.
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("the server returns once its shutdown resolves")
            .unwrap()
            .unwrap();
        let refused = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    }
}
