//! What the Lambda functions share, so that each function's `main` stays a few lines
//! of wiring.
//!
//! Layout:
//! - [`init_logging`]: `tracing` output that suits CloudWatch.
//! - `testing` (feature `testing`): the harness of the functions' tests: committed
//!   API Gateway / EventBridge fixture payloads, a fresh embedded store per test, and a
//!   call through the same router a function's `main` serves.
#![forbid(unsafe_code)]

#[cfg(feature = "testing")]
pub mod testing;

use tracing_subscriber::EnvFilter;

/// The log level when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` is set.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// Installs the process-wide `tracing` subscriber, once per cold start.
///
/// Lambda-friendly defaults: no timestamps (CloudWatch stamps every line), no ANSI
/// colours, no module targets, everything to stdout. The filter is `RUST_LOG`, else
/// Lambda's advanced logging control `AWS_LAMBDA_LOG_LEVEL`, else
/// [`DEFAULT_LOG_LEVEL`]. Lines are JSON objects when `LOG_FORMAT=json` (or Lambda's
/// `AWS_LAMBDA_LOG_FORMAT=JSON`), so that CloudWatch Logs Insights can query their
/// fields; plain text otherwise.
///
/// Calling it again does nothing: a test process may build several functions.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .and_then(|level| EnvFilter::try_new(level.to_ascii_lowercase()).ok())
        })
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG_LEVEL));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .without_time();
    // `try_init` fails only when a subscriber is already installed: keep that one.
    let _ = if json_logs() {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Whether `LOG_FORMAT` or `AWS_LAMBDA_LOG_FORMAT` asks for JSON lines.
fn json_logs() -> bool {
    ["LOG_FORMAT", "AWS_LAMBDA_LOG_FORMAT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| v.eq_ignore_ascii_case("json")))
}
