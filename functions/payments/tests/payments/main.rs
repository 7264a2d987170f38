//! The `payments` function, driven by the API Gateway payloads in `fixtures/`.

use std::sync::Arc;

use ticketing_domain::reservation::ReservationStatus;
use ticketing_fn_payments::app;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{
    call, purchase, show_on_sale, Fixture, TestStore, CUSTOMER, PAYMENT_ID,
};

#[tokio::test]
async fn organizer_refunds_a_captured_payment_and_the_seats_return_to_sale() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (reservation_id, payment_id) = purchase(&state.ticketing, show_id, CUSTOMER).await;

    let answer = call(
        app(state.clone()),
        fixture!("refund.json")
            .with(PAYMENT_ID, payment_id.0)
            .request(),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.text("payment_id"), payment_id.0.to_string());
    assert_eq!(answer.body["refunded_minor"], 9000);
    assert_eq!(answer.text("currency"), "EUR");
    let reservation = state
        .ticketing
        .reservation(reservation_id)
        .await
        .expect("the reservation");
    assert_eq!(reservation.status, ReservationStatus::Refunded);
    let sections = state
        .ticketing
        .availability(show_id)
        .await
        .expect("availability");
    assert_eq!(sections[0].available, 100);
}

#[tokio::test]
async fn refunding_twice_is_a_conflict() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (_, payment_id) = purchase(&state.ticketing, show_id, CUSTOMER).await;
    let refund = fixture!("refund.json").with(PAYMENT_ID, payment_id.0);
    let first = call(app(state.clone()), refund.request()).await;
    assert_eq!(first.status, 200, "{}", first.body);

    let second = call(app(state), refund.request()).await;

    assert_eq!(second.status, 409, "{}", second.body);
    assert_eq!(second.content_type(), "application/problem+json");
}

#[tokio::test]
async fn customer_cannot_refund() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (_, payment_id) = purchase(&state.ticketing, show_id, CUSTOMER).await;

    let answer = call(
        app(state),
        fixture!("refund-as-customer.json")
            .with(PAYMENT_ID, payment_id.0)
            .request(),
    )
    .await;

    assert_eq!(answer.status, 403, "{}", answer.body);
}

#[tokio::test]
async fn unknown_payment_is_not_found() {
    let db = TestStore::new().await;

    let answer = call(app(db.state()), fixture!("refund.json").request()).await;

    assert_eq!(answer.status, 404, "{}", answer.body);
}

#[tokio::test]
async fn stripe_webhooks_are_the_webhooks_functions() {
    let db = TestStore::new().await;
    let mut state = db.state();
    // Configured, so that the route, if it were served here, would answer.
    state.stripe_webhook_secrets = Arc::from(["whsec_fixtures".to_owned()]);
    let webhook = Fixture::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../webhooks"),
        "stripe-payment-succeeded.json",
    );

    let answer = call(app(state), webhook.request()).await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.text("detail"), "no such route");
}
