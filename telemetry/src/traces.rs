//! OpenTelemetry traces through `tracing` spans, and the W3C trace context that ties
//! a request, the events it appended, their trip over the bus and their projection
//! into one trace.
//!
//! Export is off unless the standard variables ask for it: `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names an OTLP/HTTP collector, and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` is set. `OTEL_SERVICE_NAME`
//! and `OTEL_RESOURCE_ATTRIBUTES` are honoured. Without export the trace context is
//! absent and nothing is propagated.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The W3C trace context header (HTTP and bus messages alike).
pub const TRACEPARENT: &str = "traceparent";

/// Whether the environment asks for traces to be exported (see the module doc).
pub fn export_requested() -> bool {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let says = |name: &str, value: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    if says("OTEL_SDK_DISABLED", "true") || says("OTEL_TRACES_EXPORTER", "none") {
        return false;
    }
    var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
}

/// A tracer provider that batches spans to the OTLP/HTTP collector the `OTEL_*`
/// variables name, for the service `service` unless `OTEL_SERVICE_NAME` names it.
///
/// # Errors
/// When the exporter cannot be built from the environment (a malformed endpoint).
pub fn otlp_provider(service: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|error| error.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_resource(resource(service))
        .with_batch_exporter(exporter)
        .build())
}

/// The resource every span of this process carries: the service's name.
pub fn resource(service: &str) -> Resource {
    let builder = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.trim().is_empty()) {
        builder.build()
    } else {
        builder.with_service_name(service.to_owned()).build()
    }
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`'s.
///
/// Spans at INFO and above, except those of the HTTP client the exporter itself uses
/// (which would trace their own export) and of the connection machinery below the
/// application.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let targets = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("h2", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF);
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("ticketing"))
        .with_filter(targets)
}

/// The W3C `traceparent` of the current span; `None` when spans are not exported.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the remote span that `traceparent` names (an incoming
/// request's header, a stored event's metadata). A malformed value is ignored: the
/// span starts a trace of its own.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let context = TraceContextPropagator::new().extract(&OneHeader(traceparent));
    if context.span().span_context().is_valid() {
        // Fails only when the span is not recorded by OpenTelemetry: nothing to join.
        let _ = span.set_parent(context);
    }
}

/// A carrier holding just a `traceparent` value.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        key.eq_ignore_ascii_case(TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}
