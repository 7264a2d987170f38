//! Availability, sales and the customer history come from the projected read models:
//! paging, refunds in the sales figures, a show not projected yet, and the live
//! projector following commands.

use axum::http::StatusCode;
use chrono::TimeDelta;
use serde_json::Value;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

fn reservation_ids(reply: &Reply) -> Vec<String> {
    reply.body["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reservation_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_history_is_paged_newest_first_with_a_cursor() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let mut placed = Vec::new();
        for _ in 0..3 {
            placed.push(hold(&api, &show_id, "alice", 1).await);
            api.clock.advance(TimeDelta::minutes(1));
        }

        let first = get("/v1/customers/me/reservations?limit=2")
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        assert_eq!(first.headers["x-read-model"], "projected");
        assert_eq!(
            reservation_ids(&first),
            vec![placed[2].clone(), placed[1].clone()]
        );
        let cursor = first.body["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_owned();

        let second = get(&format!(
            "/v1/customers/me/reservations?limit=2&cursor={cursor}"
        ))
        .bearer(&customer("alice"))
        .send(&api)
        .await;
        assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
        assert_eq!(reservation_ids(&second), vec![placed[0].clone()]);
        assert!(
            second.body.get("next_cursor").is_none(),
            "{:?}",
            second.body
        );

        let everything = get("/v1/customers/me/reservations")
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(
            reservation_ids(&everything).len(),
            3,
            "the default page holds them all"
        );
    })
    .await;
}

#[tokio::test]
async fn a_bad_page_size_or_cursor_is_a_problem() {
    with_sqlite(|store| async move {
        let api = api(store);
        let cases = [
            ("limit=0", StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ("limit=101", StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ("limit=two", StatusCode::BAD_REQUEST, "bad-request"),
            (
                "cursor=not-a-cursor",
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
            (
                "cursor=123_not-a-uuid",
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
            ("cursor=", StatusCode::BAD_REQUEST, "bad-request"),
            // Only the spelling a page hands out (the documented pattern).
            (
                "cursor=123_0193000000007000800000000000000A",
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
            (
                "cursor=%2B123_01930000000070008000000000000000",
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
            ("page=2", StatusCode::BAD_REQUEST, "bad-request"),
        ];
        for (query, status, slug) in cases {
            get(&format!("/v1/customers/me/reservations?{query}"))
                .bearer(&customer("alice"))
                .send(&api)
                .await
                .problem(status, slug);
        }
        // Nineteen digits fit the pattern even past the largest instant: an empty page.
        let reply = get("/v1/customers/me/reservations?cursor=9999999999999999999_01930000000070008000000000000000")
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.body["reservations"], serde_json::json!([]));
    })
    .await;
}

#[tokio::test]
async fn sales_count_refunds_and_net_revenue_by_section_and_hour() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let refunded = hold(&api, &show_id, "alice", 2).await;
        pay(&api, &refunded, "alice", "tok_visa").await;
        let kept = hold(&api, &show_id, "bob", 3).await;
        pay(&api, &kept, "bob", "tok_visa").await;
        let cancelled = post(&format!("/v1/reservations/{refunded}/cancel"))
            .bearer(&customer("alice"))
            .send(&api)
            .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);

        let sales = get(&format!("/v1/shows/{show_id}/sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(sales.status, StatusCode::OK, "{:?}", sales.body);
        assert_eq!(sales.headers["x-read-model"], "projected");
        let figures = |v: &Value| {
            (
                v["tickets_sold"].as_i64(),
                v["revenue_minor"].as_i64(),
                v["gross_revenue_minor"].as_i64(),
                v["refunds_count"].as_i64(),
                v["refunds_minor"].as_i64(),
            )
        };
        let expected = (Some(3), Some(13_500), Some(22_500), Some(1), Some(9_000));
        assert_eq!(figures(&sales.body), expected, "{:?}", sales.body);
        assert_eq!(sales.body["currency"], "EUR");
        assert_eq!(sales.body["sections"][0]["name"], "Floor");
        assert_eq!(figures(&sales.body["sections"][0]), expected);
        // By the events' recording time: one hour, or two if the test ran across one.
        let hours = sales.body["by_hour"].as_array().unwrap();
        assert!((1..=2).contains(&hours.len()), "{hours:?}");
        let hourly_net: i64 = hours
            .iter()
            .map(|h| h["revenue_minor"].as_i64().unwrap())
            .sum();
        assert_eq!(hourly_net, 13_500);
    })
    .await;
}

#[tokio::test]
async fn a_show_not_projected_yet_is_fully_available_and_has_no_sales() {
    with_sqlite(|store| async move {
        let api = unprojected_api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;

        let seats_now = get(&format!("/v1/shows/{show_id}/availability"))
            .send(&api)
            .await;
        assert_eq!(seats_now.status, StatusCode::OK, "{:?}", seats_now.body);
        assert_eq!(seats_now.body["currency"], "EUR");
        let floor = &seats_now.body["sections"][0];
        assert_eq!(
            (
                &floor["name"],
                &floor["capacity"],
                &floor["held"],
                &floor["sold"],
                &floor["available"],
                &floor["unit_price_minor"]
            ),
            (
                &"Floor".into(),
                &10.into(),
                &0.into(),
                &0.into(),
                &10.into(),
                &4500.into()
            )
        );
        let sales = get(&format!("/v1/shows/{show_id}/sales"))
            .bearer(&organizer("org-x"))
            .send(&api)
            .await;
        assert_eq!(sales.status, StatusCode::OK, "{:?}", sales.body);
        assert_eq!(
            (
                sales.body["tickets_sold"].as_i64(),
                sales.body["revenue_minor"].as_i64()
            ),
            (Some(0), Some(0))
        );
        assert_eq!(sales.body["sections"][0]["name"], "Floor");

        // A hold the projector has not applied is not shown yet; once applied, it is.
        hold(&api, &show_id, "alice", 4).await;
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
        api.project().await;
        assert_eq!(seats(&api, &show_id).await, (4, 0, 6));

        get("/v1/shows/01930000-0000-7000-8000-000000000000/availability")
            .send(&api)
            .await
            .problem(StatusCode::NOT_FOUND, "not-found");
    })
    .await;
}

#[tokio::test]
async fn the_live_projector_shows_holds_payments_and_history() {
    with_sqlite(|store| async move {
        let mut api = live_api(store);
        let show_id = show_on_sale(&api, "org-x", 10).await;
        let reservation = hold(&api, &show_id, "alice", 2).await;
        eventually("the hold to be projected", || async {
            (seats(&api, &show_id).await == (2, 0, 8)).then_some(())
        })
        .await;

        let paid = pay(&api, &reservation, "alice", "tok_visa").await;
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
        eventually("the payment to be projected", || async {
            (seats(&api, &show_id).await == (0, 2, 8)).then_some(())
        })
        .await;
        let history = eventually("the history to show the purchase", || async {
            let reply = get("/v1/customers/me/reservations")
                .bearer(&customer("alice"))
                .send(&api)
                .await;
            (reply.body["reservations"][0]["status"] == "confirmed").then_some(reply)
        })
        .await;
        assert_eq!(reservation_ids(&history), vec![reservation]);

        assert!(
            api.stop_projector().await > 0,
            "the loop applied the bus's messages"
        );
    })
    .await;
}
