//! The functions' test harness: every test feeds a committed Lambda payload through
//! the code a function's `main` runs, against a fresh embedded store.
//!
//! - [`Fixture`]: a payload from a crate's `fixtures/` folder (load it with
//!   [`fixture!`](crate::fixture)), with its placeholder ids replaced by real ones,
//!   turned into the request `lambda_http` would hand the router.
//! - [`TestStore`]: a migrated SQLite file in a temporary directory with its read
//!   models, the API state over it with no local token key, as deployed (only claims
//!   from API Gateway's JWT authorizer are accepted), and [`TestStore::project`], which
//!   does what the deployed projector service does.
//! - [`call`]: one request through a router with `tower::ServiceExt::oneshot`.
//! - [`show_on_sale`], [`purchase`]: seeding through the command layer, for tests
//!   whose subject is a later step.

use std::fmt::Display;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tempfile::TempDir;
use ticketing_api::config::state_with;
use ticketing_api::{ApiState, AuthConfig};
use ticketing_app::payments::CardToken;
use ticketing_app::{CommandContext, HeldSeats, HoldSeats, PaymentResult, Settings, Ticketing};
use ticketing_domain::{
    Currency, CustomerId, Money, OrganizerId, PaymentId, Quantity, ReservationId, SectionName,
    SectionSpec, ShowCommand, ShowId, ShowPlan,
};
use ticketing_projector::Projector;
use ticketing_read_models::sqlite::SqliteReadModels;
use ticketing_read_models::ReadModelStore;
use ticketing_store::sqlite::SqliteStore;
use ticketing_store::EventStore;
use tower::ServiceExt;

/// The show id written in fixtures whose path or body names a show.
pub const SHOW_ID: &str = "11111111-1111-4111-8111-111111111111";
/// The reservation id written in fixtures whose path names a reservation.
pub const RESERVATION_ID: &str = "22222222-2222-4222-8222-222222222222";
/// The payment id written in fixtures whose path names a payment.
pub const PAYMENT_ID: &str = "33333333-3333-4333-8333-333333333333";

/// The `sub` of the organizer in the fixtures' authorizer claims.
pub const ORGANIZER: &str = "organizer-ada";
/// The `sub` of the customer who buys in the fixtures.
pub const CUSTOMER: &str = "customer-ben";
/// The `sub` of a second customer, who must not see the first one's reservations.
pub const OTHER_CUSTOMER: &str = "customer-cleo";

/// Loads `fixtures/<name>` of the crate whose test calls it.
#[macro_export]
macro_rules! fixture {
    ($name:expr) => {
        $crate::testing::Fixture::load(env!("CARGO_MANIFEST_DIR"), $name)
    };
}

/// A Lambda payload read from a committed fixture file.
#[derive(Debug, Clone)]
pub struct Fixture {
    name: String,
    text: String,
}

impl Fixture {
    /// Reads `<crate_dir>/fixtures/<name>`.
    ///
    /// # Panics
    /// When the file cannot be read.
    pub fn load(crate_dir: &str, name: &str) -> Self {
        let path = std::path::Path::new(crate_dir).join("fixtures").join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("fixture {} cannot be read: {e}", path.display()));
        Self {
            name: name.to_owned(),
            text,
        }
    }

    /// Replaces every occurrence of a placeholder id with a real one.
    ///
    /// # Panics
    /// When the fixture does not contain the placeholder: a test that thinks it aims
    /// at its own show must not silently aim at the placeholder.
    #[must_use]
    pub fn with(mut self, placeholder: &str, value: impl Display) -> Self {
        assert!(
            self.text.contains(placeholder),
            "fixture {} has no placeholder {placeholder}",
            self.name
        );
        self.text = self.text.replace(placeholder, &value.to_string());
        self
    }

    /// The payload as JSON.
    ///
    /// # Panics
    /// When the fixture is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", self.name))
    }

    /// The payload as the request `lambda_http` hands the router: an API Gateway HTTP
    /// API (v2) event, with its request context as an extension.
    ///
    /// # Panics
    /// When `lambda_http` does not recognise the payload.
    pub fn request(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "fixture {} is not an API Gateway event lambda_http accepts: {e}",
                self.name
            )
        })
    }
}

/// A fresh, migrated embedded store in a temporary directory, removed on drop.
pub struct TestStore {
    pub store: Arc<dyn EventStore>,
    pub read_models: Arc<dyn ReadModelStore>,
    _dir: TempDir,
}

