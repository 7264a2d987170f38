//! The `payments` Lambda function: refunds, behind API Gateway's HTTP API.
//!
//! Routes: `POST /v1/payments/{id}/refund`. Stripe's webhooks are the `webhooks`
//! function's.
//!
//! Layout:
//! - `lib.rs`: [`app`], the router this function serves; its tests call it too.
//! - `main.rs`: the binary: logging, the state built once per cold start, and
//!   `lambda_http::run`.
#![forbid(unsafe_code)]

use axum::Router;
use ticketing_api::{ApiState, RouteGroup};

/// The routes this function serves.
pub const ROUTES: &[RouteGroup] = &[RouteGroup::Payments];

/// The router the function serves: the API's [`RouteGroup::Payments`] routes, plus
/// `/v1/openapi.json` and problem+json for anything else.
pub fn app(state: ApiState) -> Router {
    ticketing_api::router(state, ROUTES)
}
