//! What the Lambda functions share, so that each function's `main` stays a few lines
//! of wiring.
//!
//! Layout:
//! - [`init_logging`]: `tracing` output that suits CloudWatch.
//! - [`init_metrics`], [`flushing_telemetry`], [`flush_telemetry`]: the metrics every
//!   crate records, written after each invocation as CloudWatch Embedded Metric
//!   Format lines (CloudWatch Logs turns them into metrics; no agent, no scrape), and
//!   the invocation's spans exported.
//! - `testing` (feature `testing`): the harness of the functions' tests: committed
//!   API Gateway / EventBridge fixture payloads, a fresh embedded store per test, and a
//!   call through the same router a function's `main` serves.
#![forbid(unsafe_code)]

#[cfg(feature = "testing")]
pub mod testing;

use axum::response::Response;
use tower::util::MapResponse;

/// The log level when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` is set.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// Installs the process-wide `tracing` subscriber, once per cold start.
///
/// Lambda-friendly defaults: no timestamps (CloudWatch stamps every line), no ANSI
/// colours, no module targets, everything to stdout. The filter is `RUST_LOG`, else
/// Lambda's advanced logging control `AWS_LAMBDA_LOG_LEVEL`, else
/// [`DEFAULT_LOG_LEVEL`]. Lines are JSON objects when `LOG_FORMAT=json` (or Lambda's
/// `AWS_LAMBDA_LOG_FORMAT=JSON`), so that CloudWatch Logs Insights can query their
/// fields; plain text otherwise. Spans go to an OTLP collector (the ADOT Lambda layer)
/// when the `OTEL_*` variables name one, and are flushed after each invocation
/// ([`flush_telemetry`]).
///
/// Calling it again does nothing: a test process may build several functions.
pub fn init_logging() {
    let telemetry = ticketing_telemetry::init(ticketing_telemetry::Logging {
        service: function_name(),
        default_level: DEFAULT_LOG_LEVEL,
        json_by_default: false,
        lambda: true,
    });
    // A Lambda process is never shut down gracefully: spans are flushed after each
    // invocation instead of when this guard drops.
    std::mem::forget(telemetry);
}

/// The function's name as Lambda (and `cargo lambda watch`) sets it.
fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "ticketing-local".into())
}

/// Installs the CloudWatch Embedded Metric Format recorder, once per cold start, with
/// the function's name (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda and `cargo lambda
/// watch` set) as the `function` dimension. The namespace is `METRICS_NAMESPACE`, else
/// `Ticketing`.
pub fn init_metrics() {
    ticketing_telemetry::emf::install(&function_name());
}

/// The end of an invocation: writes the metrics recorded since the last flush as one
/// EMF line on stdout, and exports the spans finished meanwhile.
pub fn flush_telemetry() {
    ticketing_telemetry::emf::flush();
    ticketing_telemetry::flush_traces();
}

/// An HTTP function's router with [`flush_telemetry`] after each answer.
pub fn flushing_telemetry(
    router: axum::Router,
) -> MapResponse<axum::Router, fn(Response) -> Response> {
    MapResponse::new(router, flushed)
}

fn flushed(response: Response) -> Response {
    flush_telemetry();
    response
}
