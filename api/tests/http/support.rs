use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use ticketing_api::auth::{
    mint_hs256, mint_scanner_hs256, AuthConfig, Authenticator, VerificationKey,
};
use ticketing_api::{ApiState, Role, RouteGroup};
use ticketing_app::payments::{ChargeGate, SimulatedGateway};
use ticketing_app::{ManualClock, Settings, TicketKeys, Ticketing};
use ticketing_bus::InProcessBus;
use ticketing_projector::{run_live, LiveSettings, Projector, ProjectorMetrics};
use ticketing_read_models::sqlite::SqliteReadModels;
use ticketing_store::sqlite::SqliteStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"an-http-test-secret-of-32-bytes-or-more";

/// How the read models behind availability, sales and the history follow the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Caught up with the store before every request: each request sees the read
    /// models a settled projector would show, so tests stay deterministic.
    Settled,
    /// Only when the test calls [`TestApi::project`]: what a client sees before the
    /// projector has applied its command.
    Manual,
    /// The live loop on an in-process bus the commands publish to, as `ticketing
    /// serve` runs it; tests wait with [`eventually`].
    Live,
}

pub struct TestApi {
    pub router: Router,
    pub clock: ManualClock,
    pub gateway: Arc<SimulatedGateway>,
    pub projector: Projector,
    projection: Projection,
    /// Concurrent requests of one test would otherwise catch up side by side and
    /// conflict on the same streams.
    projecting: tokio::sync::Mutex<()>,
    live: Option<(
        oneshot::Sender<()>,
        JoinHandle<ticketing_projector::LiveReport>,
    )>,
}

pub fn api(store: SqliteStore) -> TestApi {
    api_with(store, SimulatedGateway::new(), Projection::Settled)
}

/// The app whose read models move only when the test says so.
pub fn unprojected_api(store: SqliteStore) -> TestApi {
    api_with(store, SimulatedGateway::new(), Projection::Manual)
}

/// The app with the projector's live loop following an in-process bus.
pub fn live_api(store: SqliteStore) -> TestApi {
    api_with(store, SimulatedGateway::new(), Projection::Live)
}

/// The app with a payment provider that takes `latency` to answer each call.
/// An API whose provider holds every charge at `gate` until the test opens it.
pub fn gated_api(store: SqliteStore, gate: Arc<ChargeGate>) -> TestApi {
    api_with(store, SimulatedGateway::gated(gate), Projection::Settled)
}

fn api_with(store: SqliteStore, gateway: SimulatedGateway, projection: Projection) -> TestApi {
    let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
    let gateway = Arc::new(gateway);
    let read_models = Arc::new(SqliteReadModels::new(store.pool().clone()));
    let store = Arc::new(store);
    let mut ticketing = Ticketing::new(
        store.clone(),
        gateway.clone(),
        Arc::new(clock.clone()),
        Settings::default(),
    )
    .with_ticket_keys(ticket_keys());
    let projector = Projector::new(store, read_models.clone());
    let mut live = None;
    if projection == Projection::Live {
        let bus = Arc::new(InProcessBus::default());
        // Subscribed before any command, so that the loop sees every event.
        let mut source = bus.source();
        ticketing = ticketing.with_bus(bus);
        let (stop, stopped) = oneshot::channel::<()>();
        let projector = projector.clone();
        let settings = LiveSettings {
            batch_wait: std::time::Duration::from_millis(10),
            ..LiveSettings::default()
        };
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let metrics = ProjectorMetrics::new();
            run_live(&projector, &mut source, &settings, &metrics, shutdown).await
        });
        live = Some((stop, task));
    }
    let auth = AuthConfig {
        key: Some(VerificationKey::Hs256Secret(SECRET.to_vec())),
        ..AuthConfig::default()
    };
    let state = ApiState {
        ticketing: Arc::new(ticketing),
        read_models,
        authenticator: Arc::new(Authenticator::new(&auth).unwrap()),
        stripe_webhook_secrets: Arc::from([STRIPE_WEBHOOK_SECRET.to_owned()]),
    };
    TestApi {
        router: ticketing_api::router(state, &RouteGroup::ALL),
        clock,
        gateway,
        projector,
        projection,
        projecting: tokio::sync::Mutex::new(()),
        live,
    }
}

impl TestApi {
    /// Applies every committed event to the read models.
    pub async fn project(&self) {
        let _one_at_a_time = self.projecting.lock().await;
        self.projector
            .catch_up(1_000, |_| {})
            .await
            .expect("the read models catch up with the store");
    }

    /// Stops the live projector loop, if it runs, and says how many messages it
    /// applied.
    pub async fn stop_projector(&mut self) -> u64 {
        let Some((stop, task)) = self.live.take() else {
            return 0;
        };
        let _ = stop.send(());
        task.await
            .expect("the projector loop ends cleanly")
            .messages
    }
}

