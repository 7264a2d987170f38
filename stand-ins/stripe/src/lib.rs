//! A STAND-IN for Stripe's API, for tests and local runs only: an HTTP server that
//! answers the endpoints the Stripe adapter uses with the request and response shapes
//! Stripe documents (API version 2024-06-20), so that the adapter, the purchase flow
//! and the Lambda functions can be exercised without a network. It is not Stripe: it
//! knows only what is below, and keeps everything in memory.
//!
//! - `POST /v1/payment_intents` (form, `confirm=true`): the outcome by test card, as in
//!   Stripe's test mode: `tok_visa`/`pm_card_visa` succeed, `tok_chargeDeclined` is
//!   declined (`402`, `card_error`, `card_declined`), `tok_chargeDeclinedInsufficientFunds`
//!   too with `decline_code: insufficient_funds`, `tok_threeDSecure2Required` answers
//!   `requires_action` with a `client_secret` and `next_action: use_stripe_sdk`.
//!   One card is the stand-in's own, not Stripe's: `tok_standinAnswerLost` succeeds, but
//!   the request and every retry of it are answered `500`, as when Stripe's answer never
//!   reaches the caller (the PaymentIntent is listed by the search).
//! - `GET /v1/payment_intents/{id}`, `POST /v1/payment_intents/{id}/cancel` (a
//!   PaymentIntent that succeeded or was cancelled is
//!   `400 payment_intent_unexpected_state`).
//! - `GET /v1/payment_intents/search?query=metadata['payment_id']:'<id>'`.
//! - `POST /v1/refunds` (form: `payment_intent`, `amount`): a second refund of a fully
//!   refunded intent is `400 charge_already_refunded`.
//! - `Idempotency-Key` on POSTs: the same key with the same parameters replays the
//!   first answer; with other parameters it is `400 idempotency_error`.
//! - `Authorization: Bearer <key>` must be the stand-in's key, else `401`.
//! - The customer's side of 3-D Secure, which Stripe runs in the customer's browser:
//!   [`StandIn::authenticate`], or over HTTP `POST /stand-in/payment_intents/{id}/authenticate`
//!   with the form `outcome=succeeded|failed` (not a Stripe endpoint). The PaymentIntent
//!   succeeds or fails (`requires_payment_method`,
//!   `payment_intent_authentication_failure`), and the event Stripe would send
//!   (`payment_intent.succeeded` / `payment_intent.payment_failed`) is answered and, with
//!   [`Webhooks`] set, delivered signed to the webhook endpoint as Stripe does.
//! - What happens in Stripe's dashboard afterwards, also not Stripe endpoints:
//!   `POST /stand-in/payment_intents/{id}/refund` (form `amount`, default what is left)
//!   makes `charge.refunded`, `POST /stand-in/payment_intents/{id}/dispute` (form
//!   `reason`) makes `charge.dispute.created` ([`StandIn::refund_in_dashboard`],
//!   [`StandIn::dispute`]), delivered like the others.
//! - [`StandIn::fail_next`]: the next requests answer `500` or `429`, as an incident.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The stand-in's secret key.
pub const STAND_IN_KEY: &str = "sk_test_stand_in";

/// Where the stand-in delivers the events it makes, and the secret it signs them with.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// The endpoint, e.g. `http://127.0.0.1:9000/v1/webhooks/stripe`.
    pub url: String,
    /// `whsec_...`, as the endpoint's `STRIPE_WEBHOOK_SECRET`.
    pub secret: String,
}

#[derive(Default)]
struct Books {
    /// Events made so far (their ids are numbered).
    events: usize,
    /// PaymentIntents by id, in creation order of their ids.
    intents: Vec<Value>,
    /// Refunded amount by PaymentIntent id.
    refunded: HashMap<String, i64>,
    /// Answers by idempotency key: the parameters and the answer.
    replays: HashMap<String, (FormFields, Answer)>,
    /// Failures to answer next, in order.
    failures: Vec<StatusCode>,
    /// Requests that reached the books (not failed on purpose, not replayed).
    created_intents: usize,
    requests: Vec<(String, Vec<(String, String)>)>,
}

