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
//! Layout:
//! - [`service`]: [`Ticketing`] and its use cases (create show, pay, cancel...).
//! - [`holds`]: [`Ticketing::hold_seats`] over a section's escrow buckets, and
//!   [`Ticketing::rebalance_section`].
//! - [`cancellation`]: [`Ticketing::cancel_show`], the cancellation of a show and its
//!   fan-out over every hold and purchase.
//! - [`sweeper`]: [`Ticketing::sweep`], the timeout sweeper, finding its work through
//!   the store's stream index.
//! - [`tickets`]: tickets issued on confirmation, signed codes, check-in, transfer.
//! - [`queries`]: reads of current state from the store.
//! - [`command`]: the decide-append-retry loop and idempotency.
//! - [`repository`]: loading aggregates, turning decisions into appends, snapshots.
//! - [`payments`]: the [`payments::PaymentGateway`] trait and a simulated provider.
//! - [`metrics`]: what the commands count, through the `metrics` facade.
//! - [`clock`]: the injected clock.
//! - [`error`]: the [`AppError`] of every use case.
#![forbid(unsafe_code)]

pub mod cancellation;
pub mod clock;
pub mod command;
pub mod error;
pub mod holds;
pub mod metrics;
pub mod payments;
pub mod provider_reports;
pub mod queries;
pub mod repository;
pub mod service;
pub mod sweeper;
pub mod tickets;

pub use cancellation::ShowCancellation;
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{CommandContext, RetryPolicy};
pub use error::AppError;
pub use service::{Cancelled, HeldSeats, HoldSeats, PaymentResult, Settings, Ticketing};
pub use sweeper::{SweepLimits, SweepReport};
pub use tickets::codes::TicketKeys;
