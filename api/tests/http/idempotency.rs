use axum::http::StatusCode;
use serde_json::json;
use ticketing_app::payments::ChargeGate;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_returns_the_first_answer_and_holds_nothing_more() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let request = || {
            post("/v1/reservations")
                .bearer(&customer("alice"))
                .header("idempotency-key", "9f1c-hold-1")
                .json(json!({"show_id": show_id, "section": "Floor", "quantity": 2}))
        };
        let first = request().send(&api).await;
        assert_eq!(first.status, StatusCode::CREATED);
        let retry = request().send(&api).await;
        assert_eq!(retry.status, StatusCode::CREATED);
        assert_eq!(retry.body, first.body);
        assert_eq!(seats(&api, &show_id).await, (2, 0, 8));

        let reservation = first.body["reservation_id"].as_str().unwrap();
        let payment = || {
            post(&format!("/v1/reservations/{reservation}/payment"))
                .bearer(&customer("alice"))
                .header("idempotency-key", "9f1c-pay-1")
                .json(json!({"card_token": "tok_visa"}))
        };
        let paid = payment().send(&api).await;
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
        let repaid = payment().send(&api).await;
        assert_eq!((repaid.status, &repaid.body), (StatusCode::OK, &paid.body));
        assert_eq!(api.gateway.captured_count(), 1);

        let created = || {
            post("/v1/shows")
                .bearer(&organizer("org-x"))
                .header("idempotency-key", "show-1")
                .json(new_show(5))
        };
        let show = created().send(&api).await;
        assert_eq!(
            created().send(&api).await.body["show_id"],
            show.body["show_id"]
        );
    })
    .await;
}

#[tokio::test]
async fn the_same_key_with_another_body_answers_422_and_changes_nothing() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let with_quantity = |quantity: u32| {
            post("/v1/reservations")
                .bearer(&customer("alice"))
                .header("idempotency-key", "k-1")
                .json(json!({"show_id": show_id, "section": "Floor", "quantity": quantity}))
        };
        assert_eq!(
            with_quantity(2).send(&api).await.status,
            StatusCode::CREATED
        );
        with_quantity(3)
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused");
        assert_eq!(seats(&api, &show_id).await, (2, 0, 8));
        // Keys belong to their caller: bob's "k-1" is his own.
        let bobs = post("/v1/reservations")
            .bearer(&customer("bob"))
            .header("idempotency-key", "k-1")
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 3}))
            .send(&api)
            .await;
        assert_eq!(bobs.status, StatusCode::CREATED);
        assert_eq!(seats(&api, &show_id).await, (5, 0, 5));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_arriving_while_the_first_is_running_answers_409() {
    with_sqlite(|store| async move {
        let charges = ChargeGate::closed();
        let api = std::sync::Arc::new(gated_api(store, std::sync::Arc::clone(&charges)));
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 2).await;
        let payment = move || {
            post(&format!("/v1/reservations/{reservation}/payment"))
                .bearer(&customer("alice"))
                .header("idempotency-key", "pay-once")
                .json(json!({"card_token": "tok_visa"}))
        };
        let first = {
            let (api, request) = (api.clone(), payment());
            tokio::spawn(async move { request.send(&api).await })
        };
        // The first is at the provider, its key claimed, until the gate opens.
        charges.charge_arrived().await;
        let duplicate = payment().send(&api).await;
        duplicate.problem(StatusCode::CONFLICT, "request-in-progress");
        assert!(duplicate.headers.contains_key("retry-after"));
        charges.open();
        let first = first.await.unwrap();
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        let after = payment().send(&api).await;
        assert_eq!((after.status, &after.body), (StatusCode::OK, &first.body));
        assert_eq!(api.gateway.captured_count(), 1);
    })
    .await;
}
