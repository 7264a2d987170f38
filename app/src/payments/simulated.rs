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
//! | anything else                 | declined: `invalid_card`                           |
//!
//! Every charge and refund is idempotent per key: a repeat returns the first outcome,
//! and a repeat with another amount or card is rejected, as real providers do.
//!
//! Each process keeps its own ledger, but references are derived from the idempotency
//! keys (`ch_sim_<key>`, `re_sim_<key>`), so that several instances (the Lambda
//! functions of one deployment) agree: a charge captured by one can be refunded by
//! another. Across instances the provider cannot tell a second refund of the same
//! charge, nor find a charge whose answer was lost; the payment aggregate refuses
//! refunding twice, and real providers answer both from their own records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt, RefundRequest,
};
use ticketing_domain::Money;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
struct Charge {
    amount: Money,
    card: String,
    outcome: ChargeOutcome,
}

#[derive(Debug, Default)]
struct Ledger {
    charges: HashMap<String, Charge>,
    refunds: HashMap<String, (String, RefundReceipt)>,
}

/// What every simulated charge reference starts with.
const CHARGE_PREFIX: &str = "ch_sim_";

/// An in-memory test-mode payment provider. Shared behind an `Arc`, it keeps its
/// ledger for the life of the process.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    ledger: Mutex<Ledger>,
    latency: Duration,
    gate: Option<Arc<ChargeGate>>,
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
    pub fn new() -> Self {
        Self::default()
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

    /// How many charges were captured, whatever the number of calls.
    pub fn captured_count(&self) -> usize {
        self.ledger()
            .charges
            .values()
            .filter(|c| matches!(c.outcome, ChargeOutcome::Captured { .. }))
            .count()
    }

    /// How many refunds were made, whatever the number of calls.
    pub fn refund_count(&self) -> usize {
        self.ledger().refunds.len()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let mut ledger = self.ledger();
        if let Some(previous) = ledger.charges.get(&request.idempotency_key) {
            if previous.amount != request.amount || previous.card != request.card.as_str() {
                return Err(GatewayError::Rejected(
                    "idempotency key reused with different parameters".into(),
                ));
            }
            return Ok(previous.outcome.clone());
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
            "tok_timeout" => return Err(GatewayError::Timeout),
            "tok_chargeDeclined" => (declined("card_declined"), false),
            "tok_insufficientFunds" => (declined("insufficient_funds"), false),
            _ => (declined("invalid_card"), false),
        };
        ledger.charges.insert(
            request.idempotency_key,
            Charge {
                amount: request.amount,
                card: request.card.as_str().to_owned(),
                outcome: outcome.clone(),
            },
        );
        if answer_lost {
            return Err(GatewayError::Timeout);
        }
        Ok(outcome)
    }

    async fn refund(&self, request: RefundRequest) -> Result<RefundReceipt, GatewayError> {
        self.network().await;
        let mut ledger = self.ledger();
        if let Some((charge, receipt)) = ledger.refunds.get(&request.idempotency_key) {
            if *charge != request.charge_reference {
                return Err(GatewayError::Rejected(
                    "idempotency key reused with different parameters".into(),
                ));
            }
            return Ok(receipt.clone());
        }
        let captured = ledger.charges.values().find(|c| {
            matches!(&c.outcome, ChargeOutcome::Captured { reference } if *reference == request.charge_reference)
        });
        match captured {
            // Captured by another instance of the provider: its reference says so.
            None if request.charge_reference.starts_with(CHARGE_PREFIX) => {}
            None => {
                return Err(GatewayError::Rejected(format!(
                    "no captured charge {}",
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
        if ledger
            .refunds
            .values()
            .any(|(charge, _)| *charge == request.charge_reference)
        {
            return Err(GatewayError::Rejected("charge already refunded".into()));
        }
        let receipt = RefundReceipt {
            reference: format!("re_sim_{}", request.idempotency_key),
        };
        ledger.refunds.insert(
            request.idempotency_key,
            (request.charge_reference, receipt.clone()),
        );
        Ok(receipt)
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        self.network().await;
        Ok(self
            .ledger()
            .charges
            .get(idempotency_key)
            .map(|c| c.outcome.clone()))
    }
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
