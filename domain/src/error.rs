use thiserror::Error;

use crate::reservation::ReservationStatus;
use crate::ticket::Revocation;
use crate::Timestamp;

/// Why the domain refused a command. Every variant is the caller's to act on: nothing
/// was changed. In an HTTP API the validation variants are 400/422, the
/// "not found" ones 404, the state conflicts 409, and [`DomainError::HoldExpired`] 410.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    // -- Invalid input (HTTP 400/422) --
    /// An order of zero seats.
    #[error("quantity must be at least 1")]
    QuantityZero,
    /// An order above the per-order limit of the show (or the absolute limit).
    #[error("quantity {requested} is above the per-order limit of {limit}")]
    QuantityAboveLimit { requested: u32, limit: u32 },
    #[error("{0:?} is not an active ISO 4217 currency code")]
    InvalidCurrency(String),
    #[error("unit price {0} is not between 1 and 1000000000 minor units")]
    InvalidPrice(i64),
    #[error("section capacity {0} is not between 1 and 100000")]
    InvalidCapacity(u32),
    #[error("a section of {capacity} seats cannot be split into {buckets} buckets: 1 to 64, and no more than its seats")]
    InvalidBucketCount { buckets: u32, capacity: u32 },
    #[error("a section already split into {current} buckets can only be split into more")]
    BucketsNotRaised { current: u32 },
    #[error("cannot move {requested} seats out of a bucket with {available} free")]
    NotEnoughFreeSeats { requested: u32, available: u32 },
    #[error("section name {0:?} must be 1-64 letters, digits, spaces, '-' or '_'")]
    InvalidSectionName(String),
    #[error("invalid {kind}: 1-128 characters without spaces")]
    InvalidPrincipal { kind: &'static str },
    #[error("show title and venue must be 1-200 characters")]
    InvalidShowText,
    #[error("a show needs between 1 and {max} sections")]
    InvalidSectionCount { max: usize },
    #[error("section {0:?} appears twice")]
    DuplicateSection(String),
    #[error("all sections of a show must be priced in one currency")]
    MixedCurrencies,
    #[error("the per-order limit must be between 1 and 100")]
    InvalidPerOrderLimit(u32),
    #[error("the show must start in the future")]
    ShowStartsInPast,
    #[error("a hold must expire after it is placed")]
    InvalidHoldExpiry,
    #[error("amounts in different currencies cannot be added")]
    CurrencyMismatch,
    #[error("amount overflows")]
    AmountOverflow,

    // -- Not found (HTTP 404) --
    #[error("show not found")]
    ShowNotFound,
    #[error("section not found in this show")]
    UnknownSection,
    #[error("reservation not found")]
    ReservationNotFound,
    #[error("payment not found")]
    PaymentNotFound,
    #[error("no hold for this reservation in the section")]
    HoldNotFound,
    #[error("ticket not found")]
    TicketNotFound,

    // -- Conflicts with the current state (HTTP 409) --
    #[error("show already exists")]
    ShowAlreadyExists,
    #[error("section inventory already initialized")]
    SectionAlreadyInitialized,
    #[error("reservation already exists")]
    ReservationAlreadyExists,
    #[error("ticket sales are not open for this show")]
    SalesNotOpen,
    #[error("ticket sales are already open")]
    SalesAlreadyOpen,
    #[error("the show is cancelled")]
    ShowCancelled,
    /// Fewer seats are free (at the decision's instant) than asked for.
    #[error("sold out: {requested} requested, {available} available")]
    SoldOut { requested: u32, available: u32 },
    /// The reservation has already been paid: paying twice is refused.
    #[error("the reservation is already paid")]
    AlreadyPaid,
    /// A payment for this reservation is being processed; wait for its outcome.
    #[error("a payment for this reservation is in progress")]
    PaymentInProgress,
    #[error("the payment does not belong to this reservation")]
    PaymentMismatch,
    #[error("the reservation is not paid")]
    NotPaid,
    #[error("the hold has not expired yet")]
    HoldNotExpired,
    #[error("the reservation is {0}")]
    ReservationClosed(ReservationStatus),
    #[error("the reservation is already cancelled")]
    AlreadyCancelled,
    /// A confirmed purchase can only be cancelled together with its refund.
    #[error("cancelling a confirmed purchase needs a refund")]
    RefundRequired,
    /// The payment has already been refunded: refunding twice is refused.
    #[error("the payment is already refunded")]
    AlreadyRefunded,
    #[error("the payment is already recorded")]
    PaymentAlreadyRecorded,
    #[error("only a captured payment can be refunded")]
    NotRefundable,
    #[error("the ticket is already issued")]
    TicketAlreadyIssued,
    /// The ticket let someone in already (at `scanned_at`, at `gate`).
    #[error("the ticket was already admitted at {scanned_at}")]
    TicketAlreadyAdmitted {
        scanned_at: Timestamp,
        gate: Option<String>,
    },
    #[error("the ticket is revoked ({0})")]
    TicketRevoked(Revocation),
    #[error("only the ticket's holder can do this")]
    NotTicketHolder,
    #[error("the ticket already belongs to that customer")]
    TransferToHolder,
    #[error("the code is not the ticket's current one")]
    StaleTicketGeneration,
    #[error("the ticket is for another show")]
    TicketForAnotherShow,
    #[error("only the show's organizer (or an admin) may do this")]
    NotTheShowsOrganizer,
    #[error("a scan cannot be in the future")]
    InvalidScanTime,
    #[error("the tickets of this reservation are already issued")]
    TicketsAlreadyIssued,
    #[error("a reservation of {quantity} seats needs {quantity} tickets, not {tickets}")]
    TicketCountMismatch { quantity: u32, tickets: usize },

    // -- Gone (HTTP 410) --
    /// The hold expired before payment and its seats have been taken since.
    #[error("the hold expired before payment and its seats are no longer available")]
    HoldExpired,
}
