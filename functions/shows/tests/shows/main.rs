//! The `shows` function, driven by the API Gateway payloads in `fixtures/`.

use ticketing_fn_shows::app;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{call, TestStore, ORGANIZER, SHOW_ID};

#[tokio::test]
async fn organizer_creates_a_show_and_opens_its_sales() {
    let db = TestStore::new().await;

    let created = call(app(db.state()), fixture!("create-show.json").request()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.text("organizer_id"), ORGANIZER);
    assert_eq!(created.text("sales"), "scheduled");
    assert_eq!(created.body["sections"].as_array().map(Vec::len), Some(2));
    let show_id = created.text("show_id").to_owned();

    let opened = call(
        app(db.state()),
        fixture!("open-sales.json")
            .with(SHOW_ID, &show_id)
            .request(),
    )
    .await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.text("show_id"), show_id);
    assert_eq!(opened.text("sales"), "on_sale");
}

#[tokio::test]
async fn request_without_claims_or_token_is_unauthorized() {
    let db = TestStore::new().await;

    let answer = call(
        app(db.state()),
        fixture!("create-show-no-auth.json").request(),
    )
    .await;

    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
    assert_eq!(answer.text("type"), "urn:ticketing:problem:unauthorized");
    assert_eq!(answer.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn customer_cannot_create_a_show() {
    let db = TestStore::new().await;

    let answer = call(
        app(db.state()),
        fixture!("create-show-as-customer.json").request(),
    )
    .await;

    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
}

#[tokio::test]
async fn opening_sales_of_an_unknown_show_is_not_found() {
    let db = TestStore::new().await;

    // The fixture's placeholder id names no show.
    let answer = call(app(db.state()), fixture!("open-sales.json").request()).await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.text("type"), "urn:ticketing:problem:not-found");
}

#[tokio::test]
async fn routes_of_other_functions_are_not_served_here() {
    let db = TestStore::new().await;
    let hold = ticketing_fn_support::testing::Fixture::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../reservations"),
        "hold-seats.json",
    );

    let answer = call(app(db.state()), hold.request()).await;

    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/problem+json");
}
