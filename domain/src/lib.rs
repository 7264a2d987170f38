//! The ticketing domain: what can happen to shows, seats, purchases and payments,
//! decided without any I/O.
//!
//! Every aggregate is a pair of pure functions, [`Aggregate::decide`] and
//! [`Aggregate::evolve`]: time is an argument, never read, and anything that needs a
//! lookup (the show's sales status when holding seats, the provider's answer when
//! paying) is looked up by the application layer and put in the command.
//!
//! Layout:
//! - [`values`]: checked value types (`Quantity`, `Money`, `SectionName`, ids).
//! - [`show`], [`inventory`], [`reservation`], [`payment`], [`ticket`]: the five
//!   aggregates, each with its commands, events and state, one stream per instance.
//! - [`schema`]: the stored form of events, their schema versions and upcasters.
//! - [`error`]: [`DomainError`], every way a command can be refused.
#![forbid(unsafe_code)]

pub mod error;
pub mod inventory;
pub mod payment;
pub mod reservation;
pub mod schema;
pub mod show;
pub mod ticket;
pub mod values;

pub use error::DomainError;
pub use inventory::{
    bucket_stream, inventory_stream, Inventory, InventoryCommand, InventoryEvent, ReleaseReason,
    SectionAvailability, SectionInventory,
};
pub use payment::{payment_stream, Payment, PaymentCommand, PaymentEvent, PaymentStatus};
pub use reservation::{
    reservation_stream, BucketShare, RefundReason, Reservation, ReservationCommand,
    ReservationEvent, ReservationStatus,
};
pub use schema::{DecodeError, DomainEvent, EncodedEvent, EventPayload};
pub use show::{
    default_buckets, show_stream, SalesStatus, SectionSpec, Show, ShowCommand, ShowEvent, ShowPlan,
};
pub use ticket::{ticket_stream, Revocation, Ticket, TicketCommand, TicketEvent};
pub use values::{
    Currency, CustomerId, Money, OrganizerId, PaymentId, Quantity, ReservationId, SectionName,
    ShowId, TicketId, Timestamp,
};

use serde::{de::DeserializeOwned, Serialize};

/// An event-sourced aggregate: its state is the fold of its events with `evolve`,
/// and `decide` turns a command into new events or a refusal.
pub trait Aggregate: Default + Clone + Serialize + DeserializeOwned + Send + Sync {
    type Command;
    type Event: EventPayload + Send + Sync;

    /// The prefix of this aggregate's stream ids (`show`, `inventory`, ...).
    const KIND: &'static str;

    /// The shape of the serialised state: bump it whenever the state's fields change so
    /// that older snapshots are ignored rather than misread.
    const SNAPSHOT_VERSION: u32;

    /// Decides what happens when `command` is applied at instant `now`.
    ///
    /// # Errors
    /// A [`DomainError`] when the command is refused; nothing has happened then.
    fn decide(
        &self,
        command: Self::Command,
        now: Timestamp,
    ) -> Result<Vec<Self::Event>, DomainError>;

    /// The state after `event`.
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds events into a state, starting from `self`.
    fn fold<'a>(self, events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(self, Self::evolve)
    }
}

#[cfg(test)]
mod tests;
