//! `projector`: the long-running batch projector. It only wires configuration to the
//! library: the live loop ([`ticketing_projector::run_live`]) on a Kafka consumer
//! group, the rebuild with a progress bar, the metrics endpoint, and two operator
//! commands.
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

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ticketing_bus::{KafkaSource, KafkaSourceConfig};
use ticketing_projector::{
    connect_configured, follow_store, run_live, DeadLetterVerdict, LiveSettings, Progress,
    Projector, ProjectorMetrics, ReadModelConfig, ReadModelStore,
};
use ticketing_store::StoreConfig;
use tokio::net::TcpListener;

/// The batch projector: keeps the read models (available seats, sales, customer
/// history) up to date from the bus, and rebuilds them from the event store.
#[derive(Debug, Parser)]
#[command(name = "projector", version, about)]
struct Cli {
    /// The event store (and read models): a `postgres://` or `sqlite:` URL. Without
    /// one, the embedded SQLite file `ticketing.db` in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Where the Prometheus metrics are served (`/metrics`, and `/healthz`).
    #[arg(
        long,
        env = "PROJECTOR_METRICS_ADDR",
        global = true,
        default_value = "127.0.0.1:9464"
    )]
    metrics_addr: SocketAddr,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything reads the environment; a variable already set wins.
    ticketing_store::load_env_file()?;
    // Structured JSON by default: the projector runs unattended and its logs go to a
    // collector. LOG_FORMAT=text for a terminal.
    let _telemetry = ticketing_telemetry::init(ticketing_telemetry::Logging {
        service: "ticketing-projector".into(),
        default_level: "info",
        json_by_default: true,
        lambda: false,
    });
    let cli = Cli::parse();
    let var = |name: &str| std::env::var(name).ok();
    match &cli.command {
        Command::Status { timeout_seconds } => {
            let source = KafkaSourceConfig::from_env()
                .await?
                .context(NO_BUS_TO_ASK)?;
            let status = ticketing_bus::kafka::bus_status(
                &source.kafka,
                &source.group_id,
                Duration::from_secs(*timeout_seconds),
            )
            .await
            .with_context(|| format!("asking the broker at {}", source.kafka.brokers))?;
            println!("{}", serde_json::to_string_pretty(&status)?);
            return Ok(());
        }
        Command::Messages {
            topic,
            timeout_seconds,
        } => {
            let kafka = ticketing_bus::kafka::kafka_config_from_env()
                .await?
                .context(NO_BUS_TO_ASK)?;
            let messages = ticketing_bus::kafka::read_topic(
                &kafka,
                topic,
                Duration::from_secs(*timeout_seconds),
            )
            .await
            .with_context(|| format!("reading {topic} on {}", kafka.brokers))?;
            for message in messages {
                println!("{}", serde_json::to_string(&message)?);
            }
            return Ok(());
        }
        _ => {}
    }
    if let Command::CreateTopics {
        partitions,
        replication,
        retention_ms,
    } = cli.command
    {
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
        return Ok(());
    }

    let config = StoreConfig {
        database_url: cli.database_url.filter(|url| !url.trim().is_empty()),
        ..StoreConfig::from_env().context("reading the store configuration")?
    };
    // READ_MODEL_STORE=dynamodb needs a build with the `dynamodb` feature.
    let read_model_config =
        ReadModelConfig::from_env().context("reading the read-model configuration")?;
    let (store, read_models) = connect_configured(&config, &read_model_config)
        .await
        .context("connecting to the event store and the read models")?;
    let projector = Projector::new(store.clone(), read_models.clone());
    let settings = LiveSettings::from_lookup(var).map_err(anyhow::Error::msg)?;

    match cli.command {
        Command::DeadLetters { limit } => {
            print_dead_letters(read_models.as_ref(), limit).await?;
            Ok(())
        }
        Command::ReplayDeadLetters { check, batch_size } => {
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
            if check || replayable == 0 {
                let outcome = if check { "" } else { "; nothing to replay" };
                eprintln!("{found}{outcome}");
                return Ok(());
            }
            eprintln!("{found}; rebuilding the read models to apply them");
            let total = store.event_count().await?;
            let batch_size = usize::try_from(batch_size).unwrap_or(usize::MAX);
            let metrics = ProjectorMetrics::new();
            if !rebuild(&projector, batch_size, false, total, &metrics).await? {
                anyhow::bail!(
                    "the replay was interrupted; `projector rebuild --resume --exit` finishes it"
                );
            }
            let left = read_models.dead_letters(usize::MAX >> 1).await?.len();
            eprintln!("replayed {replayable} dead letters; {left} dead letters left");
            Ok(())
        }
        Command::Run => {
            let metrics = ProjectorMetrics::new();
            let server = serve_metrics(cli.metrics_addr, exposition()).await?;
            let result = run(&projector, &settings, &metrics).await;
            server.abort();
            result
        }
        Command::Rebuild {
            batch_size,
            resume,
            exit,
        } => {
            let metrics = ProjectorMetrics::new();
            let server = serve_metrics(cli.metrics_addr, exposition()).await?;
            let total = store.event_count().await?;
            let batch_size = usize::try_from(batch_size).unwrap_or(usize::MAX);
            let rebuilt = rebuild(&projector, batch_size, resume, total, &metrics).await?;
            let result = if rebuilt && !exit {
                run(&projector, &settings, &metrics).await
            } else {
                Ok(())
            };
            server.abort();
            result
        }
        Command::CreateTopics { .. } | Command::Status { .. } | Command::Messages { .. } => {
            unreachable!("handled above")
        }
    }
}

