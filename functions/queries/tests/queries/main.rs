//! The `queries` function, driven by the API Gateway payloads in `fixtures/`, on the
//! embedded read models and (module `dynamodb`) on DynamoDB read models.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that a DynamoDB test is
//! reported as skipped (ignored) by name when no server answers and `CI` is not set
//! ([`ticketing_read_models::testing::dynamodb::dynamodb_trial`]). A new test function
//! is listed in its module's `trials!`.

mod dynamodb;

use ticketing_fn_queries::app;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{
    call, purchase, show_on_sale, TestStore, CUSTOMER, ORGANIZER, RESERVATION_ID, SHOW_ID,
};
use ticketing_store::testing::{async_trial, run_trials};

fn main() {
    let mut trials = ticketing_store::trials![
        async_trial =>
            customer_reads_their_confirmed_reservation,
            another_customers_reservation_is_not_found,
            reading_a_reservation_without_claims_or_token_is_unauthorized,
            customer_lists_their_own_reservations_only,
            anyone_reads_a_show_and_its_availability_without_a_token,
            unknown_show_is_a_not_found_problem,
            openapi_document_is_public_and_lists_every_route;
    ];
    trials.extend(dynamodb::trials());
    run_trials(trials);
}

async fn customer_reads_their_confirmed_reservation() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (reservation_id, payment_id) = purchase(&state.ticketing, show_id, CUSTOMER).await;

    let answer = call(
        app(state),
        fixture!("get-reservation.json")
            .with(RESERVATION_ID, reservation_id.0)
            .request(),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.text("status"), "confirmed");
    assert_eq!(answer.text("customer_id"), CUSTOMER);
    assert_eq!(answer.text("payment_id"), payment_id.0.to_string());
    assert_eq!(answer.body["quantity"], 2);
}

async fn another_customers_reservation_is_not_found() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (reservation_id, _) = purchase(&state.ticketing, show_id, CUSTOMER).await;

    let answer = call(
        app(state),
        fixture!("get-reservation-other-customer.json")
            .with(RESERVATION_ID, reservation_id.0)
            .request(),
    )
    .await;

    // Not 403: whether someone else's reservation id exists is not disclosed.
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    assert_eq!(answer.text("type"), "urn:ticketing:problem:not-found");
}

async fn reading_a_reservation_without_claims_or_token_is_unauthorized() {
    let db = TestStore::new().await;

    let answer = call(
        app(db.state()),
        fixture!("get-reservation-no-auth.json").request(),
    )
    .await;

    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.text("type"), "urn:ticketing:problem:unauthorized");
}

async fn customer_lists_their_own_reservations_only() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    let (mine, _) = purchase(&state.ticketing, show_id, CUSTOMER).await;
    purchase(&state.ticketing, show_id, "customer-someone-else").await;
    db.project().await;

    let answer = call(app(state), fixture!("my-reservations.json").request()).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let listed = answer.body["reservations"].as_array().expect("a list");
    assert_eq!(listed.len(), 1, "{}", answer.body);
    assert_eq!(listed[0]["reservation_id"], mine.0.to_string());
}

async fn anyone_reads_a_show_and_its_availability_without_a_token() {
    let db = TestStore::new().await;
    let state = db.state();
    let show_id = show_on_sale(&state.ticketing).await;
    purchase(&state.ticketing, show_id, CUSTOMER).await;
    db.project().await;

    let show = call(
        app(state.clone()),
        fixture!("get-show.json").with(SHOW_ID, show_id.0).request(),
    )
    .await;
    assert_eq!(show.status, 200, "{}", show.body);
    assert_eq!(show.text("organizer_id"), ORGANIZER);
    assert_eq!(show.text("sales"), "on_sale");

    let seats = call(
        app(state),
        fixture!("get-availability.json")
            .with(SHOW_ID, show_id.0)
            .request(),
    )
    .await;
    assert_eq!(seats.status, 200, "{}", seats.body);
    assert_eq!(seats.body["sections"][0]["sold"], 2);
    assert_eq!(seats.body["sections"][0]["available"], 98);
}

async fn unknown_show_is_a_not_found_problem() {
    let db = TestStore::new().await;

    // The fixture's placeholder id names no show.
    let answer = call(app(db.state()), fixture!("get-show.json").request()).await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    assert_eq!(answer.body["status"], 404);
}

async fn openapi_document_is_public_and_lists_every_route() {
    let db = TestStore::new().await;

    let answer = call(app(db.state()), fixture!("get-openapi.json").request()).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let paths = answer.body["paths"].as_object().expect("paths");
    for path in [
        "/v1/shows",
        "/v1/shows/{id}/open-sales",
        "/v1/reservations",
        "/v1/reservations/{id}/payment",
        "/v1/payments/{id}/refund",
        "/v1/customers/me/reservations",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
}
