//! Stripe's webhooks over HTTP: signed events settle a pending payment once; anything
//! unsigned, altered, stale or malformed is refused with 400 and changes nothing.

use axum::http::StatusCode;
use serde_json::{json, Value};
use ticketing_app::payments::stripe_webhook::sign;
use ticketing_app::Clock;
use ticketing_store::testing::with_sqlite;

use crate::support::*;

/// A reservation of `buyer` whose payment is left pending (its answer lost), and the
/// payment's id.
async fn pending_payment(
    api: &TestApi,
    show_id: &str,
    buyer: &str,
    card: &str,
) -> (String, String) {
    let reservation_id = hold(api, show_id, buyer, 1).await;
    let lost = pay(api, &reservation_id, buyer, card).await;
    lost.problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "payment-provider-unavailable",
    );
    let read = get(&format!("/v1/reservations/{reservation_id}"))
        .bearer(&customer(buyer))
        .send(api)
        .await;
    assert_eq!(read.body["status"], "payment_pending", "{:?}", read.body);
    let payment_id = read.body["payment_id"].as_str().unwrap().to_owned();
    (reservation_id, payment_id)
}

fn event(id: &str, kind: &str, reservation_id: &str, payment_id: &str) -> Value {
    json!({
        "id": id,
        "object": "event",
        "type": kind,
        "data": {"object": {
            "id": format!("ch_sim_{payment_id}"),
            "object": "payment_intent",
            "status": if kind == "payment_intent.succeeded" { "succeeded" } else { "requires_payment_method" },
            "metadata": {"payment_id": payment_id, "reservation_id": reservation_id},
            "last_payment_error": {"type": "card_error", "code": "card_declined"},
        }},
    })
}

async fn deliver(api: &TestApi, body: &Value, signature: Option<String>) -> Reply {
    let payload = body.to_string();
    let mut call = post("/v1/webhooks/stripe").raw("application/json", payload.clone());
    if let Some(signature) = signature {
        call = call.header("stripe-signature", &signature);
    }
    call.send(api).await
}

fn signed(api: &TestApi, body: &Value) -> Option<String> {
    Some(sign(
        body.to_string().as_bytes(),
        STRIPE_WEBHOOK_SECRET,
        api.clock.now().timestamp(),
    ))
}

async fn status(api: &TestApi, reservation_id: &str, buyer: &str) -> Value {
    get(&format!("/v1/reservations/{reservation_id}"))
        .bearer(&customer(buyer))
        .send(api)
        .await
        .body["status"]
        .clone()
}

#[tokio::test]
async fn signed_events_settle_a_pending_payment_once() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-a", 10).await;

        // Charged, answer lost: the success event confirms it, once.
        let (paid, payment) =
            pending_payment(&api, &show_id, "alice", "tok_timeoutAfterCapture").await;
        let succeeded = event("evt_1", "payment_intent.succeeded", &paid, &payment);
        let first = deliver(&api, &succeeded, signed(&api, &succeeded)).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        assert_eq!(
            first.body,
            json!({"event_id": "evt_1", "outcome": "applied"})
        );
        assert_eq!(status(&api, &paid, "alice").await, "confirmed");
        let again = deliver(&api, &succeeded, signed(&api, &succeeded)).await;
        assert_eq!(again.body["outcome"], "already_settled");

        // Never charged: the failure event releases the seat; a late success of the
        // same payment changes nothing.
        let (failed, payment) = pending_payment(&api, &show_id, "bob", "tok_timeout").await;
        let failure = event("evt_2", "payment_intent.payment_failed", &failed, &payment);
        let answer = deliver(&api, &failure, signed(&api, &failure)).await;
        assert_eq!(answer.body["outcome"], "applied", "{:?}", answer.body);
        assert_eq!(status(&api, &failed, "bob").await, "payment_declined");
        let late = event("evt_3", "payment_intent.succeeded", &failed, &payment);
        assert_eq!(
            deliver(&api, &late, signed(&api, &late)).await.body["outcome"],
            "already_settled"
        );

        // Events about nothing of ours are acknowledged.
        let other = json!({"id": "evt_4", "type": "customer.created", "data": {"object": {}}});
        assert_eq!(
            deliver(&api, &other, signed(&api, &other)).await.body["outcome"],
            "ignored"
        );
    })
    .await;
}

