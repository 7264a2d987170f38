//! The process's `tracing` subscriber: log lines for people and log collectors, and,
//! when the environment asks for it, OpenTelemetry spans for a trace collector.

use std::sync::OnceLock;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::traces;

/// How a binary logs.
#[derive(Debug, Clone)]
pub struct Logging {
    /// The OpenTelemetry `service.name`, unless `OTEL_SERVICE_NAME` names it.
    pub service: String,
    /// The filter when `RUST_LOG` is not set (nor, on Lambda, `AWS_LAMBDA_LOG_LEVEL`).
    pub default_level: &'static str,
    /// JSON lines unless `LOG_FORMAT=text`; otherwise text unless `LOG_FORMAT=json`.
    pub json_by_default: bool,
    /// Lambda's conventions: to stdout, no timestamps (CloudWatch stamps every line),
    /// no colours, no module targets; Lambda's advanced logging controls
    /// (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT=JSON`) are honoured.
    pub lambda: bool,
}

static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Flushes and stops the trace exporter when dropped: keep it until `main` returns.
#[must_use = "traces are flushed when this is dropped"]
pub struct Telemetry(());

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = TRACES.get() {
            let _ = provider.shutdown();
        }
    }
}

/// Exports the spans finished so far (a Lambda invocation's end, before the
/// environment is frozen). Does nothing when traces are not exported.
pub fn flush_traces() {
    if let Some(provider) = TRACES.get() {
        let _ = provider.force_flush();
    }
}

/// Installs the process-wide subscriber (once: a later call keeps the first one, so a
/// test process may build several functions).
pub fn init(logging: Logging) -> Telemetry {
    let var = |name: &str| std::env::var(name).ok();
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            logging
                .lambda
                .then(|| var("AWS_LAMBDA_LOG_LEVEL"))
                .flatten()
                .and_then(|level| EnvFilter::try_new(level.to_ascii_lowercase()).ok())
        })
        .unwrap_or_else(|| EnvFilter::new(logging.default_level));
    let format = var("LOG_FORMAT").or_else(|| {
        logging
            .lambda
            .then(|| var("AWS_LAMBDA_LOG_FORMAT"))
            .flatten()
    });
    let json = match format {
        Some(format) if format.eq_ignore_ascii_case("json") => true,
        Some(format) if format.eq_ignore_ascii_case("text") => false,
        _ => logging.json_by_default,
    };
    let lines = lines(logging.lambda, json).with_filter(filter);

    let provider = if traces::export_requested() {
        match traces::otlp_provider(&logging.service) {
            Ok(provider) => Some(TRACES.get_or_init(|| provider)),
            Err(error) => {
                eprintln!("traces not exported: {error}");
                None
            }
        }
    } else {
        None
    };
    let spans = provider.map(traces::layer);
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init();
    Telemetry(())
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn lines(lambda: bool, json: bool) -> BoxedLayer {
    let layer = tracing_subscriber::fmt::layer();
    match (lambda, json) {
        (true, true) => layer
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        (true, false) => layer
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .boxed(),
        (false, true) => layer
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .boxed(),
        (false, false) => layer.with_writer(std::io::stderr).boxed(),
    }
}
