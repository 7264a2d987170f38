use axum::http::{Method, StatusCode};
use chrono::TimeDelta;
use serde_json::json;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

#[tokio::test]
async fn a_sold_out_section_answers_409_with_what_is_left() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 3).await;
        hold(&api, &show_id, "alice", 2).await;
        let refused = post("/v1/reservations")
            .bearer(&customer("bob"))
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 2}))
            .send(&api)
            .await;
        refused.problem(StatusCode::CONFLICT, "sold-out");
        assert_eq!(refused.body["available"], 1);
        assert_eq!(seats(&api, &show_id).await, (2, 0, 1));
    })
    .await;
}

#[tokio::test]
async fn a_declined_card_answers_402_and_releases_the_seats() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 2).await;
        pay(&api, &reservation, "alice", "tok_chargeDeclined")
            .await
            .problem(StatusCode::PAYMENT_REQUIRED, "payment-declined");
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
    })
    .await;
}

#[tokio::test]
async fn paying_after_the_hold_expired_and_the_seats_went_answers_410() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 2).await;
        let late = hold(&api, &show_id, "alice", 2).await;
        api.clock.advance(TimeDelta::minutes(11));
        hold(&api, &show_id, "bob", 2).await;
        pay(&api, &late, "alice", "tok_visa")
            .await
            .problem(StatusCode::GONE, "hold-expired");
        assert_eq!(api.gateway.captured_count(), 0);
        let reservation = get(&format!("/v1/reservations/{late}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(reservation.body["status"], "expired");
    })
    .await;
}

#[tokio::test]
async fn state_conflicts_answer_409() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 1).await;
        assert_eq!(
            pay(&api, &reservation, "alice", "tok_visa").await.status,
            StatusCode::OK
        );
        pay(&api, &reservation, "alice", "tok_visa")
            .await
            .problem(StatusCode::CONFLICT, "already-paid");
        post(&format!("/v1/shows/{show_id}/open-sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await
            .problem(StatusCode::CONFLICT, "state-conflict");
        post(&format!("/v1/shows/{show_id}/close-sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        let closed = post("/v1/reservations")
            .bearer(&customer("bob"))
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 1}))
            .send(&api)
            .await;
        closed.problem(StatusCode::CONFLICT, "sales-not-open");
    })
    .await;
}

#[tokio::test]
async fn a_silent_payment_provider_answers_503_with_retry_after() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 1).await;
        let reply = pay(&api, &reservation, "alice", "tok_timeout").await;
        reply.problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment-provider-unavailable",
        );
        assert!(reply.headers.contains_key("retry-after"));
        let pending = get(&format!("/v1/reservations/{reservation}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(pending.body["status"], "payment_pending");
    })
    .await;
}

#[tokio::test]
async fn unknown_things_answer_404_or_422() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let missing = "01930000-0000-7000-8000-000000000000";
        get(&format!("/v1/shows/{missing}"))
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        get(&format!("/v1/shows/{missing}/availability"))
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        get(&format!("/v1/reservations/{missing}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        pay(&api, missing, "alice", "tok_visa")
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        post(&format!("/v1/payments/{missing}/refund"))
            .bearer(&admin())
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        let no_show = post("/v1/reservations")
            .bearer(&customer("alice"))
            .json(json!({"show_id": missing, "section": "Floor", "quantity": 1}))
            .send(&api)
            .await;
        no_show.problem(StatusCode::NOT_FOUND, "not-found");
        let no_section = post("/v1/reservations")
            .bearer(&customer("alice"))
            .json(json!({"show_id": show_id, "section": "Balcony", "quantity": 1}))
            .send(&api)
            .await;
        no_section.problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown-section");
        get("/v1/nowhere")
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
        call(Method::DELETE, &format!("/v1/shows/{show_id}"))
            .send(&api)
            .await
            .problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    })
    .await;
}

