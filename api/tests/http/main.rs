//! The HTTP API through its router (`tower::ServiceExt::oneshot`), on a fresh embedded
//! store per test, with a manual clock and the simulated payment provider. Unless a
//! test asks otherwise, the read models are caught up with the store before every
//! request (see `support::Projection`).
//!
//! Layout:
//! - `support.rs`: the app under test, tokens and a small request builder.
//! - `flow.rs`: every route's happy path.
//! - `errors.rs`: every documented error status, and bad input of every kind.
//! - `auth.rs`: the authorization matrix and refused tokens.
//! - `idempotency.rs`: `Idempotency-Key` replay and conflicts.
//! - `openapi.rs`: the document covers every route.
//! - `read_models.rs`: the projected reads: paging, sales with refunds, a show not
//!   projected yet, and the live projector following commands.
//! - `tickets.rs`: tickets, their QR codes, transfers and check-in.

mod auth;
mod errors;
mod flow;
mod idempotency;
mod openapi;
mod read_models;
mod support;
mod tickets;
mod webhooks;
