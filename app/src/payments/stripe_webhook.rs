//! Stripe's webhooks: the `Stripe-Signature` check, and what an event says about one
//! of our payments.
//!
//! Stripe signs `<timestamp>.<raw body>` with HMAC-SHA256 under the endpoint's secret
//! (`whsec_...`) and sends `Stripe-Signature: t=<timestamp>,v1=<hex>[,v1=...]`. An
//! event is accepted when one `v1` signature matches one of our secrets (several
//! during a rotation) and its timestamp is within the tolerance of now, so that a
//! captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use thiserror::Error;
use ticketing_domain::{PaymentId, ReservationId};

use super::ChargeOutcome;
use crate::provider_reports::ChargeReport;

/// How far an event's timestamp may be from now: Stripe's libraries' default.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    #[error("no Stripe-Signature header")]
    MissingSignature,
    #[error("the Stripe-Signature header is not t=<timestamp>,v1=<signature>")]
    MalformedSignature,
    #[error("the event's timestamp is more than {0} seconds from now")]
    OutsideTolerance(i64),
    #[error("no signature matches a webhook secret of ours")]
    NoMatch,
    #[error("the event is not one Stripe sends: {0}")]
    MalformedEvent(String),
}

/// Checks `payload` against its `Stripe-Signature` header, with any of `secrets`, at
/// `now` (Unix seconds).
///
/// # Errors
/// A [`WebhookError`] saying why the request is not Stripe's.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[String],
    now: i64,
    tolerance: i64,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                if let Ok(signature) = hex::decode(value) {
                    signatures.push(signature);
                }
            }
            // Other schemes (v0, used only in test mode) are not ours to check.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
    if signatures.is_empty() {
        return Err(WebhookError::MalformedSignature);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(WebhookError::OutsideTolerance(tolerance));
    }
    let matches = secrets.iter().any(|secret| {
        signatures.iter().any(|signature| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            // Constant-time.
            mac.verify_slice(signature).is_ok()
        })
    });
    if matches {
        Ok(())
    } else {
        Err(WebhookError::NoMatch)
    }
}

/// The signature Stripe would send for `payload` at `timestamp` under `secret`: what
/// tests and local tools sign with.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A Stripe event, as much of it as is read here.
#[derive(Debug, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// What an event says about one of our payments: its outcome at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    pub reservation_id: ReservationId,
    pub payment_id: PaymentId,
    pub outcome: ChargeOutcome,
}

/// What an event says about a captured charge: the PaymentIntent (Stripe's reference
/// of our payment) and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeUpdate {
    pub payment_intent: String,
    pub report: ChargeReport,
}

impl StripeEvent {
    /// A refund (`charge.refunded`, with the total refunded so far) or a dispute
    /// (`charge.dispute.created`) of a charge made through a PaymentIntent. `None` for
    /// any other event. Whether the PaymentIntent is ours is for the caller to find out:
    /// these objects do not carry its metadata.
    pub fn charge_update(&self) -> Option<ChargeUpdate> {
        let object = &self.data.object;
        let payment_intent = object["payment_intent"].as_str()?.to_owned();
        let report = match self.kind.as_str() {
            "charge.refunded" => ChargeReport::Refunded {
                refunded_minor: object["amount_refunded"].as_i64()?,
                // The latest refund when the charge lists its refunds, else the charge.
                refund_reference: object["refunds"]["data"][0]["id"]
                    .as_str()
                    .or_else(|| object["id"].as_str())?
                    .to_owned(),
            },
            "charge.dispute.created" => ChargeReport::Disputed {
                dispute_reference: object["id"].as_str()?.to_owned(),
                reason: object["reason"].as_str().unwrap_or("general").to_owned(),
                amount_minor: object["amount"].as_i64()?,
            },
            _ => return None,
        };
        Some(ChargeUpdate {
            payment_intent,
            report,
        })
    }

