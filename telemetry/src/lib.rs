//! What every process of ticketing shares to be observed: its logs, where its metrics
//! go, and its traces.
//!
//! The crates that do the work record their metrics through the [`metrics`] facade
//! (`metrics::counter!` and friends), and each binary chooses, once, where they go:
//! - long-running processes (`ticketing serve`, the projector) keep them for a
//!   Prometheus scrape ([`prometheus`]);
//! - Lambda functions write them as CloudWatch Embedded Metric Format lines after each
//!   invocation ([`emf`]), the Lambda convention: no agent, no scrape.
//!
//! Logs and traces go through one `tracing` subscriber ([`logging::init`]): log lines
//! for people and collectors, and OpenTelemetry spans when the `OTEL_*` variables ask
//! for them ([`traces`]), with the W3C trace context carried from the HTTP request to
//! the events' metadata, the bus's headers and the projector.
//!
//! [`shutdown_signal`] tells the long-running binaries (`ticketing serve`, the
//! projector) when to stop gracefully.
#![forbid(unsafe_code)]

pub mod logging;
pub mod metrics;
mod shutdown;
pub mod traces;

pub use crate::logging::{flush_traces, init, Logging, Telemetry};
pub use crate::shutdown::shutdown_signal;
pub use crate::traces::{continue_trace, current_traceparent};

pub use crate::metrics::{emf, prometheus};
pub use metrics_exporter_prometheus::PrometheusHandle;
