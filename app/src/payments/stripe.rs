//! Stripe as the payment provider ([ADR 19](../../../docs/adr/0019-stripe-adapter.md)):
//! PaymentIntents created and confirmed in one call, refunds, and the charge of a
//! payment found again by its id, over Stripe's HTTP API with `reqwest` (rustls).
//!
//! What the saga relies on holds as with the simulated provider: the payment id is the
//! `Idempotency-Key` of the PaymentIntent (and of nothing else), so a retried charge,
//! however often, is one charge; a refund has its own key. Calls that time out, meet a
//! `429` or a `5xx` are retried here with back-off under the same key, then reported as
//! [`GatewayError::Timeout`] or [`GatewayError::Unavailable`]: the outcome is unknown,
//! and the sweeper settles the payment later from [`PaymentGateway::find_charge`].
//!
//! A PaymentIntent that needs 3-D Secure (`requires_action`) is answered as
//! [`ChargeOutcome::ActionRequired`] with its client secret: the customer's browser
//! finishes it with Stripe.js (`stripe.handleNextAction`), and the outcome arrives by
//! webhook, or is read back ([`PaymentGateway::charge_status`]) when the customer pays
//! again. One never finished is cancelled when its hold runs out
//! ([`PaymentGateway::cancel_charge`]).

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundReceipt, RefundRequest,
};

/// Stripe's API.
pub const STRIPE_API: &str = "https://api.stripe.com";
/// The API version the request and response shapes here are written against.
pub const STRIPE_VERSION: &str = "2024-06-20";
/// How many times a call that got no usable answer is sent again.
const RETRIES: u32 = 3;
/// How long after a payment Stripe's search may still not list its PaymentIntent.
pub const SEARCH_LAG: Duration = Duration::from_secs(600);

/// Where and how to reach Stripe.
#[derive(Clone)]
pub struct StripeConfig {
    /// `sk_test_...` or `sk_live_...`.
    pub secret_key: String,
    /// [`STRIPE_API`], or a stand-in's address in tests.
    pub api_base: String,
    /// How long one call may take before it counts as timed out.
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"..")
            .field("api_base", &self.api_base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl StripeConfig {
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: STRIPE_API.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The Stripe adapter.
#[derive(Debug, Clone)]
pub struct StripeGateway {
    http: reqwest::Client,
    config: StripeConfig,
}

/// A PaymentIntent, as much of it as is read here.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    last_payment_error: Option<StripeError>,
    #[serde(default)]
    cancellation_reason: Option<String>,
}

/// Stripe's `error` object.
#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl StripeError {
    /// Why a card was refused: the issuer's decline code when there is one.
    fn reason(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .unwrap_or_else(|| "card_declined".to_owned())
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    data: Vec<PaymentIntent>,
}

#[derive(Debug, Deserialize)]
struct StripeRefund {
    id: String,
}

/// An answer: its status and body.
struct Answer {
    status: reqwest::StatusCode,
    body: String,
}

impl StripeGateway {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(config: StripeConfig) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| GatewayError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// Sends a request built by `request` until it is answered with something other
    /// than a `429` or a `5xx`, at most [`RETRIES`] more times, waiting longer each time.
    async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, GatewayError> {
        let mut attempt = 0;
        loop {
            let sent = request()
                .bearer_auth(&self.config.secret_key)
                .header("Stripe-Version", STRIPE_VERSION)
                .send()
                .await;
            let failure = match sent {
                Ok(response) => {
                    let status = response.status();
                    let retryable = status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error();
                    let body = response.text().await.unwrap_or_default();
                    if !retryable {
                        return Ok(Answer { status, body });
                    }
                    GatewayError::Unavailable(format!("Stripe answered {status}"))
                }
                Err(e) if e.is_timeout() => GatewayError::Timeout,
                Err(e) => GatewayError::Unavailable(format!("Stripe: {e}")),
            };
            if attempt >= RETRIES {
                return Err(failure);
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100 * 4u64.pow(attempt - 1))).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base.trim_end_matches('/'))
    }
}

