//! A STAND-IN for Stripe's API, for tests only: an HTTP server on the loopback that
//! answers the endpoints the adapter uses with the request and response shapes
//! Stripe documents (API version 2024-06-20), so that the adapter's tests run without
//! a network. It is not Stripe: it knows only what is below.
//!
//! - `POST /v1/payment_intents` (form, `confirm=true`): the outcome by test card, as in
//!   Stripe's test mode: `tok_visa`/`pm_card_visa` succeed, `tok_chargeDeclined` is
//!   declined (`402`, `card_error`, `card_declined`), `tok_chargeDeclinedInsufficientFunds`
//!   too with `decline_code: insufficient_funds`, `tok_threeDSecure2Required` answers
//!   `requires_action`.
//! - `GET /v1/payment_intents/search?query=metadata['payment_id']:'<id>'`.
//! - `POST /v1/refunds` (form: `payment_intent`, `amount`): a second refund of a fully
//!   refunded intent is `400 charge_already_refunded`.
//! - `Idempotency-Key` on POSTs: the same key with the same parameters replays the
//!   first answer; with other parameters it is `400 idempotency_error`.
//! - `Authorization: Bearer <key>` must be the stand-in's key, else `401`.
//! - [`StandIn::fail_next`]: the next requests answer `500` or `429`, as an incident.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The stand-in's secret key.
pub const STAND_IN_KEY: &str = "sk_test_stand_in";

#[derive(Default)]
struct Books {
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

/// A running stand-in.
#[derive(Clone)]
pub struct StandIn {
    pub base_url: String,
    books: Arc<Mutex<Books>>,
}

impl StandIn {
    pub async fn start() -> Self {
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/search", get(search_intents))
            .route("/v1/refunds", post(create_refund))
            .with_state(books.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}"),
            books,
        }
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

type Shared = State<Arc<Mutex<Books>>>;
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
    State(books): Shared,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let mut books = books.lock().unwrap();
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
        "last_payment_error": null,
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
        "tok_threeDSecure2Required" | "pm_card_threeDSecure2Required" => {
            intent["status"] = json!("requires_action");
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
    if answer.0 == 200 || answer.0 == 402 {
        books.intents.push(intent);
        books.created_intents += 1;
    }
    if let Some(key) = key {
        books.replays.insert(key, (form, answer.clone()));
    }
    reply(answer)
}

async fn search_intents(
    State(books): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut books = books.lock().unwrap();
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
    State(books): Shared,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let mut books = books.lock().unwrap();
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
            let refunded = books.refunded.get(&intent_id).copied().unwrap_or_default();
            if refunded + asked > total {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "charge_already_refunded",
                    Value::Null,
                )
            } else {
                books.refunded.insert(intent_id.clone(), refunded + asked);
                (
                    200,
                    json!({
                        "id": format!("re_standin_{}_{}", intent_id, refunded + asked),
                        "object": "refund",
                        "amount": asked,
                        "payment_intent": intent_id,
                        "status": "succeeded",
                    }),
                )
            }
        }
    };
    if let Some(key) = key {
        books.replays.insert(key, (form, answer.clone()));
    }
    reply(answer)
}