impl Books {
    /// How much of the PaymentIntent `id` was refunded so far.
    fn refunded_of(&self, id: &str) -> i64 {
        self.refunded.get(id).copied().unwrap_or_default()
    }

    /// Refunds `amount` more of the PaymentIntent `id`, of `total`: the total refunded
    /// after it, or `None` (nothing recorded) when that would exceed the charge.
    fn refund(&mut self, id: &str, total: i64, amount: i64) -> Option<i64> {
        let after = self.refunded_of(id) + amount;
        if after > total {
            return None;
        }
        self.refunded.insert(id.to_owned(), after);
        Some(after)
    }
}

/// A running stand-in.
#[derive(Clone)]
pub struct StandIn {
    pub base_url: String,
    books: Arc<Mutex<Books>>,
}

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    books: Arc<Mutex<Books>>,
    webhooks: Option<Webhooks>,
    http: reqwest::Client,
}

impl StandIn {
    /// A stand-in on a free loopback port that delivers no webhooks.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, None)
    }

    /// A stand-in answering on `listener`, delivering its events to `webhooks` if set.
    ///
    /// # Panics
    /// When the listener has no local address.
    pub fn serve(listener: tokio::net::TcpListener, webhooks: Option<Webhooks>) -> Self {
        let books = Arc::new(Mutex::new(Books::default()));
        let shared = Shared {
            books: books.clone(),
            webhooks,
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/search", get(search_intents))
            .route("/v1/payment_intents/{id}", get(get_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund))
            .route(
                "/stand-in/payment_intents/{id}/authenticate",
                post(authenticate_intent),
            )
            .route(
                "/stand-in/payment_intents/{id}/refund",
                post(refund_in_dashboard),
            )
            .route(
                "/stand-in/payment_intents/{id}/dispute",
                post(dispute_intent),
            )
            .with_state(shared);
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}"),
            books,
        }
    }

    /// The customer's side of 3-D Secure: the PaymentIntent `id` that waits for it
    /// succeeds (`succeeded`) or fails. Answers the event Stripe would send about it
    /// (not delivered), or `None` when no such PaymentIntent waits.
    pub fn authenticate(&self, id: &str, succeeded: bool) -> Option<Value> {
        authenticated(&mut self.books(), id, succeeded)
    }

    /// A refund of `amount` (minor units; what is left when `None`) of the succeeded
    /// PaymentIntent `id`, made in the dashboard: the `charge.refunded` event, or
    /// `None` when there is nothing left to refund.
    pub fn refund_in_dashboard(&self, id: &str, amount: Option<i64>) -> Option<Value> {
        refunded_in_dashboard(&mut self.books(), id, amount)
    }

    /// A dispute of the succeeded PaymentIntent `id`: the `charge.dispute.created`
    /// event, or `None` when it did not succeed.
    pub fn dispute(&self, id: &str, reason: &str) -> Option<Value> {
        disputed(&mut self.books(), id, reason)
    }

    /// The PaymentIntent `id` as the stand-in keeps it.
    pub fn intent(&self, id: &str) -> Option<Value> {
        self.books()
            .intents
            .iter()
            .find(|i| i["id"] == json!(id))
            .cloned()
    }

    /// The next requests answer these statuses, one each, before any is served.
    pub fn fail_next(&self, statuses: &[StatusCode]) {
        self.books().failures.extend_from_slice(statuses);
    }

    /// How many PaymentIntents were created (replays and failures not counted).
    pub fn created_intents(&self) -> usize {
        self.books().created_intents
    }

    /// Every request that reached the books: its path and form.
    pub fn requests(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.books().requests.clone()
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap()
    }
}

/// A form body, field by field.
type FormFields = Vec<(String, String)>;
/// An answer: its status and JSON body.
type Answer = (u16, Value);

fn error(status: StatusCode, kind: &str, code: &str, extra: Value) -> Answer {
    let mut error = json!({"type": kind, "code": code, "message": format!("stand-in: {code}")});
    if let (Some(error), Some(extra)) = (error.as_object_mut(), extra.as_object()) {
        error.extend(extra.clone());
    }
    (status.as_u16(), json!({ "error": error }))
}

fn reply((status, body): Answer) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