#[tokio::test]
async fn unsigned_altered_stale_or_malformed_events_are_refused_and_change_nothing() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-a", 10).await;
        let (reservation, payment) =
            pending_payment(&api, &show_id, "alice", "tok_timeoutAfterCapture").await;
        let succeeded = event("evt_1", "payment_intent.succeeded", &reservation, &payment);

        deliver(&api, &succeeded, None)
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");
        let other_secret = sign(
            succeeded.to_string().as_bytes(),
            "whsec_someone_else",
            api.clock.now().timestamp(),
        );
        deliver(&api, &succeeded, Some(other_secret))
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");
        // Signed for another body.
        let mut altered = succeeded.clone();
        altered["data"]["object"]["metadata"]["payment_id"] = json!(uuid::Uuid::new_v4());
        deliver(&api, &altered, signed(&api, &succeeded))
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");
        // Signed ten minutes ago: a replay.
        let stale = sign(
            succeeded.to_string().as_bytes(),
            STRIPE_WEBHOOK_SECRET,
            api.clock.now().timestamp() - 600,
        );
        deliver(&api, &succeeded, Some(stale))
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");
        let garbage = json!(["not", "an", "event"]);
        deliver(&api, &garbage, signed(&api, &garbage))
            .await
            .problem(StatusCode::BAD_REQUEST, "bad-request");

        assert_eq!(status(&api, &reservation, "alice").await, "payment_pending");
    })
    .await;
}

/// 3-D Secure over HTTP: `202` with what the browser needs, the seats kept, the same
/// answer on a second attempt, and the purchase confirmed by the provider's event once
/// the customer authenticated.
#[tokio::test]
async fn a_payment_needing_authentication_answers_202_and_the_success_event_confirms_it() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-a", 10).await;
        let reservation = hold(&api, &show_id, "alice", 2).await;
        let asked = pay(&api, &reservation, "alice", "tok_threeDSecure2Required").await;
        assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
        assert_eq!(asked.body["status"], "payment_pending");
        assert_eq!(asked.body["next_action"], "authenticate");
        let secret = asked.body["client_secret"].as_str().unwrap().to_owned();
        assert!(!secret.is_empty());
        assert!(asked.body["expires_at"].is_string());
        assert_eq!(status(&api, &reservation, "alice").await, "payment_pending");
        assert_eq!(seats(&api, &show_id).await, (2, 0, 8));

        let again = pay(&api, &reservation, "alice", "tok_visa").await;
        assert_eq!(again.status, StatusCode::ACCEPTED, "{:?}", again.body);
        assert_eq!(again.body["client_secret"], secret.as_str());

        let payment = asked.body["payment_id"].as_str().unwrap().to_owned();
        api.gateway
            .authenticate(&format!("ch_sim_{payment}"), true)
            .await
            .unwrap();
        let succeeded = event("evt_1", "payment_intent.succeeded", &reservation, &payment);
        let answer = deliver(&api, &succeeded, signed(&api, &succeeded)).await;
        assert_eq!(answer.body["outcome"], "applied", "{:?}", answer.body);
        assert_eq!(status(&api, &reservation, "alice").await, "confirmed");
        assert_eq!(seats(&api, &show_id).await, (0, 2, 8));
    })
    .await;
}

fn charge_event(id: &str, kind: &str, payment_id: &str, object: Value) -> Value {
    let mut object = object;
    object["payment_intent"] = json!(format!("ch_sim_{payment_id}"));
    json!({"id": id, "object": "event", "type": kind, "data": {"object": object}})
}

/// A dispute and a refund made in Stripe's dashboard, reported by their events: the
/// dispute is recorded once, the whole refund refunds the purchase once.
#[tokio::test]
async fn a_dispute_and_a_dashboard_refund_are_recorded_once() {
    with_sqlite(|store| async move {
        let api = api(store);
        let show_id = show_on_sale(&api, "org-a", 10).await;
        let reservation = hold(&api, &show_id, "alice", 2).await;
        let paid = pay(&api, &reservation, "alice", "tok_visa").await;
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
        let payment = paid.body["payment_id"].as_str().unwrap().to_owned();
        let amount = paid.body["amount_minor"].as_i64().unwrap();

        let dispute = charge_event(
            "evt_d",
            "charge.dispute.created",
            &payment,
            json!({"id": "dp_1", "object": "dispute", "amount": amount, "reason": "fraudulent"}),
        );
        for expected in ["applied", "already_settled"] {
            let answer = deliver(&api, &dispute, signed(&api, &dispute)).await;
            assert_eq!(answer.body["outcome"], expected, "{:?}", answer.body);
        }
        assert_eq!(status(&api, &reservation, "alice").await, "confirmed");

        let refunded = charge_event(
            "evt_r",
            "charge.refunded",
            &payment,
            json!({"id": "ch_1", "object": "charge", "amount": amount, "amount_refunded": amount}),
        );
        for expected in ["applied", "already_settled"] {
            let answer = deliver(&api, &refunded, signed(&api, &refunded)).await;
            assert_eq!(answer.body["outcome"], expected, "{:?}", answer.body);
        }
        assert_eq!(status(&api, &reservation, "alice").await, "refunded");
        assert_eq!(seats(&api, &show_id).await, (0, 0, 10));
        assert_eq!(
            api.gateway.refund_count(),
            0,
            "refunded at the provider, not by us"
        );
    })
    .await;
}