/// Polls `check` until it returns `Some`, for at most five seconds: the read models
/// are eventually consistent, and this is how long "eventually" may take in a test.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The keys the app under test signs ticket codes with.
/// The secret the tests' Stripe webhooks are signed with.
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_tests";

pub fn ticket_keys() -> TicketKeys {
    TicketKeys::from_seeds(&[("test", [7; 32])]).unwrap()
}

pub fn scanner(sub: &str, organizer: &str) -> String {
    mint_scanner_hs256(SECRET, sub, organizer, TimeDelta::minutes(30)).unwrap()
}

pub fn token(role: Role, sub: &str) -> String {
    mint_hs256(SECRET, sub, role, TimeDelta::minutes(30)).unwrap()
}

pub fn organizer(sub: &str) -> String {
    token(Role::Organizer, sub)
}

pub fn customer(sub: &str) -> String {
    token(Role::Customer, sub)
}

pub fn admin() -> String {
    token(Role::Admin, "root")
}

/// A response, with its body parsed as JSON (or `Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as sent (an image's bytes).
    pub raw: Vec<u8>,
}

impl Reply {
    /// Asserts a problem+json answer with this status and problem type.
    pub fn problem(&self, status: StatusCode, slug: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{:?}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("urn:ticketing:problem:{slug}"),
            "{:?}",
            self.body
        );
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

pub struct Call {
    request: axum::http::request::Builder,
    body: Body,
}

pub fn call(method: Method, path: &str) -> Call {
    Call {
        request: Request::builder().method(method).uri(path),
        body: Body::empty(),
    }
}

pub fn get(path: &str) -> Call {
    call(Method::GET, path)
}

pub fn post(path: &str) -> Call {
    call(Method::POST, path)
}

impl Call {
    pub fn bearer(mut self, token: &str) -> Self {
        self.request = self
            .request
            .header("authorization", format!("Bearer {token}"));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.request = self.request.header("content-type", "application/json");
        self.body = Body::from(body.to_string());
        self
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.request = self.request.header("content-type", content_type);
        self.body = body.into();
        self
    }

    pub async fn send(self, api: &TestApi) -> Reply {
        let request = self.request.body(self.body).unwrap();
        send_request(api, request).await
    }
}

pub async fn send_request(api: &TestApi, request: Request<Body>) -> Reply {
    if api.projection == Projection::Settled {
        api.project().await;
    }
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
        raw: bytes.to_vec(),
    }
}

/// A show of organizer `owner` with one section "Floor" of `capacity` at 45.00 EUR.
pub fn new_show(capacity: u32) -> Value {
    json!({
        "title": "Summer Festival",
        "venue": "Main Arena",
        "starts_at": "2026-07-01T20:00:00Z",
        "currency": "EUR",
        "max_per_order": 6,
        "sections": [{"name": "Floor", "capacity": capacity, "unit_price_minor": 4500}],
    })
}

/// Creates a show for `owner` and opens its sales; returns its id.
pub async fn show_on_sale(api: &TestApi, owner: &str, capacity: u32) -> String {
    let created = post("/v1/shows")
        .bearer(&organizer(owner))
        .json(new_show(capacity))
        .send(api)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["show_id"].as_str().unwrap().to_owned();
    let opened = post(&format!("/v1/shows/{id}/open-sales"))
        .bearer(&organizer(owner))
        .send(api)
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{:?}", opened.body);
    id
}

/// Holds `quantity` seats for `customer_sub`; returns the reservation id.
pub async fn hold(api: &TestApi, show_id: &str, customer_sub: &str, quantity: u32) -> String {
    let held = post("/v1/reservations")
        .bearer(&customer(customer_sub))
        .json(json!({"show_id": show_id, "section": "Floor", "quantity": quantity}))
        .send(api)
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
    held.body["reservation_id"].as_str().unwrap().to_owned()
}

pub async fn pay(api: &TestApi, reservation_id: &str, customer_sub: &str, card: &str) -> Reply {
    post(&format!("/v1/reservations/{reservation_id}/payment"))
        .bearer(&customer(customer_sub))
        .json(json!({"card_token": card}))
        .send(api)
        .await
}

/// (held, sold, available) of the show's only section.
pub async fn seats(api: &TestApi, show_id: &str) -> (u64, u64, u64) {
    let reply = get(&format!("/v1/shows/{show_id}/availability"))
        .send(api)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let s = &reply.body["sections"][0];
    (
        s["held"].as_u64().unwrap(),
        s["sold"].as_u64().unwrap(),
        s["available"].as_u64().unwrap(),
    )
}