/// What every request goes through first: a planned failure, the key, a replay.
fn before(
    books: &mut Books,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<Option<String>, Answer> {
    if !books.failures.is_empty() {
        let status = books.failures.remove(0);
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            "rate_limit"
        } else {
            "api_error"
        };
        return Err(error(status, kind, kind, Value::Null));
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {STAND_IN_KEY}"));
    if !authorized {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            Value::Null,
        ));
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some((params, answer)) = key.as_ref().and_then(|k| books.replays.get(k)) {
        if params != form {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                "idempotency_key_in_use",
                Value::Null,
            ));
        }
        return Err(answer.clone());
    }
    Ok(key)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn create_intent(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let mut books = shared.books.lock().unwrap();
    let key = match before(&mut books, &headers, &form) {
        Ok(key) => key,
        Err(answer) => return reply(answer),
    };
    books
        .requests
        .push(("/v1/payment_intents".into(), form.clone()));
    let card = field(&form, "payment_method")
        .or_else(|| field(&form, "payment_method_data[card][token]"))
        .unwrap_or_default()
        .to_owned();
    let id = format!("pi_standin_{}", books.intents.len() + 1);
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), Value::String(v.clone())))
        })
        .collect();
    let amount: i64 = field(&form, "amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or_default();
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "currency": field(&form, "currency"),
        "metadata": metadata,
        "status": "succeeded",
        "client_secret": format!("{id}_secret_standin"),
        "last_payment_error": null,
        "cancellation_reason": null,
        "next_action": null,
    });
    let decline = |decline_code: Option<&str>| {
        let mut e = json!({"type": "card_error", "code": "card_declined"});
        if let Some(code) = decline_code {
            e["decline_code"] = json!(code);
        }
        e
    };
    let answer = match card.as_str() {
        "tok_visa" | "pm_card_visa" | "tok_mastercard" => (200, intent.clone()),
        "tok_standinAnswerLost" => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "answer_lost",
            Value::Null,
        ),
        "tok_threeDSecure2Required" | "pm_card_threeDSecure2Required" => {
            intent["status"] = json!("requires_action");
            intent["next_action"] = json!({"type": "use_stripe_sdk", "use_stripe_sdk": {}});
            (200, intent.clone())
        }
        "tok_chargeDeclined" | "tok_chargeDeclinedInsufficientFunds" => {
            let code =
                (card == "tok_chargeDeclinedInsufficientFunds").then_some("insufficient_funds");
            intent["status"] = json!("requires_payment_method");
            intent["last_payment_error"] = decline(code);
            let (status, mut body) = error(
                StatusCode::PAYMENT_REQUIRED,
                "card_error",
                "card_declined",
                json!({"payment_intent": intent.clone()}),
            );
            if let Some(code) = code {
                body["error"]["decline_code"] = json!(code);
            }
            (status, body)
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "resource_missing",
            json!({"param": "payment_method"}),
        ),
    };
    if answer.0 == 200 || answer.0 == 402 || card == "tok_standinAnswerLost" {
        books.intents.push(intent);
        books.created_intents += 1;
    }
    if let Some(key) = key {
        books.replays.insert(key, (form, answer.clone()));
    }
    reply(answer)
}

async fn search_intents(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut books = shared.books.lock().unwrap();
    if let Err(answer) = before(&mut books, &headers, &[]) {
        return reply(answer);
    }
    // Only the form the adapter sends: metadata['payment_id']:'<id>'.
    let wanted = query
        .get("query")
        .and_then(|q| q.strip_prefix("metadata['payment_id']:'"))
        .and_then(|q| q.strip_suffix('\''))
        .map(str::to_owned);
    let Some(wanted) = wanted else {
        return reply(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            json!({"param": "query"}),
        ));
    };
    let data: Vec<Value> = books
        .intents
        .iter()
        .filter(|i| i["metadata"]["payment_id"] == json!(wanted))
        .cloned()
        .collect();
    reply((
        200,
        json!({"object": "search_result", "data": data, "has_more": false}),
    ))
}

