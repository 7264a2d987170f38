use thiserror::Error;
use ticketing_domain::{DecodeError, DomainError};
use ticketing_store::StoreError;

use crate::payments::{GatewayError, InvalidCardToken};
use crate::tickets::codes::CodeError;

/// Why a command or query failed.
#[derive(Debug, Error)]
pub enum AppError {
    /// The domain refused the command; nothing changed. Map by variant (see
    /// [`DomainError`]): 400/404/409/410.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The card token is malformed; nothing changed. HTTP 400.
    #[error(transparent)]
    InvalidCardToken(#[from] InvalidCardToken),
    /// Other writers kept changing the same streams and every retry lost, or kept a
    /// section busy for longer than a command waits for its turn. Nothing changed:
    /// HTTP 409 with `Retry-After`, and the client may try again.
    #[error("too much contention on {stream_id}: gave up after {attempts} attempts")]
    Contention { stream_id: String, attempts: u32 },
    /// The idempotency key was already used for a different request. HTTP 422.
    #[error("idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// The same command, with the same idempotency key, is still running. Nothing
    /// changed: HTTP 409; retry shortly to get its outcome.
    #[error("a request with this idempotency key is still in progress")]
    RequestInProgress,
    /// The payment provider did not answer. The purchase is left pending and is
    /// finished by a retry with the same idempotency key or by the sweeper. HTTP 503.
    #[error("payment provider unavailable: {0}")]
    PaymentProvider(#[source] GatewayError),
    /// A ticket code that is not one, is signed by an unknown or retired key, or
    /// whose signature does not match. HTTP 422.
    #[error("invalid ticket code: {0}")]
    InvalidTicketCode(#[from] CodeError),
    /// No ticket signing key is configured (`TICKET_SIGNING_KEYS`): tickets can be
    /// neither issued nor checked. HTTP 503.
    #[error("tickets are not configured: no signing key")]
    TicketsNotConfigured,
    /// The event store failed. HTTP 503 when transient, else an opaque 500.
    #[error(transparent)]
    Store(StoreError),
    /// A retried command's recorded outcome no longer reads as this build's outcome
    /// type (a deployment changed it). The command is not run a second time: that
    /// could hold seats or charge again. A deployment bug: an opaque HTTP 500.
    #[error("the recorded outcome of idempotency key {key} cannot be read: {reason}")]
    UnreadableOutcome { key: String, reason: String },
    /// The task deciding a batch of holds ended without answering this one (a bug):
    /// whether its hold was stored is unknown, so it is not run again. An opaque HTTP
    /// 500; a retry with the same idempotency key finds the hold if it was stored.
    #[error("the batch deciding this hold ended without an answer")]
    OutcomeUnknown,
    /// A stored event or snapshot could not be read: a deployment or data bug. HTTP 500.
    #[error("stored event of stream {stream_id} cannot be read: {source}")]
    Decode {
        stream_id: String,
        #[source]
        source: DecodeError,
    },
}

impl AppError {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            AppError::Contention { .. }
            | AppError::RequestInProgress
            | AppError::PaymentProvider(_) => true,
            AppError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Busy { stream_id } => AppError::Contention {
                stream_id,
                attempts: 1,
            },
            other => AppError::Store(other),
        }
    }
}
