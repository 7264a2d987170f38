//! The `checkin` Lambda function: tickets checked in at the door, behind API Gateway's
//! HTTP API. A function of its own, so that a door scan never waits behind a flash
//! sale's requests for a concurrent execution.
//!
//! Routes: `POST /v1/checkins`, `POST /v1/checkins/batch` (scans uploaded by a scanner
//! that was offline), `GET /v1/keys` (the public keys that verify ticket codes),
//! `GET /v1/openapi.json`.
//!
//! Layout:
//! - `lib.rs`: [`app`], the router this function serves; its tests call it too.
//! - `main.rs`: the binary: logging, the state built once per cold start, and
//!   `lambda_http::run`.
#![forbid(unsafe_code)]

use axum::Router;
use ticketing_api::{ApiState, RouteGroup};

/// The routes this function serves.
pub const ROUTES: &[RouteGroup] = &[RouteGroup::Checkin];

/// The router the function serves: the API's [`RouteGroup::Checkin`] routes, plus
/// `/v1/openapi.json` and problem+json for anything else.
pub fn app(state: ApiState) -> Router {
    ticketing_api::router(state, ROUTES)
}
