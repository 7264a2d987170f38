//! Payments through a [`PaymentGateway`]: the provider's API as the command layer
//! needs it. Every call carries an idempotency key so that a retry, after a timeout
//! or a crash, never charges or refunds twice.
//!
//! - [`simulated`]: a provider that behaves like a real one in test mode.
//! - [`stripe`]: the Stripe adapter; [`stripe_webhook`]: its signed webhooks.

mod measured;
pub mod simulated;
pub mod stripe;
pub mod stripe_webhook;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use ticketing_domain::Money;

pub(crate) use measured::Measured;
pub use simulated::{ChargeGate, SimulatedGateway};
pub use stripe::{StripeConfig, StripeGateway};

/// A tokenised card, as a payment page hands it over (`tok_...`): never a card number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardToken(String);

impl CardToken {
    /// # Errors
    /// [`InvalidCardToken`] unless 1 to 128 ASCII letters, digits or `_`.
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidCardToken> {
        let value = value.into();
        let valid = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if valid {
            Ok(Self(value))
        } else {
            Err(InvalidCardToken)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CardToken {
    type Error = InvalidCardToken;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<CardToken> for String {
    fn from(token: CardToken) -> Self {
        token.0
    }
}

impl fmt::Debug for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are not secrets, but they are the customer's: keep them out of logs.
        f.write_str("CardToken(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a card token is 1-128 letters, digits or '_'")]
pub struct InvalidCardToken;

/// A request to charge a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The same key always means the same charge: the provider answers a repeat with
    /// the first outcome and never charges twice.
    pub idempotency_key: String,
    pub amount: Money,
    pub card: CardToken,
    pub description: String,
    /// The purchase paid for, recorded with the charge at the provider.
    pub reservation_id: Option<ticketing_domain::ReservationId>,
}

/// What the provider did with a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeOutcome {
    /// The money was taken; `reference` is the provider's id of the charge.
    Captured { reference: String },
    /// The card was refused; nothing was taken.
    Declined { reason: String },
    /// The provider waits for the customer to authenticate the payment (3-D Secure).
    /// Nothing is taken yet; `reference` is the provider's id of the payment, and
    /// `client_secret` is what the customer's browser needs to finish it (the
    /// provider's client library takes it). Not stored: it is asked for again.
    ActionRequired {
        reference: String,
        client_secret: String,
    },
}

/// A request to refund a captured charge in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub idempotency_key: String,
    pub charge_reference: String,
    pub amount: Money,
}

/// The provider's id of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub reference: String,
}

/// Why the provider gave no answer. The outcome of the call is unknown: retry with the
/// same idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GatewayError {
    /// The provider did not answer in time. The charge may or may not have happened.
    #[error("payment provider timed out")]
    Timeout,
    /// The provider could not be reached or answered with a server error.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request itself (an idempotency key reused with other
    /// parameters, an unknown charge): a bug, not a customer error.
    #[error("payment provider rejected the request: {0}")]
    Rejected(String),
}

/// A payment provider.
#[async_trait]
pub trait PaymentGateway: Send + Sync + std::fmt::Debug {
    /// Charges a card once per idempotency key.
    ///
    /// # Errors
    /// A [`GatewayError`] when the outcome is unknown or the request was refused.
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError>;

    /// Refunds a captured charge once per idempotency key.
    ///
    /// # Errors
    /// A [`GatewayError`] when the outcome is unknown or the request was refused.
    async fn refund(&self, request: RefundRequest) -> Result<RefundReceipt, GatewayError>;

    /// What happened to the charge made with `idempotency_key`, if one was made: how a
    /// crashed purchase finds out whether it was charged.
    ///
    /// # Errors
    /// A [`GatewayError`] when the provider cannot answer.
    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError>;

    /// Where a charge that waited for the customer stands now, by its `reference`
    /// (from [`ChargeOutcome::ActionRequired`]).
    ///
    /// # Errors
    /// A [`GatewayError`] when the provider cannot answer or knows no such charge.
    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError>;

    /// Gives up a charge that waits for the customer, so that nothing can be taken any
    /// more, and answers how it ended: declined, or captured when the customer finished
    /// first.
    ///
    /// # Errors
    /// A [`GatewayError`] when the provider cannot answer or knows no such charge.
    async fn cancel_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError>;

    /// The idempotency key (our payment id) of the charge the provider knows as
    /// `reference`, if it is one of ours: how a refund or a dispute made at the
    /// provider is traced back to the payment.
    ///
    /// # Errors
    /// A [`GatewayError`] when the provider cannot answer.
    async fn payment_of(&self, reference: &str) -> Result<Option<String>, GatewayError>;
}
