//! A provider wrapped so that every call is counted by outcome and timed
//! (`payments_total`, `refunds_total`, `payment_provider_seconds`; see
//! `crate::metrics`). [`crate::Ticketing::new`] wraps whichever provider it is given.

use std::time::Instant;

use async_trait::async_trait;

use super::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt, RefundRequest,
};

#[derive(Debug)]
pub(crate) struct Measured<G: ?Sized>(pub(crate) std::sync::Arc<G>);

fn failure(error: &GatewayError) -> &'static str {
    match error {
        GatewayError::Timeout => "timeout",
        GatewayError::Unavailable(_) => "unavailable",
        GatewayError::Rejected(_) => "rejected",
    }
}

fn timed(call: &'static str, started: Instant) {
    metrics::histogram!("payment_provider_seconds", "call" => call)
        .record(started.elapsed().as_secs_f64());
}

#[async_trait]
impl<G: PaymentGateway + ?Sized> PaymentGateway for Measured<G> {
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        let started = Instant::now();
        let result = self.0.charge(request).await;
        timed("charge", started);
        let outcome = match &result {
            Ok(ChargeOutcome::Captured { .. }) => "captured",
            Ok(ChargeOutcome::Declined { .. }) => "declined",
            Ok(ChargeOutcome::ActionRequired { .. }) => "action_required",
            Err(error) => failure(error),
        };
        metrics::counter!("payments_total", "outcome" => outcome).increment(1);
        result
    }

    async fn refund(&self, request: RefundRequest) -> Result<RefundReceipt, GatewayError> {
        let started = Instant::now();
        let result = self.0.refund(request).await;
        timed("refund", started);
        let outcome = result.as_ref().map_or_else(failure, |_| "refunded");
        metrics::counter!("refunds_total", "outcome" => outcome).increment(1);
        result
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        let started = Instant::now();
        let result = self.0.find_charge(idempotency_key).await;
        timed("find_charge", started);
        result
    }

    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        let started = Instant::now();
        let result = self.0.charge_status(reference).await;
        timed("charge_status", started);
        result
    }

    async fn cancel_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        let started = Instant::now();
        let result = self.0.cancel_charge(reference).await;
        timed("cancel_charge", started);
        result
    }

    async fn payment_of(&self, reference: &str) -> Result<Option<String>, GatewayError> {
        let started = Instant::now();
        let result = self.0.payment_of(reference).await;
        timed("payment_of", started);
        result
    }
}