/// Why a command that talks to the broker cannot run.
const NO_BUS_TO_ASK: &str =
    "neither KAFKA_BROKERS nor MSK_CLUSTER_ARN is set: there is no broker to ask";

/// The live path until SIGTERM: a Kafka consumer group, or the event store itself.
async fn run(
    projector: &Projector,
    settings: &LiveSettings,
    metrics: &ProjectorMetrics,
) -> anyhow::Result<()> {
    let source_config = KafkaSourceConfig::from_env().await?;
    let report = match source_config {
        Some(config) => {
            tracing::info!(
                brokers = %config.kafka.brokers,
                group = %config.group_id,
                batch_size = settings.batch_size,
                batch_wait_ms = settings.batch_wait.as_millis() as u64,
                "projecting from the bus"
            );
            let mut source = KafkaSource::new(config)?;
            run_live(projector, &mut source, settings, metrics, shutdown_signal()).await
        }
        None => {
            tracing::info!(
                "neither KAFKA_BROKERS nor MSK_CLUSTER_ARN is set: projecting from the event store"
            );
            follow_store(projector, settings, metrics, shutdown_signal()).await
        }
    };
    tracing::info!(
        batches = report.batches,
        messages = report.messages,
        abandoned_batch = report.abandoned_batch,
        "projector stopped"
    );
    Ok(())
}

/// Rebuilds (or resumes a rebuild) with a progress bar; says whether it finished
/// (SIGTERM interrupts it between batches).
async fn rebuild(
    projector: &Projector,
    batch_size: usize,
    resume: bool,
    total: u64,
    metrics: &ProjectorMetrics,
) -> anyhow::Result<bool> {
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
    let started = std::time::Instant::now();
    let outcome = tokio::select! {
        outcome = work => Some(outcome),
        () = shutdown_signal() => None,
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
            Ok(true)
        }
        Some(Err(error)) => Err(error).context("rebuilding the read models"),
        None => {
            tracing::warn!(
                "rebuild interrupted; `projector rebuild --resume` continues from its checkpoint"
            );
            Ok(false)
        }
    }
}

async fn print_dead_letters(read_models: &dyn ReadModelStore, limit: u64) -> anyhow::Result<()> {
    let letters = read_models
        .dead_letters(usize::try_from(limit).unwrap_or(usize::MAX))
        .await?;
    for letter in letters {
        println!("{}", serde_json::to_string(&letter)?);
    }
    Ok(())
}

/// The process's metrics, kept for a Prometheus scrape.
fn exposition() -> ticketing_telemetry::PrometheusHandle {
    let handle = ticketing_telemetry::prometheus();
    ProjectorMetrics::register();
    handle
}

/// Serves `/metrics` and `/healthz` on `addr` in the background.
async fn serve_metrics(
    addr: SocketAddr,
    metrics: ticketing_telemetry::PrometheusHandle,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;

    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics endpoint to {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics endpoint listening");
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
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(error = %error, "the metrics endpoint failed");
        }
    }))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