/// The body of an answer that is not a success: Stripe's error, or what it said.
fn error_of(answer: &Answer) -> StripeError {
    serde_json::from_str::<ErrorBody>(&answer.body)
        .map(|body| body.error)
        .unwrap_or_else(|_| StripeError {
            message: Some(format!("{}: {}", answer.status, answer.body)),
            ..StripeError::default()
        })
}

fn parse<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, GatewayError> {
    serde_json::from_str(&answer.body)
        .map_err(|e| GatewayError::Unavailable(format!("unreadable answer from Stripe: {e}")))
}

/// Whether the payment `payment_id` (a UUIDv7) was made less than [`SEARCH_LAG`] ago.
/// An id that carries no instant counts as old.
fn recent(payment_id: &str) -> bool {
    let Some((seconds, _)) = uuid::Uuid::try_parse(payment_id)
        .ok()
        .and_then(|id| id.get_timestamp())
        .map(|at| at.to_unix())
    else {
        return false;
    };
    let made = std::time::UNIX_EPOCH + Duration::from_secs(seconds);
    std::time::SystemTime::now()
        .duration_since(made)
        .is_ok_and(|age| age < SEARCH_LAG)
}

/// A request Stripe refused as such: a bug or a misconfiguration, not the customer's.
fn rejected(error: &StripeError) -> GatewayError {
    GatewayError::Rejected(format!(
        "{} {}: {}",
        error.kind,
        error.code.as_deref().unwrap_or_default(),
        error.message.as_deref().unwrap_or_default()
    ))
}

/// The path of the PaymentIntent `id` (and of one of its actions, `action`), the id
/// checked first: it is the provider's, but it goes into a URL.
fn intent_path(id: &str, action: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("/v1/payment_intents/{id}{action}")
}

/// The outcome of the PaymentIntent in a successful answer.
fn settled(answer: &Answer) -> Result<ChargeOutcome, GatewayError> {
    if !answer.status.is_success() {
        return Err(rejected(&error_of(answer)));
    }
    let intent: PaymentIntent = parse(answer)?;
    outcome_of(&intent)
        .ok_or_else(|| GatewayError::Unavailable("the charge is still processing".into()))
}