impl TestStore {
    /// # Panics
    /// When the temporary SQLite file cannot be created or migrated.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(path.to_str().expect("a UTF-8 temporary path"))
            .await
            .expect("the SQLite store opens and migrates");
        Self {
            read_models: Arc::new(SqliteReadModels::new(store.pool().clone())),
            store: Arc::new(store),
            _dir: dir,
        }
    }

    /// Applies every committed event to the read models, as the projector service
    /// does in the deployment (the query function only reads them).
    ///
    /// # Panics
    /// When the projection fails.
    pub async fn project(&self) {
        Projector::new(Arc::clone(&self.store), Arc::clone(&self.read_models))
            .catch_up(1_000, |_| {})
            .await
            .expect("the read models catch up with the store");
    }

    /// The API state a deployed function builds, over this store: no local token key
    /// (only API Gateway's claims are accepted), default settings, the system clock,
    /// the simulated payment provider and [`test_ticket_keys`].
    ///
    /// # Panics
    /// Never with the default configuration.
    pub fn state(&self) -> ApiState {
        state_with(
            Arc::clone(&self.store),
            Arc::clone(&self.read_models),
            &AuthConfig::default(),
            Settings::default(),
            Some(test_ticket_keys()),
        )
        .expect("the default API configuration is valid")
    }
}

/// The ticket signing key of the functions' tests (key id `test`).
///
/// # Panics
/// Never: the key is well formed.
pub fn test_ticket_keys() -> ticketing_app::TicketKeys {
    ticketing_app::TicketKeys::from_seeds(&[("test", [7; 32])]).expect("a valid test key")
}

/// What a router answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when empty).
    pub body: serde_json::Value,
}

impl Answer {
    /// The `Content-Type` header, or "".
    pub fn content_type(&self) -> &str {
        self.headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// A string field of the body.
    ///
    /// # Panics
    /// When the body has no such string field.
    pub fn text(&self, field: &str) -> &str {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("the answer has no string field {field}: {}", self.body))
    }
}

/// Sends one request through `router`, as the Lambda runtime adapter does.
///
/// # Panics
/// When the body cannot be read or is not JSON.
pub async fn call(router: Router, request: lambda_http::Request) -> Answer {
    let response = router.oneshot(request).await.expect("a router never fails");
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .expect("the body can be read")
        .to_bytes();
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "the body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Creates a show of [`ORGANIZER`] with one 100-seat section `Floor` at 45.00 EUR, and
/// opens its sales.
///
/// # Panics
/// When the command layer refuses.
pub async fn show_on_sale(ticketing: &Ticketing) -> ShowId {
    let ctx = CommandContext::new(ORGANIZER);
    let eur = Currency::parse("EUR").expect("EUR is a currency");
    let plan = ShowPlan::new(
        "Fixture Night",
        "Riverside Arena",
        ticketing.now() + chrono::TimeDelta::days(60),
        vec![SectionSpec {
            name: SectionName::parse("Floor").expect("a section name"),
            capacity: 100,
            unit_price: Money::unit_price(4500, eur).expect("a price"),
            buckets: 1,
        }],
        10,
    )
    .expect("a valid plan");
    let organizer = OrganizerId::parse(ORGANIZER).expect("an organizer id");
    let show_id = ticketing
        .create_show(&ctx, organizer, plan)
        .await
        .expect("the show is created");
    ticketing
        .change_sales(&ctx, show_id, ShowCommand::OpenSales)
        .await
        .expect("sales open");
    show_id
}

/// Holds `quantity` seats of `Floor` for `customer`.
///
/// # Panics
/// When the command layer refuses.
pub async fn hold(
    ticketing: &Ticketing,
    show_id: ShowId,
    customer: &str,
    quantity: u32,
) -> HeldSeats {
    ticketing
        .hold_seats(
            &CommandContext::new(customer),
            HoldSeats {
                show_id,
                section: SectionName::parse("Floor").expect("a section name"),
                customer_id: CustomerId::parse(customer).expect("a customer id"),
                quantity: Quantity::new(quantity).expect("a quantity"),
            },
        )
        .await
        .expect("the seats are held")
}

/// Holds 2 seats for `customer` and pays with `tok_visa`: a confirmed purchase.
///
/// # Panics
/// When the command layer refuses or the payment is not confirmed.
pub async fn purchase(
    ticketing: &Ticketing,
    show_id: ShowId,
    customer: &str,
) -> (ReservationId, PaymentId) {
    let held = hold(ticketing, show_id, customer, 2).await;
    let card = CardToken::parse("tok_visa").expect("a card token");
    match ticketing
        .pay(&CommandContext::new(customer), held.reservation_id, card)
        .await
        .expect("the payment runs")
    {
        PaymentResult::Confirmed {
            reservation_id,
            payment_id,
            ..
        } => (reservation_id, payment_id),
        other => panic!("the purchase was not confirmed: {other:?}"),
    }
}
