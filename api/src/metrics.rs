//! Every request counted and timed by route and status (`http_requests_total`,
//! `http_request_duration_seconds`), through the `metrics` facade; and the
//! descriptions of every metric a process serving this API exports.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The `route` label of a request that matched no route: one value, however many
/// unknown paths are tried, so that scanning the API cannot grow the metrics.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Counts and times a request under its route's template (`/v1/shows/{id}`), never
/// its concrete path.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone()
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "http_requests_total",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .increment(1);
    response
}

/// Registers the API's, the commands' and the relay's metrics with the installed
/// recorder (descriptions, and series at zero): what `ticketing serve` exports, with
/// the metrics of the projector it runs.
pub fn register() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route template"
    );
    ticketing_app::metrics::register();
    ticketing_bus::relay::register();
}
