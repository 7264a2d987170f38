//! The `webhooks` function, driven by the API Gateway payloads in `fixtures/`: Stripe's
//! events, signed here as Stripe signs them (`stripe_webhook::sign`, what the API's
//! own webhook tests sign with).

use std::sync::Arc;

use axum::http::HeaderValue;
use ticketing_api::ApiState;
use ticketing_app::payments::stripe_webhook::sign;
use ticketing_app::payments::CardToken;
use ticketing_app::CommandContext;
use ticketing_domain::reservation::ReservationStatus;
use ticketing_domain::{PaymentId, ReservationId};
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{
    call, hold, show_on_sale, Fixture, TestStore, CUSTOMER, PAYMENT_ID, RESERVATION_ID,
};
use ticketing_fn_webhooks::app;

/// The webhook secret of these tests. The fixture's own `Stripe-Signature` is a real
/// signature of its body as committed under it, at the fixture's time (long past).
const WEBHOOK_SECRET: &str = "whsec_fixtures";

/// A fixture of another function crate.
fn fixture_of(function: &str, name: &str) -> Fixture {
    Fixture::load(
        &format!("{}/../{function}", env!("CARGO_MANIFEST_DIR")),
        name,
    )
}

/// The API state of a deployed function given `STRIPE_WEBHOOK_SECRET`.
fn with_webhook_secret(mut state: ApiState) -> ApiState {
    state.stripe_webhook_secrets = Arc::from([WEBHOOK_SECRET.to_owned()]);
    state
}

/// A reservation of [`CUSTOMER`] whose payment is pending: charged, its answer lost.
async fn pending_payment(state: &ApiState) -> (ReservationId, PaymentId) {
    let ticketing = &state.ticketing;
    let show_id = show_on_sale(ticketing).await;
    let held = hold(ticketing, show_id, CUSTOMER, 2).await;
    let card = CardToken::parse("tok_timeoutAfterCapture").expect("a card token");
    ticketing
        .pay(&CommandContext::new(CUSTOMER), held.reservation_id, card)
        .await
        .expect_err("the provider's answer is lost");
    let reservation = ticketing
        .reservation(held.reservation_id)
        .await
        .expect("the reservation");
    assert_eq!(reservation.status, ReservationStatus::PaymentPending);
    let payment_id = reservation.payment_id.expect("a payment was requested");
    (held.reservation_id, payment_id)
}

/// Stripe's `payment_intent.succeeded` about that payment.
fn succeeded(reservation_id: ReservationId, payment_id: PaymentId) -> Fixture {
    fixture!("stripe-payment-succeeded.json")
        .with(RESERVATION_ID, reservation_id.0)
        .with(PAYMENT_ID, payment_id.0)
}

/// The fixture as Stripe sends it, its body signed with `secret` at `timestamp`
/// (`None`: without a `Stripe-Signature` header).
fn delivery(event: &Fixture, secret: Option<&str>, timestamp: i64) -> lambda_http::Request {
    let mut request = event.request();
    match secret {
        Some(secret) => {
            let payload = event.json()["body"]
                .as_str()
                .expect("the event has a body")
                .to_owned();
            let signature = sign(payload.as_bytes(), secret, timestamp);
            request.headers_mut().insert(
                "stripe-signature",
                HeaderValue::from_str(&signature).expect("a header value"),
            );
        }
        None => {
            request.headers_mut().remove("stripe-signature");
        }
    }
    request
}

async fn status(state: &ApiState, reservation_id: ReservationId) -> ReservationStatus {
    state
        .ticketing
        .reservation(reservation_id)
        .await
        .expect("the reservation")
        .status
}

#[tokio::test]
async fn a_signed_success_confirms_a_pending_payment_once() {
    let db = TestStore::new().await;
    let state = with_webhook_secret(db.state());
    let (reservation_id, payment_id) = pending_payment(&state).await;
    let event = succeeded(reservation_id, payment_id);
    let now = state.ticketing.now().timestamp();

    let first = call(
        app(state.clone()),
        delivery(&event, Some(WEBHOOK_SECRET), now),
    )
    .await;

    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.text("event_id"), "evt_3QJvYk2eZvKYlo2C1x0Yk3Bq");
    assert_eq!(first.text("outcome"), "applied");
    assert_eq!(
        status(&state, reservation_id).await,
        ReservationStatus::Confirmed
    );
    // Stripe delivers an event at least once: a second delivery changes nothing.
    let again = call(
        app(state.clone()),
        delivery(&event, Some(WEBHOOK_SECRET), now),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.text("outcome"), "already_settled");
}

#[tokio::test]
async fn unsigned_stale_or_foreign_events_are_refused_and_change_nothing() {
    let db = TestStore::new().await;
    let state = with_webhook_secret(db.state());
    let (reservation_id, payment_id) = pending_payment(&state).await;
    let event = succeeded(reservation_id, payment_id);
    let now = state.ticketing.now().timestamp();

    let refusals = [
        ("unsigned", delivery(&event, None, now)),
        (
            "signed with another secret",
            delivery(&event, Some("whsec_someone_else"), now),
        ),
        (
            "signed ten minutes ago",
            delivery(&event, Some(WEBHOOK_SECRET), now - 600),
        ),
        // The fixture as committed: signed for its placeholder ids, long ago.
        ("signed for another body", event.request()),
    ];
    for (what, request) in refusals {
        let answer = call(app(state.clone()), request).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        assert_eq!(answer.content_type(), "application/problem+json", "{what}");
    }

    assert_eq!(
        status(&state, reservation_id).await,
        ReservationStatus::PaymentPending
    );
}

#[tokio::test]
async fn without_a_webhook_secret_the_route_answers_not_found() {
    let db = TestStore::new().await;
    let state = db.state();
    let (reservation_id, payment_id) = pending_payment(&state).await;
    let now = state.ticketing.now().timestamp();

    let answer = call(
        app(state.clone()),
        delivery(
            &succeeded(reservation_id, payment_id),
            Some(WEBHOOK_SECRET),
            now,
        ),
    )
    .await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.text("type"), "urn:ticketing:problem:not-found");
    assert_eq!(
        status(&state, reservation_id).await,
        ReservationStatus::PaymentPending
    );
}

#[tokio::test]
async fn routes_of_other_functions_are_not_served_here() {
    let db = TestStore::new().await;

    let answer = call(
        app(with_webhook_secret(db.state())),
        fixture_of("payments", "refund.json").request(),
    )
    .await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.text("detail"), "no such route");
}
