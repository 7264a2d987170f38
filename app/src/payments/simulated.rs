//! A payment provider that behaves like a real one in test mode, without a network.
//!
//! Test card tokens, in the style of the big providers' test modes:
//!
//! | token                         | outcome                                            |
//! |-------------------------------|----------------------------------------------------|
//! | `tok_visa`, `tok_mastercard`, `tok_amex` | captured                                |
//! | `tok_chargeDeclined`          | declined: `card_declined`                          |
//! | `tok_insufficientFunds`       | declined: `insufficient_funds`                     |
//! | `tok_timeout`                 | no answer ([`GatewayError::Timeout`]); nothing charged |
//! | `tok_timeoutAfterCapture`     | charged, but the answer is lost (timeout); a retry with the same key returns the capture |
//! | `tok_threeDSecure2Required`   | waits for the customer (3-D Secure): [`ChargeOutcome::ActionRequired`] until [`SimulatedGateway::authenticate`] or [`PaymentGateway::cancel_charge`] settles it |
//! | anything else                 | declined: `invalid_card`                           |
//!
//! Every charge and refund is idempotent per key: a repeat returns the first outcome,
//! and a repeat with another amount or card is rejected, as real providers do.
//!
//! Its records (a [`ProviderLedger`]) are kept in the event store's database when it is
//! built with [`SimulatedGateway::sharing`]: every function of a deployment and the
//! sweeper then see the same charges, as they would a real provider's, so a charge
//! whose answer was lost in one is found by another. [`SimulatedGateway::new`] keeps
//! them in the process's memory (tests, the demo). References are derived from the
//! idempotency keys (`ch_sim_<key>`, `re_sim_<key>`), so that a charge captured by
//! one in-memory instance can still be refunded by another.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt, RefundRequest,
};
use ticketing_domain::Money;
use ticketing_store::{EventStore, MemoryLedger, ProviderLedger, StoreError};
use tokio::sync::Semaphore;

/// A charge as the ledger keeps it, under its idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Charge {
    amount: Money,
    card: String,
    outcome: ChargeOutcome,
}

/// A refund as the ledger keeps it, under its idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Refund {
    charge_reference: String,
    receipt: RefundReceipt,
}

/// The ledger's kinds of entries.
const CHARGE: &str = "charge";
const REFUND: &str = "refund";
/// The refund of a charge, by the charge's reference: a charge is refunded once.
const REFUND_OF: &str = "refund_of";
/// How a charge that waited for the customer ended, by its idempotency key: the first
/// of the customer's authentication and a cancellation wins.
const RESOLUTION: &str = "resolution";
/// The decline reason of a charge given up while it waited for the customer.
pub const AUTHENTICATION_CANCELLED: &str = "authentication_cancelled";
/// The decline reason of a charge whose customer failed to authenticate.
pub const AUTHENTICATION_FAILED: &str = "authentication_failed";

/// What every simulated charge reference starts with.
const CHARGE_PREFIX: &str = "ch_sim_";

/// A test-mode payment provider. Shared behind an `Arc`.
#[derive(Debug)]
pub struct SimulatedGateway {
    ledger: Arc<dyn ProviderLedger>,
    /// The same ledger when it is this process's memory: what the counts read.
    memory: Option<Arc<MemoryLedger>>,
    latency: Duration,
    gate: Option<Arc<ChargeGate>>,
}

impl Default for SimulatedGateway {
    fn default() -> Self {
        let memory = Arc::new(MemoryLedger::default());
        Self {
            ledger: memory.clone(),
            memory: Some(memory),
            latency: Duration::ZERO,
            gate: None,
        }
    }
}

/// A gate every charge waits at until it is opened, after telling whoever watches it
/// that it arrived: how a test holds a charge in flight at a known point, with no
/// head start measured in milliseconds.
#[derive(Debug)]
pub struct ChargeGate {
    arrived: Semaphore,
    open: Semaphore,
}

impl ChargeGate {
    /// A gate that holds every charge until [`ChargeGate::open`].
    pub fn closed() -> Arc<Self> {
        Arc::new(Self {
            arrived: Semaphore::new(0),
            open: Semaphore::new(0),
        })
    }

    /// The provider's side: says a charge arrived, then waits until the gate opens.
    pub async fn pass(&self) {
        self.arrived.add_permits(1);
        if let Ok(permit) = self.open.acquire().await {
            permit.forget();
        }
    }

    /// Waits until a charge has arrived at the gate (one per call).
    pub async fn charge_arrived(&self) {
        if let Ok(permit) = self.arrived.acquire().await {
            permit.forget();
        }
    }

    /// Lets every charge through, those waiting and those to come.
    pub fn open(&self) {
        self.open.close();
    }
}