/// What a PaymentIntent's status says about its charge; `None` when nothing is
/// settled yet (still processing).
fn outcome_of(intent: &PaymentIntent) -> Option<ChargeOutcome> {
    match intent.status.as_str() {
        "succeeded" => Some(ChargeOutcome::Captured {
            reference: intent.id.clone(),
        }),
        "requires_action" => Some(ChargeOutcome::ActionRequired {
            reference: intent.id.clone(),
            client_secret: intent.client_secret.clone().unwrap_or_default(),
        }),
        // Confirmed with `confirm=true`, so only a PaymentIntent changed elsewhere gets
        // here; nothing was taken.
        "requires_confirmation" => Some(ChargeOutcome::Declined {
            reason: "requires_confirmation".into(),
        }),
        "requires_payment_method" => Some(ChargeOutcome::Declined {
            reason: intent
                .last_payment_error
                .as_ref()
                .map_or_else(|| "card_declined".to_owned(), StripeError::reason),
        }),
        "canceled" => Some(ChargeOutcome::Declined {
            reason: intent.last_payment_error.as_ref().map_or_else(
                || {
                    intent
                        .cancellation_reason
                        .clone()
                        .unwrap_or_else(|| "canceled".to_owned())
                },
                StripeError::reason,
            ),
        }),
        _ => None,
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        let amount = request.amount.amount_minor.to_string();
        let currency = request.amount.currency.as_str().to_ascii_lowercase();
        let token = request.card.as_str();
        let mut form: Vec<(&str, &str)> = vec![
            ("amount", &amount),
            ("currency", &currency),
            ("confirm", "true"),
            ("description", &request.description),
            ("metadata[payment_id]", &request.idempotency_key),
            ("automatic_payment_methods[enabled]", "true"),
            // Cards only: 3-D Secure is finished in the page by Stripe.js, with no
            // redirect to come back from.
            ("automatic_payment_methods[allow_redirects]", "never"),
        ];
        let reservation_id = request.reservation_id.map(|id| id.to_string());
        if let Some(id) = &reservation_id {
            form.push(("metadata[reservation_id]", id));
        }
        if token.starts_with("pm_") {
            form.push(("payment_method", token));
        } else {
            // A card token from Stripe.js or a test token (`tok_visa`).
            form.push(("payment_method_data[type]", "card"));
            form.push(("payment_method_data[card][token]", token));
        }
        let answer = self
            .send(|| {
                self.http
                    .post(self.url("/v1/payment_intents"))
                    .header("Idempotency-Key", &request.idempotency_key)
                    .form(&form)
            })
            .await?;
        if answer.status.is_success() {
            let intent: PaymentIntent = parse(&answer)?;
            return outcome_of(&intent).ok_or(GatewayError::Timeout);
        }
        let error = error_of(&answer);
        if error.kind == "card_error" {
            return Ok(ChargeOutcome::Declined {
                reason: error.reason(),
            });
        }
        Err(rejected(&error))
    }

    async fn refund(&self, request: RefundRequest) -> Result<RefundReceipt, GatewayError> {
        let amount = request.amount.amount_minor.to_string();
        let form = [
            ("payment_intent", request.charge_reference.as_str()),
            ("amount", &amount),
        ];
        let answer = self
            .send(|| {
                self.http
                    .post(self.url("/v1/refunds"))
                    .header("Idempotency-Key", &request.idempotency_key)
                    .form(&form)
            })
            .await?;
        if !answer.status.is_success() {
            return Err(rejected(&error_of(&answer)));
        }
        let refund: StripeRefund = parse(&answer)?;
        Ok(RefundReceipt {
            reference: refund.id,
        })
    }

    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        let answer = self
            .send(|| self.http.get(self.url(&intent_path(reference, ""))))
            .await?;
        settled(&answer)
    }

    async fn cancel_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        let key = format!("cancel-{reference}");
        let answer = self
            .send(|| {
                self.http
                    .post(self.url(&intent_path(reference, "/cancel")))
                    .header("Idempotency-Key", &key)
            })
            .await?;
        if answer.status == reqwest::StatusCode::BAD_REQUEST
            && error_of(&answer).code.as_deref() == Some("payment_intent_unexpected_state")
        {
            // Settled meanwhile (the customer finished, or it was cancelled already).
            return self.charge_status(reference).await;
        }
        settled(&answer)
    }

    async fn payment_of(&self, reference: &str) -> Result<Option<String>, GatewayError> {
        let answer = self
            .send(|| self.http.get(self.url(&intent_path(reference, ""))))
            .await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(rejected(&error_of(&answer)));
        }
        let intent: PaymentIntent = parse(&answer)?;
        Ok(intent.metadata.get("payment_id").cloned())
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        // Stripe's search index follows writes by up to a minute, more during an
        // incident: a charge not listed yet is not a charge that never happened. Until
        // the payment is older than SEARCH_LAG (its id is a UUIDv7, which carries the
        // instant it was made) "not found" is answered as "ask again later".
        let query = format!(
            "metadata['payment_id']:'{}'",
            idempotency_key.replace('\'', "\\'")
        );
        let answer = self
            .send(|| {
                self.http
                    .get(self.url("/v1/payment_intents/search"))
                    .query(&[("query", query.as_str())])
            })
            .await?;
        if !answer.status.is_success() {
            return Err(rejected(&error_of(&answer)));
        }
        let found: SearchResult = parse(&answer)?;
        match found.data.first() {
            None if recent(idempotency_key) => Err(GatewayError::Unavailable(
                "the charge is not listed by Stripe's search yet".into(),
            )),
            None => Ok(None),
            Some(intent) => outcome_of(intent)
                .map(Some)
                .ok_or_else(|| GatewayError::Unavailable("the charge is still processing".into())),
        }
    }
}
