//! The `queries` Lambda function: every read, and the OpenAPI document, behind API
//! Gateway's HTTP API.
//!
//! Routes: `GET /v1/shows/{id}`, `/availability`, `/sales`,
//! `/admissions`, `/revoked-tickets`, `GET /v1/reservations/{id}`, `/tickets`,
//! `GET /v1/customers/me/reservations`, `/tickets`,
//! `GET /v1/tickets/{id}`, `/qr.svg`, `/qr.png`, `GET /v1/openapi.json`.
//!
//! Layout:
//! - `lib.rs`: [`app`], the router this function serves; its tests call it too.
//! - `main.rs`: the binary: logging, the state built once per cold start, and
//!   `lambda_http::run`.
#![forbid(unsafe_code)]

use axum::Router;
use ticketing_api::{ApiState, RouteGroup};

/// The routes this function serves.
pub const ROUTES: &[RouteGroup] = &[RouteGroup::Queries];

/// The router the function serves: the API's [`RouteGroup::Queries`] routes, plus
/// `/v1/openapi.json` and problem+json for anything else.
pub fn app(state: ApiState) -> Router {
    ticketing_api::router(state, ROUTES)
}
