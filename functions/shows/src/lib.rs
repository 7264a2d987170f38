//! The `shows` Lambda function: organizer commands on shows, behind API Gateway's HTTP
//! API.
//!
//! Routes: `POST /v1/shows`, `POST /v1/shows/{id}/open-sales`, `/close-sales`,
//! `/cancel`, `/sections/{section}/buckets`, `/sections/{section}/rebalance`.
//!
//! Layout:
//! - `lib.rs`: [`app`], the router this function serves; its tests call it too.
//! - `main.rs`: the binary: logging, the state built once per cold start, and
//!   `lambda_http::run`.
#![forbid(unsafe_code)]

use axum::Router;
use ticketing_api::{ApiState, RouteGroup};

/// The routes this function serves.
pub const ROUTES: &[RouteGroup] = &[RouteGroup::Shows];

/// The router the function serves: the API's [`RouteGroup::Shows`] routes, plus
/// `/v1/openapi.json` and problem+json for anything else.
pub fn app(state: ApiState) -> Router {
    ticketing_api::router(state, ROUTES)
}