impl SimulatedGateway {
    /// A provider whose records live in this process's memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider whose records live in `store`'s database (when it keeps them), shared
    /// with every process on that database.
    pub fn sharing(store: &dyn EventStore) -> Self {
        match store.provider_ledger() {
            Some(ledger) => Self {
                ledger,
                memory: None,
                ..Self::default()
            },
            None => Self::default(),
        }
    }

    /// Every call waits this long first, like a provider across a network.
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Every charge waits at `gate` first (see [`ChargeGate`]).
    pub fn gated(gate: Arc<ChargeGate>) -> Self {
        Self {
            gate: Some(gate),
            ..Self::default()
        }
    }

    /// How many charges were captured, whatever the number of calls (0 for a
    /// provider whose records are not in this process's memory).
    pub fn captured_count(&self) -> usize {
        self.memory.as_ref().map_or(0, |memory| {
            let captured =
                |outcome: &ChargeOutcome| matches!(outcome, ChargeOutcome::Captured { .. });
            let at_once = memory
                .entries(CHARGE)
                .into_iter()
                .filter_map(|entry| serde_json::from_value::<Charge>(entry).ok())
                .filter(|c| captured(&c.outcome))
                .count();
            let authenticated = memory
                .entries(RESOLUTION)
                .into_iter()
                .filter_map(|entry| serde_json::from_value::<ChargeOutcome>(entry).ok())
                .filter(captured)
                .count();
            at_once + authenticated
        })
    }

