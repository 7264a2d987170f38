use axum::http::StatusCode;
use serde_json::json;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

#[tokio::test]
async fn a_purchase_goes_through_every_route_from_show_to_confirmed_tickets() {
    with_sqlite(|store| async move {
        let api = api(store);
        let created = post("/v1/shows")
            .bearer(&organizer("org-x"))
            .json(new_show(100))
            .send(&api)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["sales"], "scheduled");
        assert_eq!(created.body["organizer_id"], "org-x");
        assert_eq!(created.body["sections"][0]["capacity"], 100);
        let show_id = created.body["show_id"].as_str().unwrap().to_owned();

        let opened = post(&format!("/v1/shows/{show_id}/open-sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(
            (opened.status, opened.body["sales"].as_str()),
            (StatusCode::OK, Some("on_sale"))
        );

        let show = get(&format!("/v1/shows/{show_id}")).send(&api).await;
        assert_eq!(
            (show.status, show.body["title"].as_str()),
            (StatusCode::OK, Some("Summer Festival"))
        );

        let held = post("/v1/reservations")
            .bearer(&customer("alice"))
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 2}))
            .send(&api)
            .await;
        assert_eq!(held.status, StatusCode::CREATED, "{:?}", held.body);
        assert_eq!(held.body["amount_minor"], 9000);
        assert_eq!(held.body["currency"], "EUR");
        assert_eq!(held.body["expires_at"], "2026-06-01T12:10:00Z");
        let reservation_id = held.body["reservation_id"].as_str().unwrap().to_owned();
        assert_eq!(seats(&api, &show_id).await, (2, 0, 98));

        let paid = pay(&api, &reservation_id, "alice", "tok_visa").await;
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
        assert_eq!(paid.body["status"], "confirmed");
        assert_eq!(paid.body["amount_minor"], 9000);
        assert_eq!(seats(&api, &show_id).await, (0, 2, 98));

        let reservation = get(&format!("/v1/reservations/{reservation_id}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(reservation.status, StatusCode::OK);
        assert_eq!(reservation.body["status"], "confirmed");
        assert_eq!(reservation.body["payment_id"], paid.body["payment_id"]);

        let history = get("/v1/customers/me/reservations")
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(history.status, StatusCode::OK);
        assert_eq!(history.body["reservations"].as_array().unwrap().len(), 1);
        assert_eq!(
            history.body["reservations"][0]["reservation_id"],
            reservation_id.as_str()
        );
        let others = get("/v1/customers/me/reservations")
            .bearer(&customer("bob"))
            .send(&api)
            .await;
        assert_eq!(others.body["reservations"], json!([]));

        let sales = get(&format!("/v1/shows/{show_id}/sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(sales.status, StatusCode::OK);
        assert_eq!(
            (
                sales.body["tickets_sold"].as_u64(),
                sales.body["revenue_minor"].as_i64()
            ),
            (Some(2), Some(9000))
        );

        let closed = post(&format!("/v1/shows/{show_id}/close-sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(
            (closed.status, closed.body["sales"].as_str()),
            (StatusCode::OK, Some("closed"))
        );
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_held_or_confirmed_reservation_releases_or_refunds() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let held = hold(&api, &show_id, "alice", 2).await;
        let cancelled = post(&format!("/v1/reservations/{held}/cancel"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
        assert_eq!(cancelled.body["status"], "cancelled");
        assert!(cancelled.body.get("refunded_minor").is_none());

        let bought = hold(&api, &show_id, "alice", 3).await;
        pay(&api, &bought, "alice", "tok_visa").await;
        let refunded = post(&format!("/v1/reservations/{bought}/cancel"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(refunded.status, StatusCode::OK, "{:?}", refunded.body);
        assert_eq!(
            (
                refunded.body["status"].as_str(),
                refunded.body["refunded_minor"].as_i64()
            ),
            (Some("refunded"), Some(13_500))
        );
        assert_eq!(api.gateway.refund_count(), 1);
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
    })
    .await;
}

#[tokio::test]
async fn the_organizer_refunds_a_payment() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 1).await;
        let paid = pay(&api, &reservation, "alice", "tok_visa").await;
        let payment_id = paid.body["payment_id"].as_str().unwrap();
        let refund = post(&format!("/v1/payments/{payment_id}/refund"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(refund.status, StatusCode::OK, "{:?}", refund.body);
        assert_eq!(refund.body["refunded_minor"], 4500);
        let again = post(&format!("/v1/payments/{payment_id}/refund"))
            .bearer(&admin())
            .send(&api)
            .await;
        again.problem(StatusCode::CONFLICT, "already-refunded");
        assert_eq!(api.gateway.refund_count(), 1);
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_show_releases_holds_and_refunds_purchases() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let held = hold(&api, &show_id, "alice", 2).await;
        let bought = hold(&api, &show_id, "bob", 3).await;
        pay(&api, &bought, "bob", "tok_visa").await;
        let cancelled = post(&format!("/v1/shows/{show_id}/cancel"))
            .bearer(&organizer("org-x"))
            .json(json!({"reason": "storm warning"}))
            .send(&api)
            .await;
        assert_eq!(
            (cancelled.status, cancelled.body["sales"].as_str()),
            (StatusCode::OK, Some("cancelled"))
        );
        assert_eq!(api.gateway.refund_count(), 1);
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
        let alice = get(&format!("/v1/reservations/{held}"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(alice.body["status"], "cancelled");
        let bob = get(&format!("/v1/reservations/{bought}"))
            .bearer(&customer("bob"))
            .send(&api)
            .await;
        assert_eq!(bob.body["status"], "refunded");
        let hold_again = post("/v1/reservations")
            .bearer(&customer("carol"))
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 1}))
            .send(&api)
            .await;
        hold_again.problem(StatusCode::CONFLICT, "show-cancelled");
        // Without a body the default reason is used; a cancelled show stays cancelled.
        let again = post(&format!("/v1/shows/{show_id}/cancel"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
        assert_eq!(api.gateway.refund_count(), 1);
    })
    .await;
}

/// An organizer splits a section on sale into more buckets and rebalances it; another
/// organizer and a customer may not; a split to no more buckets is refused.
#[tokio::test]
async fn an_organizer_splits_a_section_on_sale_and_rebalances_it() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 20).await;
        hold(&api, &show_id, "alice", 3).await;
        let split = post(&format!("/v1/shows/{show_id}/sections/Floor/buckets"))
            .bearer(&organizer("org-x"))
            .json(json!({"buckets": 4}))
            .send(&api)
            .await;
        assert_eq!(split.status, StatusCode::OK, "{:?}", split.body);
        assert_eq!(split.body["section"], "Floor");
        assert_eq!(split.body["buckets"], 4);
        assert!(
            split.body["moved"].as_u64().unwrap() > 0,
            "{:?}",
            split.body
        );

        post(&format!("/v1/shows/{show_id}/sections/Floor/buckets"))
            .bearer(&organizer("org-x"))
            .json(json!({"buckets": 3}))
            .send(&api)
            .await
            .problem(StatusCode::CONFLICT, "buckets-not-raised");
        post(&format!("/v1/shows/{show_id}/sections/Floor/buckets"))
            .bearer(&organizer("org-x"))
            .json(json!({"buckets": 21}))
            .send(&api)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
        for token in [organizer("org-y"), customer("alice")] {
            post(&format!("/v1/shows/{show_id}/sections/Floor/rebalance"))
                .bearer(&token)
                .send(&api)
                .await
                .problem(StatusCode::FORBIDDEN, "forbidden");
        }
        let rebalanced = post(&format!("/v1/shows/{show_id}/sections/Floor/rebalance"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(rebalanced.status, StatusCode::OK, "{:?}", rebalanced.body);
        assert_eq!(rebalanced.body["buckets"], 4);
        for path in ["Gallery/rebalance", "Gallery/buckets"] {
            post(&format!("/v1/shows/{show_id}/sections/{path}"))
                .bearer(&organizer("org-x"))
                .json(json!({"buckets": 8}))
                .send(&api)
                .await
                .problem(StatusCode::NOT_FOUND, "not-found");
        }

        // Every seat still sells once: 17 free after the 3 held.
        for n in 0..17 {
            hold(&api, &show_id, &format!("buyer-{n}"), 1).await;
        }
        post("/v1/reservations")
            .bearer(&customer("late"))
            .json(json!({"show_id": show_id, "section": "Floor", "quantity": 1}))
            .send(&api)
            .await
            .problem(StatusCode::CONFLICT, "sold-out");
    })
    .await;
}
