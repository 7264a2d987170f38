//! The command layer: every use case of the ticketing system, between the pure
//! domain and the event store.
//!
//! A command loads the aggregates it decides on (snapshot + newer events), asks the
//! domain with the clock's instant, and appends the new events with the versions it
//! loaded, to one or several streams in one transaction. A command that changes a
//! section first takes its turn on the section's bucket(s), loads them in that turn
//! and appends in it, so concurrent buyers queue instead of racing (ADR 14). A version
//! conflict still means someone else decided first: it reloads and decides again, a
//! bounded number of times with jitter. An idempotency key stored with the events
//! makes a retried command append nothing and answer as the first one did.
//!
//! With a bus ([`Ticketing::with_bus`]), a command publishes its events right after
//! their commit and marks them published in the store's outbox; what it cannot publish
//! stays in the outbox for the relay (`ticketing_bus::relay`, ADR 8).
//!
//! Layout, one module per use case (each module's doc names the streams it touches):
//! - [`service`]: [`Ticketing`], its [`Settings`], and loading what every use case needs.
//! - [`shows`]: creating a show and changing its sales.
//! - [`holds`]: [`Ticketing::hold_seats`] over a section's escrow buckets,
//!   [`Ticketing::rebalance_section`], and the expiry of a hold.
//! - [`checkout`]: [`Ticketing::pay`] and recording a payment's outcome.
//! - [`refunds`]: the customer's cancellation and refunds.
//! - [`cancellation`]: [`Ticketing::cancel_show`], the cancellation of a show and its
//!   fan-out over every hold and purchase.
//! - [`sweeper`]: [`Ticketing::sweep`], the timeout sweeper, finding its work through
//!   the store's stream index.
//! - [`provider_reports`]: what the payment provider reports on its own (webhooks).
//! - [`tickets`]: tickets issued on confirmation, signed codes, check-in, transfer.
//! - [`queries`]: reads of current state from the store.
//! - [`execution`]: how a command runs: decide, append, retry on a conflict, and
//!   answer once per idempotency key.
//! - [`repository`]: loading aggregates, turning decisions into appends, snapshots.
//! - [`payments`]: the [`payments::PaymentGateway`] trait, the simulated provider and
//!   the Stripe adapter.
//! - [`metrics`]: what the commands count, through the `metrics` facade.
//! - [`clock`]: the injected clock.
//! - [`error`]: the [`AppError`] of every use case.
#![forbid(unsafe_code)]

pub mod cancellation;
pub mod checkout;
pub mod clock;
pub mod error;
pub mod execution;
mod hold_batches;
pub mod holds;
mod known;
pub mod metrics;
pub mod payments;
pub mod provider_reports;
mod publishing;
pub mod queries;
pub mod refunds;
pub mod repository;
pub mod service;
pub mod shows;
pub mod sweeper;
pub mod tickets;

pub use cancellation::ShowCancellation;
pub use checkout::PaymentResult;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use execution::{CommandContext, RetryPolicy};
pub use holds::{HeldSeats, HoldSeats};
pub use refunds::Cancelled;
pub use service::{Settings, Ticketing};
pub use sweeper::{SweepLimits, SweepReport};
pub use tickets::codes::TicketKeys;