    /// The customer's side of 3-D Secure: finishes (`succeeded`) or fails the
    /// authentication of the charge `reference` that waits for it, unless it was
    /// settled already. Answers how the charge ended.
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] when no charge with this reference waits or waited for
    /// the customer.
    pub async fn authenticate(
        &self,
        reference: &str,
        succeeded: bool,
    ) -> Result<ChargeOutcome, GatewayError> {
        let outcome = if succeeded {
            ChargeOutcome::Captured {
                reference: reference.to_owned(),
            }
        } else {
            ChargeOutcome::Declined {
                reason: AUTHENTICATION_FAILED.into(),
            }
        };
        self.resolve(reference, outcome).await
    }

    /// Settles the charge `reference` that waits for the customer with `outcome`, unless
    /// it was settled already; answers how it ended.
    async fn resolve(
        &self,
        reference: &str,
        outcome: ChargeOutcome,
    ) -> Result<ChargeOutcome, GatewayError> {
        let key = self.waiting_charge(reference).await?;
        self.record_once(RESOLUTION, &key, &outcome).await
    }

    /// The idempotency key of the charge `reference`, when it waited for the customer.
    async fn waiting_charge(&self, reference: &str) -> Result<String, GatewayError> {
        let unknown =
            || GatewayError::Rejected(format!("no charge {reference} waits for the customer"));
        let key = reference.strip_prefix(CHARGE_PREFIX).ok_or_else(unknown)?;
        match self.entry::<Charge>(CHARGE, key).await? {
            Some(Charge {
                outcome: ChargeOutcome::ActionRequired { .. },
                ..
            }) => Ok(key.to_owned()),
            _ => Err(unknown()),
        }
    }

    /// A recorded charge as it stands now: one that waited for the customer takes its
    /// resolution, once there is one.
    async fn current(&self, key: &str, charge: Charge) -> Result<ChargeOutcome, GatewayError> {
        if !matches!(charge.outcome, ChargeOutcome::ActionRequired { .. }) {
            return Ok(charge.outcome);
        }
        Ok(self
            .entry::<ChargeOutcome>(RESOLUTION, key)
            .await?
            .unwrap_or(charge.outcome))
    }

    /// How many refunds were made, whatever the number of calls (0 for a provider
    /// whose records are not in this process's memory).
    pub fn refund_count(&self) -> usize {
        self.memory
            .as_ref()
            .map_or(0, |memory| memory.entries(REFUND).len())
    }

    /// The entry recorded under `(kind, key)`, `entry` when it is the first.
    async fn record_once<T: Serialize + DeserializeOwned>(
        &self,
        kind: &str,
        key: &str,
        entry: &T,
    ) -> Result<T, GatewayError> {
        let value = serde_json::to_value(entry).map_err(corrupt)?;
        let recorded = self
            .ledger
            .record_once(kind, key, value)
            .await
            .map_err(unavailable)?;
        serde_json::from_value(recorded).map_err(corrupt)
    }

    async fn entry<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<T>, GatewayError> {
        self.ledger
            .entry(kind, key)
            .await
            .map_err(unavailable)?
            .map(serde_json::from_value)
            .transpose()
            .map_err(corrupt)
    }

    async fn network(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        if let Some(gate) = &self.gate {
            gate.pass().await;
        }
        self.network().await;
        let same_request = |charge: &Charge| {
            if charge.amount != request.amount || charge.card != request.card.as_str() {
                return Err(GatewayError::Rejected(
                    "idempotency key reused with different parameters".into(),
                ));
            }
            Ok(charge.outcome.clone())
        };
        if let Some(previous) = self
            .entry::<Charge>(CHARGE, &request.idempotency_key)
            .await?
        {
            same_request(&previous)?;
            return self.current(&request.idempotency_key, previous).await;
        }
        let declined = |reason: &str| ChargeOutcome::Declined {
            reason: reason.into(),
        };
        let (outcome, answer_lost) = match request.card.as_str() {
            "tok_visa" | "tok_mastercard" | "tok_amex" => (
                ChargeOutcome::Captured {
                    reference: format!("{CHARGE_PREFIX}{}", request.idempotency_key),
                },
                false,
            ),
            "tok_timeoutAfterCapture" => (
                ChargeOutcome::Captured {
                    reference: format!("{CHARGE_PREFIX}{}", request.idempotency_key),
                },
                true,
            ),
            "tok_threeDSecure2Required" => (
                ChargeOutcome::ActionRequired {
                    reference: format!("{CHARGE_PREFIX}{}", request.idempotency_key),
                    client_secret: format!("{CHARGE_PREFIX}{}_secret_sim", request.idempotency_key),
                },
                false,
            ),
            "tok_timeout" => return Err(GatewayError::Timeout),
            "tok_chargeDeclined" => (declined("card_declined"), false),
            "tok_insufficientFunds" => (declined("insufficient_funds"), false),
            _ => (declined("invalid_card"), false),
        };
        // Two calls with one key racing: the first recorded is the charge.
        let recorded = self
            .record_once(
                CHARGE,
                &request.idempotency_key,
                &Charge {
                    amount: request.amount,
                    card: request.card.as_str().to_owned(),
                    outcome,
                },
            )
            .await?;
        same_request(&recorded)?;
        let outcome = self.current(&request.idempotency_key, recorded).await?;
        if answer_lost {
            return Err(GatewayError::Timeout);
        }
        Ok(outcome)
    }

    async fn refund(&self, request: RefundRequest) -> Result<RefundReceipt, GatewayError> {
        self.network().await;
        let same_charge = |refund: Refund| {
            if refund.charge_reference != request.charge_reference {
                return Err(GatewayError::Rejected(
                    "idempotency key reused with different parameters".into(),
                ));
            }
            Ok(refund.receipt)
        };
        if let Some(previous) = self
            .entry::<Refund>(REFUND, &request.idempotency_key)
            .await?
        {
            return same_charge(previous);
        }
        let charge_key = request
            .charge_reference
            .strip_prefix(CHARGE_PREFIX)
            .ok_or_else(|| {
                GatewayError::Rejected(format!("no captured charge {}", request.charge_reference))
            })?;
        match self.entry::<Charge>(CHARGE, charge_key).await? {
            // Captured by another in-memory instance: its reference says so.
            None if self.memory.is_some() => {}
            None => {
                return Err(GatewayError::Rejected(format!(
                    "no captured charge {}",
                    request.charge_reference
                )))
            }
            Some(charge)
                if !matches!(
                    self.current(charge_key, charge.clone()).await?,
                    ChargeOutcome::Captured { .. }
                ) =>
            {
                return Err(GatewayError::Rejected(format!(
                    "charge {} was not captured",
                    request.charge_reference
                )))
            }
            Some(charge) if charge.amount != request.amount => {
                return Err(GatewayError::Rejected(
                    "refund amount differs from the charge".into(),
                ))
            }
            Some(_) => {}
        }
        // A charge is refunded once: the first refund key to claim it keeps it.
        let claimed: String = self
            .record_once(
                REFUND_OF,
                &request.charge_reference,
                &request.idempotency_key,
            )
            .await?;
        if claimed != request.idempotency_key {
            return Err(GatewayError::Rejected("charge already refunded".into()));
        }
        let refund = self
            .record_once(
                REFUND,
                &request.idempotency_key,
                &Refund {
                    charge_reference: request.charge_reference.clone(),
                    receipt: RefundReceipt {
                        reference: format!("re_sim_{}", request.idempotency_key),
                    },
                },
            )
            .await?;
        same_charge(refund)
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        self.network().await;
        match self.entry::<Charge>(CHARGE, idempotency_key).await? {
            Some(charge) => self.current(idempotency_key, charge).await.map(Some),
            None => Ok(None),
        }
    }

    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        self.network().await;
        let key = reference.strip_prefix(CHARGE_PREFIX).unwrap_or_default();
        match self.entry::<Charge>(CHARGE, key).await? {
            Some(charge) => self.current(key, charge).await,
            None => Err(GatewayError::Rejected(format!("no charge {reference}"))),
        }
    }

    async fn payment_of(&self, reference: &str) -> Result<Option<String>, GatewayError> {
        self.network().await;
        let Some(key) = reference.strip_prefix(CHARGE_PREFIX) else {
            return Ok(None);
        };
        Ok(self
            .entry::<Charge>(CHARGE, key)
            .await?
            .map(|_| key.to_owned()))
    }

    async fn cancel_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        self.network().await;
        match self
            .resolve(
                reference,
                ChargeOutcome::Declined {
                    reason: AUTHENTICATION_CANCELLED.into(),
                },
            )
            .await
        {
            // Not waiting for the customer: it ended as it was recorded.
            Err(GatewayError::Rejected(_)) => self.charge_status(reference).await,
            resolved => resolved,
        }
    }
}

