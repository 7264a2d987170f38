use std::sync::Arc;

use ticketing_app::payments::GatewayError;
use ticketing_app::{AppError, PaymentResult};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

pub async fn a_retried_hold_with_the_same_key_appends_nothing_and_answers_the_same(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let ctx = customer_ctx(1).with_idempotency_key("hold-abc");
    let first = h
        .app
        .hold_seats(&ctx, hold_request(show_id, 1, 2))
        .await
        .unwrap();
    let before = versions(&h, show_id, first.reservation_id).await;
    let retried = h
        .app
        .hold_seats(&ctx, hold_request(show_id, 1, 2))
        .await
        .unwrap();
    assert_eq!(retried, first);
    assert_eq!(versions(&h, show_id, first.reservation_id).await, before);
    assert_eq!(seats(&h, show_id).await, (2, 0, 8));
    // Another customer may use the same key for its own request.
    let other = h
        .app
        .hold_seats(
            &customer_ctx(2).with_idempotency_key("hold-abc"),
            hold_request(show_id, 2, 2),
        )
        .await
        .unwrap();
    assert_ne!(other.reservation_id, first.reservation_id);
    assert_eq!(seats(&h, show_id).await, (4, 0, 6));
}

pub async fn the_same_key_with_another_request_is_refused(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let ctx = customer_ctx(1).with_idempotency_key("k-1");
    h.app
        .hold_seats(&ctx, hold_request(show_id, 1, 2))
        .await
        .unwrap();
    let different = h.app.hold_seats(&ctx, hold_request(show_id, 1, 3)).await;
    assert!(
        matches!(different, Err(AppError::IdempotencyKeyReused)),
        "{different:?}"
    );
    assert_eq!(seats(&h, show_id).await, (2, 0, 8));
}

pub async fn a_retried_payment_with_the_same_key_charges_once_and_appends_nothing(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let ctx = customer_ctx(1).with_idempotency_key("pay-1");
    let first = h
        .app
        .pay(&ctx, held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let before = versions(&h, show_id, held.reservation_id).await;
    let retried = h
        .app
        .pay(&ctx, held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert_eq!(retried, first);
    assert_eq!(versions(&h, show_id, held.reservation_id).await, before);
    assert_eq!(h.gateway.captured_count(), 1);
}

pub async fn a_provider_timeout_leaves_the_payment_pending_and_a_retry_charges_once(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let ctx = customer_ctx(1);
    // The provider charges the card but its answer is lost.
    let lost = h
        .app
        .pay(&ctx, held.reservation_id, card("tok_timeoutAfterCapture"))
        .await;
    assert!(
        matches!(lost, Err(AppError::PaymentProvider(GatewayError::Timeout))),
        "{lost:?}"
    );
    let pending = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(pending.status, ReservationStatus::PaymentPending);
    assert_eq!(seats(&h, show_id).await, (2, 0, 8));

    let retried = h
        .app
        .pay(&ctx, held.reservation_id, card("tok_timeoutAfterCapture"))
        .await
        .unwrap();
    let PaymentResult::Confirmed { payment_id, .. } = retried else {
        panic!("{retried:?}")
    };
    assert_eq!(
        Some(payment_id),
        pending.payment_id,
        "the retry reuses the pending payment"
    );
    assert_eq!(h.gateway.captured_count(), 1);
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));

    // A plain timeout charges nothing and leaves the purchase pending too.
    let other = hold(&h, show_id, 2, 1).await;
    let timeout = h
        .app
        .pay(&customer_ctx(2), other.reservation_id, card("tok_timeout"))
        .await;
    assert!(matches!(
        timeout,
        Err(AppError::PaymentProvider(GatewayError::Timeout))
    ));
    assert_eq!(h.gateway.captured_count(), 1);
    assert_eq!(
        h.app
            .reservation(other.reservation_id)
            .await
            .unwrap()
            .status,
        ReservationStatus::PaymentPending
    );
}

/// 50 customers try to hold one seat each in a 10-seat section at the same instant.
pub async fn concurrent_holds_never_oversell_and_losers_get_a_clear_answer(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let capacity = 10;
    let show_id = show_on_sale(&h, capacity).await;
    let start = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (app, start) = (h.app.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                app.hold_seats(&customer_ctx(n), hold_request(show_id, n, 1))
                    .await
            })
        })
        .collect();
    let (mut won, mut sold_out, mut contention) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(AppError::Domain(DomainError::SoldOut { .. })) => sold_out += 1,
            Err(AppError::Contention { .. }) => contention += 1,
            Err(other) => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!(won, capacity, "{sold_out} sold out, {contention} contended");
    assert_eq!(won + sold_out + contention, 50);
    assert_eq!(seats(&h, show_id).await, (capacity, 0, 0));
    let section = h
        .store
        .read_stream(&inventory_stream(show_id, &floor()), 0)
        .await
        .unwrap();
    let versions: Vec<u64> = section.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=u64::from(capacity) + 1).collect::<Vec<_>>());
}

/// The flash-sale case: 200 buyers at once for a 50-seat section. Each waits its turn
/// on the section instead of racing for its version, so exactly 50 get seats, the other
/// 150 are told it is sold out, and nobody is told to come back later.
pub async fn two_hundred_buyers_for_fifty_seats_get_exactly_fifty_and_no_contention(
    store: Arc<dyn EventStore>,
) {
    const BUYERS: u32 = 200;
    let h = harness_with(store, patient());
    let capacity = 50;
    let show_id = show_on_sale(&h, capacity).await;
    let (won, sold_out) = flash_sale(&h, show_id, BUYERS).await;
    assert_eq!((won, sold_out), (capacity, BUYERS - capacity));
    assert_eq!(seats(&h, show_id).await, (capacity, 0, 0));
    let section = h
        .store
        .read_stream(&inventory_stream(show_id, &floor()), 0)
        .await
        .unwrap();
    assert_eq!(section.len(), capacity as usize + 1);
}