async fn create_refund(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let mut books = shared.books.lock().unwrap();
    let key = match before(&mut books, &headers, &form) {
        Ok(key) => key,
        Err(answer) => return reply(answer),
    };
    books.requests.push(("/v1/refunds".into(), form.clone()));
    let intent_id = field(&form, "payment_intent")
        .unwrap_or_default()
        .to_owned();
    let intent = books
        .intents
        .iter()
        .find(|i| i["id"] == json!(intent_id))
        .cloned();
    let answer = match intent {
        None => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "resource_missing",
            json!({"param": "payment_intent"}),
        ),
        Some(intent) if intent["status"] != json!("succeeded") => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            Value::Null,
        ),
        Some(intent) => {
            let total = intent["amount"].as_i64().unwrap_or_default();
            let asked = field(&form, "amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(total);
            match books.refund(&intent_id, total, asked) {
                None => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "charge_already_refunded",
                    Value::Null,
                ),
                Some(refunded) => (
                    200,
                    json!({
                        "id": format!("re_standin_{}_{}", intent_id, refunded),
                        "object": "refund",
                        "amount": asked,
                        "payment_intent": intent_id,
                        "status": "succeeded",
                    }),
                ),
            }
        }
    };
    if let Some(key) = key {
        books.replays.insert(key, (form, answer.clone()));
    }
    // Stripe reports refunds made through the API too, a moment later.
    let refunded = (answer.0 == 200)
        .then(|| succeeded_intent(&books, &intent_id))
        .flatten()
        .map(|intent| charge_of(&books, &intent));
    let event = refunded.map(|charge| event(&mut books, "charge.refunded", charge));
    drop(books);
    if let (Some(event), Some(_)) = (event, &shared.webhooks) {
        tokio::spawn(async move { deliver(&shared, Some(event)).await });
    }
    reply(answer)
}

/// The PaymentIntent `id`, or Stripe's `404 resource_missing`.
fn find_intent<'a>(books: &'a mut Books, id: &str) -> Result<&'a mut Value, Answer> {
    books
        .intents
        .iter_mut()
        .find(|i| i["id"] == json!(id))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "resource_missing",
                json!({"param": "intent"}),
            )
        })
}

async fn get_intent(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut books = shared.books.lock().unwrap();
    if let Err(answer) = before(&mut books, &headers, &[]) {
        return reply(answer);
    }
    reply(find_intent(&mut books, &id).map_or_else(|a| a, |intent| (200, intent.clone())))
}

async fn cancel_intent(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut books = shared.books.lock().unwrap();
    let form = vec![("intent".to_owned(), id.clone())];
    let key = match before(&mut books, &headers, &form) {
        Ok(key) => key,
        Err(answer) => return reply(answer),
    };
    books
        .requests
        .push((format!("/v1/payment_intents/{id}/cancel"), Vec::new()));
    let answer = match find_intent(&mut books, &id) {
        Err(answer) => answer,
        Ok(intent) if matches!(intent["status"].as_str(), Some("succeeded" | "canceled")) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            json!({"payment_intent": intent.clone()}),
        ),
        Ok(intent) => {
            intent["status"] = json!("canceled");
            intent["cancellation_reason"] = json!("abandoned");
            intent["next_action"] = Value::Null;
            (200, intent.clone())
        }
    };
    if let Some(key) = key {
        books.replays.insert(key, (form, answer.clone()));
    }
    reply(answer)
}

