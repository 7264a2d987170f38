use std::sync::Arc;

use ticketing_app::{AppError, ShowCancellation};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

async fn cancel(h: &Harness, show_id: ShowId) -> ShowCancellation {
    h.app
        .cancel_show(&organizer(), show_id, "storm".into())
        .await
        .unwrap()
}

async fn status(h: &Harness, reservation_id: ReservationId) -> ReservationStatus {
    h.app.reservation(reservation_id).await.unwrap().status
}

pub async fn cancelling_a_show_releases_its_holds_refunds_its_purchases_and_a_second_call_changes_nothing(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let confirmed = hold(&h, show_id, 1, 2).await;
    h.app
        .pay(&customer_ctx(1), confirmed.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let held = hold(&h, show_id, 2, 3).await;
    let pending = hold(&h, show_id, 3, 1).await;
    let timeout = h
        .app
        .pay(
            &customer_ctx(3),
            pending.reservation_id,
            card("tok_timeout"),
        )
        .await;
    assert!(matches!(timeout, Err(AppError::PaymentProvider(_))));

    let first = cancel(&h, show_id).await;

    assert_eq!(
        first,
        ShowCancellation {
            show_id,
            newly_cancelled: true,
            holds_released: 1,
            purchases_refunded: 1,
            payments_pending: 1,
            failures: 0,
        }
    );
    assert!(!first.is_complete(), "a payment is left to the sweeper");
    assert_eq!(
        h.app.show(show_id).await.unwrap().status,
        SalesStatus::Cancelled
    );
    assert_eq!(
        status(&h, confirmed.reservation_id).await,
        ReservationStatus::Refunded
    );
    let (_, refunded) = last_event(&h, &reservation_stream(confirmed.reservation_id)).await;
    assert_eq!(refunded["reason"], "show_cancelled");
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::Cancelled
    );
    assert_eq!(
        status(&h, pending.reservation_id).await,
        ReservationStatus::PaymentPending
    );
    assert_eq!(h.gateway.refund_count(), 1);
    assert_eq!(seats(&h, show_id).await, (1, 0, 9));
    let section = h
        .store
        .read_stream(&inventory_stream(show_id, &floor()), 0)
        .await
        .unwrap();
    let released = section
        .iter()
        .find(|e| e.event_type == "SeatsReleased")
        .expect("the hold was released");
    assert_eq!(released.data["reason"], "show_cancelled");
    assert!(section.iter().any(|e| e.event_type == "SeatsReturned"));

    let before = all_heads(&h).await;
    let second = cancel(&h, show_id).await;

    assert_eq!(
        second,
        ShowCancellation {
            show_id,
            newly_cancelled: false,
            holds_released: 0,
            purchases_refunded: 0,
            payments_pending: 1,
            failures: 0,
        }
    );
    assert_eq!(all_heads(&h).await, before, "nothing appended");
    assert_eq!(h.gateway.refund_count(), 1);
    let late_hold = h
        .app
        .hold_seats(&customer_ctx(4), hold_request(show_id, 4, 1))
        .await;
    assert!(
        matches!(late_hold, Err(AppError::Domain(DomainError::ShowCancelled))),
        "{late_hold:?}"
    );
    let unknown = h
        .app
        .cancel_show(&organizer(), ShowId::new(), "storm".into())
        .await;
    assert!(
        matches!(unknown, Err(AppError::Domain(DomainError::ShowNotFound))),
        "{unknown:?}"
    );
}

pub async fn a_cancellation_cut_short_by_a_provider_outage_is_finished_by_calling_it_again(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let mut confirmed = Vec::new();
    for n in 1..=2 {
        let held = hold(&h, show_id, n, 2).await;
        h.app
            .pay(&customer_ctx(n), held.reservation_id, card("tok_visa"))
            .await
            .unwrap();
        confirmed.push(held.reservation_id);
    }
    let held = hold(&h, show_id, 3, 1).await;
    h.provider.set_outage(Outage::Refunds);

    let interrupted = cancel(&h, show_id).await;

    assert_eq!(
        interrupted,
        ShowCancellation {
            show_id,
            newly_cancelled: true,
            holds_released: 1,
            purchases_refunded: 0,
            payments_pending: 0,
            failures: 2,
        }
    );
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::Cancelled
    );
    assert_eq!(h.gateway.refund_count(), 0);

    h.provider.set_outage(Outage::None);
    let finished = cancel(&h, show_id).await;

    assert_eq!(
        finished,
        ShowCancellation {
            show_id,
            newly_cancelled: false,
            holds_released: 0,
            purchases_refunded: 2,
            payments_pending: 0,
            failures: 0,
        }
    );
    assert!(finished.is_complete());
    for reservation_id in confirmed {
        assert_eq!(
            status(&h, reservation_id).await,
            ReservationStatus::Refunded
        );
    }
    assert_eq!(h.gateway.refund_count(), 2);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    assert_eq!(h.app.sales(show_id).await.unwrap().tickets_sold, 0);
}

pub async fn paying_for_a_hold_of_a_cancelled_show_is_refused_without_charging(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    // Only the show's event, as a hold that raced the cancellation's fan-out would see it.
    h.app
        .change_sales(
            &organizer(),
            show_id,
            ShowCommand::Cancel {
                reason: "storm".into(),
            },
        )
        .await
        .unwrap();

    let paid = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await;

    assert!(
        matches!(paid, Err(AppError::Domain(DomainError::ShowCancelled))),
        "{paid:?}"
    );
    assert_eq!(h.gateway.captured_count(), 0);
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::Held
    );
}

pub async fn a_pending_payment_finished_after_its_show_was_cancelled_is_refunded_not_confirmed(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let lost = h
        .app
        .pay(
            &customer_ctx(1),
            held.reservation_id,
            card("tok_timeoutAfterCapture"),
        )
        .await;
    assert!(matches!(lost, Err(AppError::PaymentProvider(_))));
    cancel(&h, show_id).await;

    // The customer's retry learns the charge went through: it is refunded, not confirmed.
    let retried = h
        .app
        .pay(
            &customer_ctx(1),
            held.reservation_id,
            card("tok_timeoutAfterCapture"),
        )
        .await
        .unwrap();

    assert!(
        matches!(retried, ticketing_app::PaymentResult::Refunded { amount, .. } if amount == eur(9_000)),
        "{retried:?}"
    );
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::Refunded
    );
    assert_eq!(
        (h.gateway.captured_count(), h.gateway.refund_count()),
        (1, 1)
    );
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
}
