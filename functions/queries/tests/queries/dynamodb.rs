//! The `queries` function as deployed with `READ_MODEL_STORE=dynamodb`: its projected
//! routes answer from DynamoDB read models (on the test DynamoDB server, tables of the
//! test's own), which the projector filled from the store.

use std::sync::Arc;

use ticketing_fn_queries::app;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{
    call, purchase, show_on_sale, TestStore, CUSTOMER, OTHER_CUSTOMER, SHOW_ID,
};
use ticketing_read_models::testing::dynamodb::{dynamodb_trial, with_dynamodb};
use ticketing_store::testing::Trial;

/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<Trial> {
    ticketing_store::trials![
        dynamodb_trial => projected_routes_answer_from_the_dynamodb_read_models;
    ]
}

/// `GET /v1/customers/me/reservations?<query>` as API Gateway hands it over.
fn my_reservations(query: &str) -> lambda_http::Request {
    let mut payload = fixture!("my-reservations.json").json();
    payload["rawQueryString"] = query.into();
    let parameters: serde_json::Map<String, serde_json::Value> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.into()))
        .collect();
    payload["queryStringParameters"] = parameters.into();
    lambda_http::request::from_str(&payload.to_string())
        .expect("the paged fixture is an API Gateway event")
}

async fn projected_routes_answer_from_the_dynamodb_read_models() {
    with_dynamodb("queries_on_dynamodb", |dynamo| async move {
        let mut db = TestStore::new().await;
        // The embedded read models stay empty: whatever the routes report was read
        // from DynamoDB.
        db.read_models = Arc::new(dynamo);
        let state = db.state();
        let show_id = show_on_sale(&state.ticketing).await;
        let mut mine = Vec::new();
        for _ in 0..3 {
            mine.push(purchase(&state.ticketing, show_id, CUSTOMER).await.0);
        }
        purchase(&state.ticketing, show_id, OTHER_CUSTOMER).await;

        let sales = || {
            fixture!("get-sales.json")
                .with(SHOW_ID, show_id.0)
                .request()
        };
        let before = call(app(state.clone()), sales()).await;
        assert_eq!(before.status, 200, "{}", before.body);
        assert_eq!(before.body["tickets_sold"], 0, "nothing is projected yet");

        db.project().await;

        let seats = call(
            app(state.clone()),
            fixture!("get-availability.json")
                .with(SHOW_ID, show_id.0)
                .request(),
        )
        .await;
        assert_eq!(seats.status, 200, "{}", seats.body);
        assert_eq!(seats.headers["x-read-model"], "projected");
        assert_eq!(seats.body["sections"][0]["sold"], 8, "{}", seats.body);
        assert_eq!(seats.body["sections"][0]["available"], 92, "{}", seats.body);

        let after = call(app(state.clone()), sales()).await;
        assert_eq!(after.status, 200, "{}", after.body);
        assert_eq!(after.body["currency"], "EUR");
        assert_eq!(after.body["tickets_sold"], 8, "{}", after.body);
        assert_eq!(after.body["revenue_minor"], 8 * 4500, "{}", after.body);
        let hourly_tickets: i64 = after.body["by_hour"]
            .as_array()
            .expect("hourly sales")
            .iter()
            .map(|hour| hour["tickets_sold"].as_i64().expect("a count"))
            .sum();
        assert_eq!(hourly_tickets, 8, "{}", after.body);

        // The customer's history, newest first, two at a time, through the cursor.
        let first = call(app(state.clone()), my_reservations("limit=2")).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let cursor = first.text("next_cursor").to_owned();
        let second = call(
            app(state.clone()),
            my_reservations(&format!("limit=2&cursor={cursor}")),
        )
        .await;
        assert_eq!(second.status, 200, "{}", second.body);
        assert!(second.body.get("next_cursor").is_none(), "{}", second.body);
        let listed: Vec<String> = [&first, &second]
            .iter()
            .flat_map(|page| page.body["reservations"].as_array().expect("a list"))
            .map(|item| item["reservation_id"].as_str().expect("an id").to_owned())
            .collect();
        let newest_first: Vec<String> = mine.iter().rev().map(|id| id.0.to_string()).collect();
        assert_eq!(listed, newest_first);
    })
    .await;
}
