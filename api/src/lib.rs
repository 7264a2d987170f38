//! The HTTP API under `/v1`: one axum router, served by the Lambda functions (each
//! mounting its group of routes) and by `ticketing serve` (all of them).
//!
//! Layout:
//! - [`routes`]: the handlers, by group (shows, reservations, payments, queries).
//! - [`auth`]: bearer JWTs and API Gateway authorizer claims; roles.
//! - [`error`]: [`ApiError`], RFC 9457 problem+json for every failure.
//! - [`extract`]: JSON, path and `Idempotency-Key` extractors with problem rejections.
//! - [`dto`]: the request and response shapes.
//! - [`config`]: building the state from the environment.
//! - [`metrics`]: requests counted and timed by route and status.
//! - [`qr`]: ticket codes drawn as QR codes.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod qr;
pub mod routes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use ticketing_app::Ticketing;
use ticketing_read_models::ReadModelStore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{AuthConfig, Authenticator, Principal, Role};
pub use error::{ApiError, Problem};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares: built once per process (per Lambda cold start).
#[derive(Clone)]
pub struct ApiState {
    /// Commands, and the reads that must see the latest committed state.
    pub ticketing: Arc<Ticketing>,
    /// The projected views behind availability, sales and the customer history:
    /// eventually consistent (a projector writes them after the events commit).
    pub read_models: Arc<dyn ReadModelStore>,
    pub authenticator: Arc<Authenticator>,
    /// The secrets Stripe signs its webhooks with (`STRIPE_WEBHOOK_SECRET`, several
    /// during a rotation); none: `POST /v1/webhooks/stripe` answers 404.
    pub stripe_webhook_secrets: Arc<[String]>,
}

/// The groups of routes, one per Lambda function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// Organizer commands on shows.
    Shows,
    /// Customer commands on reservations.
    Reservations,
    /// Refunds.
    Payments,
    /// Stripe's webhook: public, checked by its signature; a function of its own, so
    /// that Stripe's deliveries (a burst after an incident) never wait behind refunds
    /// and its secret is given to that function alone.
    Webhooks,
    /// Every read, and the OpenAPI document.
    Queries,
    /// Check-in at the door, and the keys that verify ticket codes: a function of its
    /// own, so that a door scan never waits behind a flash sale.
    Checkin,
}

impl RouteGroup {
    pub const ALL: [RouteGroup; 6] = [
        Self::Shows,
        Self::Reservations,
        Self::Payments,
        Self::Webhooks,
        Self::Queries,
        Self::Checkin,
    ];

    fn routes(self) -> OpenApiRouter<ApiState> {
        use routes::{payments, queries, reservations, sections, shows, tickets};
        let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
        match self {
            Self::Shows => router
                .routes(routes!(shows::create_show))
                .routes(routes!(shows::open_sales))
                .routes(routes!(shows::close_sales))
                .routes(routes!(shows::cancel_show))
                .routes(routes!(sections::split_section))
                .routes(routes!(sections::rebalance_section)),
            Self::Reservations => router
                .routes(routes!(reservations::create_reservation))
                .routes(routes!(reservations::pay))
                .routes(routes!(reservations::cancel_reservation))
                .routes(routes!(tickets::transfer_ticket)),
            Self::Payments => router.routes(routes!(payments::refund)),
            Self::Webhooks => router.routes(routes!(payments::stripe_webhook)),
            Self::Queries => router
                .routes(routes!(queries::get_show))
                .routes(routes!(queries::availability))
                .routes(routes!(queries::sales))
                .routes(routes!(queries::get_reservation))
                .routes(routes!(queries::my_reservations))
                .routes(routes!(tickets::my_tickets))
                .routes(routes!(tickets::revoked_tickets))
                .routes(routes!(tickets::admissions))
                .routes(routes!(tickets::reservation_tickets))
                .routes(routes!(tickets::get_ticket))
                .routes(routes!(tickets::ticket_qr_svg))
                .routes(routes!(tickets::ticket_qr_png)),
            Self::Checkin => router
                .routes(routes!(tickets::check_in))
                .routes(routes!(tickets::check_in_batch))
                .routes(routes!(tickets::ticket_keys)),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ticketing API",
        description = "Shows, seat holds, payments, refunds and tickets. Errors are RFC 9457 problem+json with a stable `type`. Every POST accepts an `Idempotency-Key` (except Stripe's webhook, which speaks Stripe's protocol).\n\nConsistency: `GET /v1/shows/{id}/availability`, `/sales`, `/admissions`, `/revoked-tickets`, `GET /v1/customers/me/reservations` and `/tickets` answer from read models that a projector updates after each command commits; they are eventually consistent (usually within a second) and carry the header `X-Read-Model: projected`. `GET /v1/shows/{id}` and `GET /v1/reservations/{id}` read the event store and always show the latest committed state.",
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "shows", description = "Organizer commands"),
        (name = "reservations", description = "Customer commands"),
        (name = "payments", description = "Refunds"),
        (name = "queries", description = "Reads"),
        (name = "tickets", description = "Tickets, their QR codes, transfers and check-in"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 document of every route, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut all = OpenApiRouter::<ApiState>::with_openapi(ApiDoc::openapi());
    for group in RouteGroup::ALL {
        all = all.merge(group.routes());
    }
    all.into_openapi()
}

/// A request's span, named by its route template, continuing the caller's trace when
/// the request carries a W3C `traceparent`.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(metrics::UNMATCHED_ROUTE, axum::extract::MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        url.path = request.uri().path(),
    );
    if let Some(traceparent) = request
        .headers()
        .get(ticketing_telemetry::traces::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
    {
        ticketing_telemetry::continue_trace(&span, traceparent);
    }
    span
}

/// The router of the given groups (every route of the API for `RouteGroup::ALL`),
/// with `/v1/openapi.json`, problem+json for unknown routes and methods, a body size
/// limit, request metrics and request tracing.
pub fn router(state: ApiState, groups: &[RouteGroup]) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    for group in groups {
        api = api.merge(group.routes());
    }
    let (router, _) = api.split_for_parts();
    let document = Arc::new(openapi());
    router
        .route(
            "/v1/openapi.json",
            get(move || async move { Json(document.as_ref().clone()) }),
        )
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not accept that method",
            )
            .into_response()
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }))
        // Outside the panic catcher, so that a panic counts as the 500 it answers.
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}