/// Settles the 3-D Secure of the PaymentIntent `id`; the event Stripe would send.
fn authenticated(books: &mut Books, id: &str, succeeded: bool) -> Option<Value> {
    let intent = books
        .intents
        .iter_mut()
        .find(|i| i["id"] == json!(id) && i["status"] == json!("requires_action"))?;
    intent["next_action"] = Value::Null;
    let kind = if succeeded {
        intent["status"] = json!("succeeded");
        "payment_intent.succeeded"
    } else {
        intent["status"] = json!("requires_payment_method");
        intent["last_payment_error"] = json!({
            "type": "invalid_request_error",
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication.",
        });
        "payment_intent.payment_failed"
    };
    let object = intent.clone();
    Some(event(books, kind, object))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A Stripe event of type `kind` about `object`.
fn event(books: &mut Books, kind: &str, object: Value) -> Value {
    books.events += 1;
    json!({
        "id": format!("evt_standin_{}", books.events),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "livemode": false,
        "type": kind,
        "data": {"object": object},
    })
}

/// The charge of a succeeded PaymentIntent, as the events about it carry it.
fn charge_of(books: &Books, intent: &Value) -> Value {
    let id = intent["id"].as_str().unwrap_or_default();
    let amount = intent["amount"].as_i64().unwrap_or_default();
    let refunded = books.refunded_of(id);
    json!({
        "id": format!("ch_{id}"),
        "object": "charge",
        "payment_intent": id,
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded >= amount,
        "currency": intent["currency"],
        "metadata": {},
        "refunds": {"object": "list", "data": [{"id": format!("re_standin_{id}_{refunded}")}]},
    })
}

fn succeeded_intent(books: &Books, id: &str) -> Option<Value> {
    books
        .intents
        .iter()
        .find(|i| i["id"] == json!(id) && i["status"] == json!("succeeded"))
        .cloned()
}

fn refunded_in_dashboard(books: &mut Books, id: &str, amount: Option<i64>) -> Option<Value> {
    let intent = succeeded_intent(books, id)?;
    let total = intent["amount"].as_i64().unwrap_or_default();
    let amount = amount.unwrap_or(total - books.refunded_of(id));
    if amount <= 0 {
        return None;
    }
    books.refund(id, total, amount)?;
    let charge = charge_of(books, &intent);
    Some(event(books, "charge.refunded", charge))
}

fn disputed(books: &mut Books, id: &str, reason: &str) -> Option<Value> {
    let intent = succeeded_intent(books, id)?;
    let dispute = json!({
        "id": format!("dp_standin_{}", books.events + 1),
        "object": "dispute",
        "payment_intent": id,
        "charge": format!("ch_{id}"),
        "amount": intent["amount"],
        "currency": intent["currency"],
        "reason": reason,
        "status": "needs_response",
    });
    Some(event(books, "charge.dispute.created", dispute))
}

/// Answers `event`, delivered first to the webhook endpoint when there is one.
async fn deliver(shared: &Shared, event: Option<Value>) -> Response {
    let Some(event) = event else {
        return reply(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            Value::Null,
        ));
    };
    let Some(webhooks) = &shared.webhooks else {
        return reply((200, json!({"event": event, "delivered": null})));
    };
    let payload = event.to_string();
    let signature = ticketing_app::payments::stripe_webhook::sign(
        payload.as_bytes(),
        &webhooks.secret,
        i64::try_from(now()).unwrap_or_default(),
    );
    let delivered = shared
        .http
        .post(&webhooks.url)
        .header("Stripe-Signature", signature)
        .header("Content-Type", "application/json")
        .body(payload)
        .send()
        .await;
    let delivered = match delivered {
        Ok(response) => json!({"status": response.status().as_u16()}),
        Err(e) => json!({"error": e.to_string()}),
    };
    reply((200, json!({"event": event, "delivered": delivered})))
}

async fn refund_in_dashboard(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<FormFields>,
) -> Response {
    let amount = field(&form, "amount").and_then(|a| a.parse().ok());
    let event = refunded_in_dashboard(&mut shared.books.lock().unwrap(), &id, amount);
    deliver(&shared, event).await
}

async fn dispute_intent(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<FormFields>,
) -> Response {
    let reason = field(&form, "reason").unwrap_or("fraudulent").to_owned();
    let event = disputed(&mut shared.books.lock().unwrap(), &id, &reason);
    deliver(&shared, event).await
}

/// Not a Stripe endpoint: the customer finishing (or failing) 3-D Secure. Answers the
/// event, and with webhooks set, how the endpoint answered its delivery.
async fn authenticate_intent(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<FormFields>,
) -> Response {
    let succeeded = match field(&form, "outcome") {
        Some("succeeded") => true,
        Some("failed") => false,
        _ => {
            return reply(error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "parameter_invalid",
                json!({"param": "outcome", "message": "outcome is succeeded or failed"}),
            ))
        }
    };
    let event = authenticated(&mut shared.books.lock().unwrap(), &id, succeeded);
    deliver(&shared, event).await
}
