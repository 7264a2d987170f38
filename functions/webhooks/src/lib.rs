//! The `webhooks` Lambda function: Stripe's webhooks, behind API Gateway's HTTP API.
//!
//! Routes: `POST /v1/webhooks/stripe` (public, checked by its Stripe signature). A
//! function of its own, so that Stripe's deliveries never wait behind refunds, and
//! `STRIPE_WEBHOOK_SECRET` is given to this function alone.
//!
//! Layout:
//! - `lib.rs`: [`app`], the router this function serves; its tests call it too.
//! - `main.rs`: the binary: logging, the state built once per cold start, and
//!   `lambda_http::run`.
#![forbid(unsafe_code)]

use axum::Router;
use ticketing_api::{ApiState, RouteGroup};

/// The routes this function serves.
pub const ROUTES: &[RouteGroup] = &[RouteGroup::Webhooks];

/// The router the function serves: the API's [`RouteGroup::Webhooks`] routes, plus
/// `/v1/openapi.json` and problem+json for anything else.
pub fn app(state: ApiState) -> Router {
    ticketing_api::router(state, ROUTES)
}