fn unavailable(error: StoreError) -> GatewayError {
    GatewayError::Unavailable(format!("the provider's records: {error}"))
}

fn corrupt(error: serde_json::Error) -> GatewayError {
    GatewayError::Unavailable(format!("the provider's records are unreadable: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::CardToken;
    use ticketing_domain::Currency;

    fn charge(key: &str, card: &str, amount: i64) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.into(),
            amount: Money::unit_price(amount, Currency::parse("EUR").unwrap()).unwrap(),
            card: CardToken::parse(card).unwrap(),
            description: "test".into(),
            reservation_id: None,
        }
    }

    #[tokio::test]
    async fn test_cards_succeed_decline_or_time_out() {
        let gateway = SimulatedGateway::new();
        assert!(matches!(
            gateway.charge(charge("a", "tok_visa", 100)).await,
            Ok(ChargeOutcome::Captured { .. })
        ));
        assert_eq!(
            gateway.charge(charge("b", "tok_chargeDeclined", 100)).await,
            Ok(ChargeOutcome::Declined {
                reason: "card_declined".into()
            })
        );
        assert_eq!(
            gateway.charge(charge("c", "tok_timeout", 100)).await,
            Err(GatewayError::Timeout)
        );
        assert_eq!(gateway.find_charge("c").await, Ok(None));
        assert_eq!(gateway.captured_count(), 1);
    }

    #[tokio::test]
    async fn a_retried_charge_never_charges_twice() {
        let gateway = SimulatedGateway::new();
        let first = gateway.charge(charge("k", "tok_visa", 100)).await.unwrap();
        let again = gateway.charge(charge("k", "tok_visa", 100)).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(gateway.captured_count(), 1);
        assert!(matches!(
            gateway.charge(charge("k", "tok_visa", 200)).await,
            Err(GatewayError::Rejected(_))
        ));
    }

    #[tokio::test]
    async fn a_charge_whose_answer_was_lost_is_found_by_its_key() {
        let gateway = SimulatedGateway::new();
        let request = charge("k", "tok_timeoutAfterCapture", 100);
        assert_eq!(
            gateway.charge(request.clone()).await,
            Err(GatewayError::Timeout)
        );
        let found = gateway.find_charge("k").await.unwrap();
        assert!(matches!(found, Some(ChargeOutcome::Captured { .. })));
        assert_eq!(gateway.charge(request).await.unwrap(), found.unwrap());
        assert_eq!(gateway.captured_count(), 1);
    }

    #[tokio::test]
    async fn a_charge_captured_by_another_instance_can_be_refunded() {
        let (capturing, refunding) = (SimulatedGateway::new(), SimulatedGateway::new());
        let request = charge("k", "tok_visa", 100);
        let ChargeOutcome::Captured { reference } =
            capturing.charge(request.clone()).await.unwrap()
        else {
            panic!("not captured")
        };
        let refund = RefundRequest {
            idempotency_key: "refund-k".into(),
            charge_reference: reference,
            amount: request.amount,
        };
        assert!(refunding.refund(refund.clone()).await.is_ok());
        let unknown = RefundRequest {
            charge_reference: "ch_other_1".into(),
            ..refund
        };
        assert!(matches!(
            refunding.refund(unknown).await,
            Err(GatewayError::Rejected(_))
        ));
    }

    #[tokio::test]
    async fn refunds_are_idempotent_and_happen_once_per_charge() {
        let gateway = SimulatedGateway::new();
        let request = charge("k", "tok_visa", 100);
        let ChargeOutcome::Captured { reference } = gateway.charge(request.clone()).await.unwrap()
        else {
            panic!("not captured")
        };
        let refund = |key: &str| RefundRequest {
            idempotency_key: key.into(),
            charge_reference: reference.clone(),
            amount: request.amount,
        };
        let first = gateway.refund(refund("r")).await.unwrap();
        assert_eq!(gateway.refund(refund("r")).await.unwrap(), first);
        assert!(matches!(
            gateway.refund(refund("other")).await,
            Err(GatewayError::Rejected(_))
        ));
        assert_eq!(gateway.refund_count(), 1);
    }
}
