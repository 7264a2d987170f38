//! The `reservations` function, driven by the API Gateway payloads in `fixtures/`:
//! the whole purchase, across the functions that share one store as deployed.

use ticketing_fn_reservations::app;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{
    call, hold, show_on_sale, Fixture, TestStore, CUSTOMER, RESERVATION_ID, SHOW_ID,
};

/// A fixture of another function crate.
fn fixture_of(function: &str, name: &str) -> Fixture {
    Fixture::load(
        &format!("{}/../{function}", env!("CARGO_MANIFEST_DIR")),
        name,
    )
}

#[tokio::test]
async fn customer_holds_pays_and_gets_a_confirmed_reservation() {
    let db = TestStore::new().await;
    // The organizer's side, through the `shows` function.
    let created = call(
        ticketing_fn_shows::app(db.state()),
        fixture_of("shows", "create-show.json").request(),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let show_id = created.text("show_id").to_owned();
    let opened = call(
        ticketing_fn_shows::app(db.state()),
        fixture_of("shows", "open-sales.json")
            .with(SHOW_ID, &show_id)
            .request(),
    )
    .await;
    assert_eq!(opened.status, 200, "{}", opened.body);

    let held = call(
        app(db.state()),
        fixture!("hold-seats.json")
            .with(SHOW_ID, &show_id)
            .request(),
    )
    .await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(held.body["quantity"], 2);
    assert_eq!(held.body["amount_minor"], 9000);
    assert_eq!(held.text("currency"), "EUR");
    let reservation_id = held.text("reservation_id").to_owned();

    let paid = call(
        app(db.state()),
        fixture!("pay.json")
            .with(RESERVATION_ID, &reservation_id)
            .request(),
    )
    .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.text("status"), "confirmed");
    assert_eq!(paid.body["amount_minor"], 9000);

    // The customer reads it back through the `queries` function.
    let read = call(
        ticketing_fn_queries::app(db.state()),
        fixture_of("queries", "get-reservation.json")
            .with(RESERVATION_ID, &reservation_id)
            .request(),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.text("status"), "confirmed");
    assert_eq!(read.text("customer_id"), CUSTOMER);
    assert_eq!(read.text("payment_id"), paid.text("payment_id"));
}

#[tokio::test]
async fn paying_another_customers_reservation_is_not_found() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let held = hold(&state.ticketing, show_id, CUSTOMER, 2).await;

    let answer = call(
        app(state),
        fixture!("pay-by-other-customer.json")
            .with(RESERVATION_ID, held.reservation_id.0)
            .request(),
    )
    .await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.text("type"), "urn:ticketing:problem:not-found");
}

#[tokio::test]
async fn hold_without_claims_or_token_is_unauthorized_and_holds_nothing() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;

    let answer = call(
        app(state.clone()),
        fixture!("hold-seats-no-auth.json")
            .with(SHOW_ID, show_id.0)
            .request(),
    )
    .await;

    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    let sections = state
        .ticketing
        .availability(show_id)
        .await
        .expect("availability");
    assert_eq!(sections[0].available, 100);
}