/// A retried command whose recorded outcome this build cannot read (a deployment
/// changed the outcome's type) is answered with an error: running it again would hold
/// the seats a second time.
pub async fn an_unreadable_recorded_outcome_is_an_error_and_never_a_second_run(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let request = hold_request(show_id, 1, 2);
    h.app
        .hold_seats(
            &customer_ctx(1).with_idempotency_key("first"),
            request.clone(),
        )
        .await
        .unwrap();
    // The same request under another key, recorded with an outcome of another shape.
    let fingerprint = h
        .store
        .idempotency_record("customer-1/first")
        .await
        .unwrap()
        .expect("the first hold's record")
        .request_fingerprint;
    let record = ticketing_store::IdempotencyRecord {
        key: "customer-1/older".into(),
        request_fingerprint: fingerprint,
        outcome: serde_json::json!({"held": "2 seats", "format": "of an older build"}),
    };
    let marker = ticketing_store::StreamAppend {
        stream_id: "test-marker".into(),
        expected_version: ticketing_store::ExpectedVersion::Any,
        events: vec![ticketing_store::NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: "Marker".into(),
            schema_version: 1,
            data: serde_json::json!({}),
            metadata: Default::default(),
        }],
    };
    h.store.append(vec![marker], Some(record)).await.unwrap();
    let retried = h
        .app
        .hold_seats(&customer_ctx(1).with_idempotency_key("older"), request)
        .await;
    assert!(
        matches!(retried, Err(AppError::UnreadableOutcome { ref key, .. }) if key == "customer-1/older"),
        "{retried:?}"
    );
    assert_eq!(seats(&h, show_id).await, (2, 0, 8), "nothing held again");
}

pub async fn a_duplicate_arriving_while_the_first_is_running_is_told_it_is_in_progress(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let charges = h.provider.hold_charges();
    let ctx = customer_ctx(1).with_idempotency_key("pay-slow");
    let first = pay_in_background(&h, ctx.clone(), held.reservation_id, "tok_visa");
    // The first is at the provider, its key claimed, until the gate opens.
    charges.charge_arrived().await;
    let duplicate = h.app.pay(&ctx, held.reservation_id, card("tok_visa")).await;
    assert!(
        matches!(duplicate, Err(AppError::RequestInProgress)),
        "{duplicate:?}"
    );
    let other_request = h
        .app
        .pay(&ctx, held.reservation_id, card("tok_mastercard"))
        .await;
    assert!(
        matches!(other_request, Err(AppError::IdempotencyKeyReused)),
        "{other_request:?}"
    );
    charges.open();
    let first = first.await.unwrap().unwrap();
    assert!(matches!(first, PaymentResult::Confirmed { .. }));
    // Once it has finished, the same request gets its answer.
    assert_eq!(
        h.app
            .pay(&ctx, held.reservation_id, card("tok_visa"))
            .await
            .unwrap(),
        first
    );
    assert_eq!(h.gateway.captured_count(), 1);
}

pub async fn a_failed_command_releases_its_key_for_a_retry(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let ctx = customer_ctx(1).with_idempotency_key("pay-after-outage");
    h.provider.set_outage(Outage::Everything);
    let failed = h.app.pay(&ctx, held.reservation_id, card("tok_visa")).await;
    assert!(
        matches!(failed, Err(AppError::PaymentProvider(_))),
        "{failed:?}"
    );
    h.provider.set_outage(Outage::None);
    let retried = h
        .app
        .pay(&ctx, held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(matches!(retried, PaymentResult::Confirmed { .. }));
}

pub async fn a_retried_cancellation_that_refunded_answers_the_same(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    h.app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let ctx = customer_ctx(1).with_idempotency_key("cancel-1");
    let first = h.app.cancel(&ctx, held.reservation_id).await.unwrap();
    assert_eq!(first.refunded, Some(eur(9_000)));
    assert_eq!(
        h.app.cancel(&ctx, held.reservation_id).await.unwrap(),
        first
    );
    assert_eq!(h.gateway.refund_count(), 1);
}

/// The hold runs out while the provider's answer is lost, and another customer takes
/// the seats: the retried payment captures, finds the seats gone and refunds, and a
/// second retry replays that answer.
pub async fn a_retried_payment_that_ended_in_a_refund_answers_the_same(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 2).await;
    let late = hold(&h, show_id, 1, 2).await;
    h.clock.advance(chrono::TimeDelta::minutes(11));
    let ctx = customer_ctx(1).with_idempotency_key("late-pay");
    let lost = h
        .app
        .pay(&ctx, late.reservation_id, card("tok_timeoutAfterCapture"))
        .await;
    assert!(
        matches!(lost, Err(AppError::PaymentProvider(GatewayError::Timeout))),
        "{lost:?}"
    );
    hold(&h, show_id, 2, 2).await;
    let refunded = h
        .app
        .pay(&ctx, late.reservation_id, card("tok_timeoutAfterCapture"))
        .await
        .unwrap();
    assert!(
        matches!(refunded, PaymentResult::Refunded { .. }),
        "{refunded:?}"
    );
    assert_eq!(
        h.app
            .pay(&ctx, late.reservation_id, card("tok_timeoutAfterCapture"))
            .await
            .unwrap(),
        refunded
    );
    assert_eq!(
        (h.gateway.captured_count(), h.gateway.refund_count()),
        (1, 1)
    );
    assert_eq!(seats(&h, show_id).await, (2, 0, 0));
}