    /// Parses a verified payload.
    ///
    /// # Errors
    /// [`WebhookError::MalformedEvent`] for a body that is not a Stripe event.
    pub fn parse(payload: &[u8]) -> Result<Self, WebhookError> {
        serde_json::from_slice(payload).map_err(|e| WebhookError::MalformedEvent(e.to_string()))
    }

    /// The outcome of one of our payments this event reports: a PaymentIntent that
    /// succeeded or failed, made by us (its metadata names our payment and
    /// reservation). `None` for any other event, which is acknowledged and ignored.
    pub fn payment_update(&self) -> Option<PaymentUpdate> {
        let intent = &self.data.object;
        let id = |name: &str| {
            intent["metadata"][name]
                .as_str()
                .and_then(|text| uuid::Uuid::try_parse(text).ok())
        };
        let (payment_id, reservation_id) = (id("payment_id")?, id("reservation_id")?);
        let outcome = match self.kind.as_str() {
            "payment_intent.succeeded" => ChargeOutcome::Captured {
                reference: intent["id"].as_str()?.to_owned(),
            },
            "payment_intent.payment_failed" => {
                let error = &intent["last_payment_error"];
                ChargeOutcome::Declined {
                    reason: error["decline_code"]
                        .as_str()
                        .or_else(|| error["code"].as_str())
                        .unwrap_or("card_declined")
                        .to_owned(),
                }
            }
            // Given up (by the sweeper, when the customer never authenticated).
            "payment_intent.canceled" => ChargeOutcome::Declined {
                reason: intent["cancellation_reason"]
                    .as_str()
                    .unwrap_or("canceled")
                    .to_owned(),
            },
            _ => return None,
        };
        Some(PaymentUpdate {
            reservation_id: ReservationId(reservation_id),
            payment_id: PaymentId(payment_id),
            outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &[u8] =
        br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{}}}"#;

    #[test]
    fn a_signed_event_is_accepted_with_any_current_secret_and_within_the_tolerance() {
        let header = sign(PAYLOAD, SECRET, 1_700_000_000);
        let verify_at = |secrets: &[&str], now: i64| {
            let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
            verify(Some(&header), PAYLOAD, &secrets, now, 300)
        };
        assert_eq!(verify_at(&[SECRET], 1_700_000_000), Ok(()));
        assert_eq!(verify_at(&["whsec_new", SECRET], 1_700_000_299), Ok(()));
        assert_eq!(
            verify_at(&[SECRET], 1_700_000_301),
            Err(WebhookError::OutsideTolerance(300))
        );
        assert_eq!(
            verify_at(&["whsec_other"], 1_700_000_000),
            Err(WebhookError::NoMatch)
        );
    }

    #[test]
    fn an_altered_body_or_a_malformed_header_is_refused() {
        let header = sign(PAYLOAD, SECRET, 1_700_000_000);
        let secrets = [SECRET.to_owned()];
        let mut altered = PAYLOAD.to_vec();
        altered[10] ^= 1;
        assert_eq!(
            verify(Some(&header), &altered, &secrets, 1_700_000_000, 300),
            Err(WebhookError::NoMatch)
        );
        for bad in ["", "t=1700000000", "v1=00", "t=soon,v1=00", "nonsense"] {
            assert_eq!(
                verify(Some(bad), PAYLOAD, &secrets, 1_700_000_000, 300),
                Err(WebhookError::MalformedSignature),
                "{bad}"
            );
        }
        assert_eq!(
            verify(None, PAYLOAD, &secrets, 1_700_000_000, 300),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256
        // -hmac whsec_test_secret
        assert_eq!(
            sign(br#"{"a":1}"#, SECRET, 1_700_000_000),
            format!("t=1700000000,v1={}", expected_hmac())
        );
    }

    fn expected_hmac() -> &'static str {
        "aecbc681fe3d2604c08ff8e880a0988d997a12367fcf9545e6a3b90c1dfc04b7"
    }

    #[test]
    fn succeeded_and_failed_intents_of_ours_are_payment_updates_and_the_rest_is_ignored() {
        let payment = uuid::Uuid::new_v4();
        let reservation = uuid::Uuid::new_v4();
        let event = |kind: &str, object: serde_json::Value| StripeEvent {
            id: "evt_1".into(),
            kind: kind.into(),
            data: EventData { object },
        };
        let metadata = serde_json::json!({"payment_id": payment, "reservation_id": reservation});
        let succeeded = event(
            "payment_intent.succeeded",
            serde_json::json!({"id": "pi_1", "metadata": metadata}),
        );
        assert_eq!(
            succeeded.payment_update(),
            Some(PaymentUpdate {
                reservation_id: ReservationId(reservation),
                payment_id: PaymentId(payment),
                outcome: ChargeOutcome::Captured {
                    reference: "pi_1".into()
                },
            })
        );
        let failed = event(
            "payment_intent.payment_failed",
            serde_json::json!({"id": "pi_2", "metadata": metadata,
                "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}}),
        );
        assert_eq!(
            failed.payment_update().map(|u| u.outcome),
            Some(ChargeOutcome::Declined {
                reason: "insufficient_funds".into()
            })
        );
        assert_eq!(
            event("charge.refunded", serde_json::json!({"metadata": metadata})).payment_update(),
            None
        );
        assert_eq!(
            event(
                "payment_intent.succeeded",
                serde_json::json!({"id": "pi_3", "metadata": {}})
            )
            .payment_update(),
            None,
            "not one of ours"
        );
        let cancelled = event(
            "payment_intent.canceled",
            serde_json::json!({"id": "pi_4", "metadata": metadata, "cancellation_reason": "abandoned"}),
        );
        assert_eq!(
            cancelled.payment_update().map(|u| u.outcome),
            Some(ChargeOutcome::Declined {
                reason: "abandoned".into()
            })
        );
    }

    #[test]
    fn refunds_and_disputes_of_a_payment_intent_s_charge_are_charge_updates() {
        let event = |kind: &str, object: serde_json::Value| StripeEvent {
            id: "evt_1".into(),
            kind: kind.into(),
            data: EventData { object },
        };
        let refunded = event(
            "charge.refunded",
            serde_json::json!({"id": "ch_1", "object": "charge", "payment_intent": "pi_1",
                "amount": 9000, "amount_refunded": 4000, "refunded": false,
                "refunds": {"object": "list", "data": [{"id": "re_2"}, {"id": "re_1"}]}}),
        );
        assert_eq!(
            refunded.charge_update(),
            Some(ChargeUpdate {
                payment_intent: "pi_1".into(),
                report: ChargeReport::Refunded {
                    refunded_minor: 4000,
                    refund_reference: "re_2".into()
                },
            })
        );
        // Without its refunds listed (Stripe's default since 2022-11-15): the charge.
        let unlisted = event(
            "charge.refunded",
            serde_json::json!({"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 9000}),
        );
        assert_eq!(
            unlisted.charge_update().map(|u| u.report),
            Some(ChargeReport::Refunded {
                refunded_minor: 9000,
                refund_reference: "ch_1".into()
            })
        );
        let disputed = event(
            "charge.dispute.created",
            serde_json::json!({"id": "dp_1", "object": "dispute", "payment_intent": "pi_1",
                "charge": "ch_1", "amount": 9000, "reason": "fraudulent"}),
        );
        assert_eq!(
            disputed.charge_update().map(|u| u.report),
            Some(ChargeReport::Disputed {
                dispute_reference: "dp_1".into(),
                reason: "fraudulent".into(),
                amount_minor: 9000
            })
        );
        // A charge made without a PaymentIntent is not one of ours.
        assert_eq!(
            event(
                "charge.refunded",
                serde_json::json!({"id": "ch_2", "amount_refunded": 1})
            )
            .charge_update(),
            None
        );
        assert_eq!(
            event(
                "payment_intent.succeeded",
                serde_json::json!({"payment_intent": "pi_1"})
            )
            .charge_update(),
            None
        );
    }
}