#[tokio::test]
async fn bad_input_of_every_kind_gets_a_4xx_problem_and_changes_nothing() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let alice = customer("alice");
        let hold_with = |body: serde_json::Value| post("/v1/reservations").bearer(&alice).json(body);
        let cases = [
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": 0})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": -1})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": 7})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": 4_294_967_296u64})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": 1e30})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": "2"})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor"})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "Floor", "quantity": 1, "price": 0})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": "not-a-uuid", "section": "Floor", "quantity": 1})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!({"show_id": show_id, "section": "../../etc", "quantity": 1})), StatusCode::UNPROCESSABLE_ENTITY),
            (hold_with(json!([1, 2, 3])), StatusCode::UNPROCESSABLE_ENTITY),
            (post("/v1/reservations").bearer(&alice).raw("application/json", "{\"show_id\": "), StatusCode::BAD_REQUEST),
            (post("/v1/reservations").bearer(&alice).raw("application/json", ""), StatusCode::BAD_REQUEST),
            (post("/v1/reservations").bearer(&alice).raw("text/plain", "quantity=2"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (post("/v1/reservations").bearer(&alice).raw("application/json", "x".repeat(70_000)), StatusCode::PAYLOAD_TOO_LARGE),
            (post("/v1/reservations/not-a-uuid/payment").bearer(&alice).json(json!({"card_token": "tok_visa"})), StatusCode::BAD_REQUEST),
            (get("/v1/shows/12345"), StatusCode::BAD_REQUEST),
        ];
        for (i, (request, expected)) in cases.into_iter().enumerate() {
            let reply = request.send(&api).await;
            assert_eq!(reply.status, expected, "case {i}: {:?}", reply.body);
            assert_eq!(reply.headers["content-type"], "application/problem+json", "case {i}");
            assert!(reply.body["type"].as_str().unwrap().starts_with("urn:ticketing:problem:"), "case {i}");
        }
        let reservation = hold(&api, &show_id, "alice", 1).await;
        for card in [json!({"card_token": ""}), json!({"card_token": "tok visa; drop"}), json!({"card": "tok_visa"}), json!({"card_token": 42})] {
            let reply = post(&format!("/v1/reservations/{reservation}/payment")).bearer(&alice).json(card.clone()).send(&api).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{card}: {:?}", reply.body);
        }
        let shows = [
            json!({"title": "", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 1, "unit_price_minor": 100}]}),
            json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EURO", "sections": [{"name": "A", "capacity": 1, "unit_price_minor": 100}]}),
            json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 1, "unit_price_minor": -100}]}),
            json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": []}),
            json!({"title": "T", "venue": "V", "starts_at": "2020-01-01T00:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 1, "unit_price_minor": 100}]}),
            json!({"title": "T", "venue": "V", "starts_at": "tomorrow", "currency": "EUR", "sections": [{"name": "A", "capacity": 1, "unit_price_minor": 100}]}),
            // Escrow buckets: none, more than seats, more than 64.
            json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 10, "unit_price_minor": 100, "buckets": 0}]}),
            json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 10, "unit_price_minor": 100, "buckets": 11}]}),
            json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 1000, "unit_price_minor": 100, "buckets": 65}]}),
        ];
        for show in shows {
            let reply = post("/v1/shows").bearer(&organizer("org-x")).json(show.clone()).send(&api).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{show}: {:?}", reply.body);
        }
        // The same section in as many buckets as seats is fine.
        let split = json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "sections": [{"name": "A", "capacity": 10, "unit_price_minor": 100, "buckets": 10}]});
        let reply = post("/v1/shows").bearer(&organizer("org-x")).json(split).send(&api).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        post("/v1/reservations").bearer(&alice).header("idempotency-key", &"k".repeat(300)).json(json!({"show_id": show_id, "section": "Floor", "quantity": 1})).send(&api).await.problem(StatusCode::BAD_REQUEST, "bad-request");
        // Only the one valid hold above took seats.
        assert_eq!(seats(&api, &show_id).await, (1, 0, 9));
        assert_eq!(api.gateway.captured_count(), 0);
    })
    .await;
}

/// What JSON Schema allows, the API takes: an `integer` may be written `2.0`.
#[tokio::test]
async fn whole_numbers_written_with_a_fraction_are_integers() {
    with_sqlite(|store| async move {
        let api = api(store);
        let boss = organizer("org-x");
        let show = json!({"title": "T", "venue": "V", "starts_at": "2026-07-01T20:00:00Z", "currency": "EUR", "max_per_order": 5.0,
            "sections": [{"name": "Floor", "capacity": 10.0, "unit_price_minor": 100.0, "buckets": 2.0}]});
        let reply = post("/v1/shows").bearer(&boss).json(show).send(&api).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body["max_per_order"], 5);
        assert_eq!(reply.body["sections"][0]["capacity"], 10);
        let show_id = reply.body["show_id"].as_str().unwrap().to_owned();
        post(&format!("/v1/shows/{show_id}/open-sales")).bearer(&boss).send(&api).await;
        let alice = customer("alice");
        let hold_with = |quantity: serde_json::Value| {
            post("/v1/reservations").bearer(&alice).json(json!({"show_id": show_id, "section": "Floor", "quantity": quantity}))
        };
        let reply = hold_with(json!(2.0)).send(&api).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body["quantity"], 2);
        for quantity in [json!(2.5), json!(-1.0), json!(1e19)] {
            hold_with(quantity).send(&api).await.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        }
    })
    .await;
}

/// The body of `POST /v1/shows/{id}/cancel` is optional: none, `null` or an object;
/// one too large is a 413 problem like on every other route.
#[tokio::test]
async fn cancelling_a_show_takes_no_body_null_or_an_object() {
    with_sqlite(|store| async move {
        let api = api(store);
        let boss = organizer("org-x");
        for body in [
            "",
            "null",
            "{}",
            r#"{"reason": null}"#,
            r#"{"reason": "rain"}"#,
        ] {
            let show_id = show_on_sale(&api, "org-x", 3).await;
            let reply = post(&format!("/v1/shows/{show_id}/cancel"))
                .bearer(&boss)
                .raw("application/json", body)
                .send(&api)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{body:?}: {:?}", reply.body);
        }
        let show_id = show_on_sale(&api, "org-x", 3).await;
        let cancel = || post(&format!("/v1/shows/{show_id}/cancel")).bearer(&boss);
        cancel()
            .raw("application/json", "x".repeat(70_000))
            .send(&api)
            .await
            .problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
        cancel()
            .raw("application/json", "[1]")
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        cancel()
            .raw("application/json", "{")
            .send(&api)
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");
    })
    .await;
}
