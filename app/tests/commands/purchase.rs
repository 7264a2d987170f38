use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_app::{AppError, Clock, PaymentResult};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

fn refused(result: Result<impl std::fmt::Debug, AppError>) -> DomainError {
    match result {
        Err(AppError::Domain(e)) => e,
        other => panic!("expected a domain refusal, got {other:?}"),
    }
}

pub async fn a_purchase_goes_from_hold_to_paid_to_confirmed(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 100).await;
    let held = hold(&h, show_id, 1, 2).await;
    assert_eq!(held.amount, eur(9_000));
    assert_eq!(held.expires_at, h.clock.now() + TimeDelta::minutes(10));
    assert_eq!(seats(&h, show_id).await, (2, 0, 98));

    let result = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let PaymentResult::Confirmed {
        payment_id, amount, ..
    } = result
    else {
        panic!("{result:?}")
    };
    assert_eq!(amount, eur(9_000));
    assert_eq!(seats(&h, show_id).await, (0, 2, 98));
    let sales = h.app.sales(show_id).await.unwrap();
    assert_eq!((sales.tickets_sold, sales.revenue), (2, eur(9_000)));
    assert_eq!(
        h.app.reservation(held.reservation_id).await.unwrap().status,
        ReservationStatus::Confirmed
    );
    assert_eq!(
        h.app.payment(payment_id).await.unwrap().status,
        PaymentStatus::Captured
    );
    assert_eq!(h.gateway.captured_count(), 1);

    // The reservation's stream tells the saga: placed, payment requested, paid,
    // confirmed, and its tickets issued.
    let events = h
        .store
        .read_stream(&reservation_stream(held.reservation_id), 0)
        .await
        .unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ReservationPlaced",
            "PaymentRequested",
            "ReservationPaid",
            "ReservationConfirmed",
            "TicketsIssued"
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(events
        .iter()
        .all(|e| e.metadata.actor.as_deref() == Some("customer-1")));
}

pub async fn a_declined_card_releases_the_seats(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 3).await;
    let result = h
        .app
        .pay(
            &customer_ctx(1),
            held.reservation_id,
            card("tok_chargeDeclined"),
        )
        .await
        .unwrap();
    assert!(
        matches!(result, PaymentResult::Declined { ref reason, .. } if reason == "card_declined"),
        "{result:?}"
    );
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    assert_eq!(
        h.app.reservation(held.reservation_id).await.unwrap().status,
        ReservationStatus::PaymentDeclined
    );
    assert_eq!(h.gateway.captured_count(), 0);
}

pub async fn an_expired_hold_is_released_and_its_seats_are_free_again(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 4).await;
    let early = h
        .app
        .expire(
            &ticketing_app::CommandContext::system(),
            held.reservation_id,
        )
        .await;
    assert_eq!(refused(early), DomainError::HoldNotExpired);

    h.clock.advance(TimeDelta::minutes(10));
    // Free at decision time even before the expiry is recorded.
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    h.app
        .expire(
            &ticketing_app::CommandContext::system(),
            held.reservation_id,
        )
        .await
        .unwrap();
    assert_eq!(
        h.app.reservation(held.reservation_id).await.unwrap().status,
        ReservationStatus::Expired
    );
    let section = h
        .store
        .read_stream(&inventory_stream(show_id, &floor()), 0)
        .await
        .unwrap();
    assert_eq!(section.last().unwrap().event_type, "SeatsReleased");
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
}

pub async fn paying_after_expiry_confirms_while_the_seats_are_still_free(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 2).await;
    let held = hold(&h, show_id, 1, 2).await;
    h.clock.advance(TimeDelta::minutes(15));
    let result = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(
        matches!(result, PaymentResult::Confirmed { .. }),
        "{result:?}"
    );
    assert_eq!(seats(&h, show_id).await, (0, 2, 0));
}

pub async fn paying_after_expiry_when_the_seats_are_gone_is_refused_without_charging(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 2).await;
    let first = hold(&h, show_id, 1, 2).await;
    h.clock.advance(TimeDelta::minutes(11));
    let second = hold(&h, show_id, 2, 2).await;
    let late = h
        .app
        .pay(&customer_ctx(1), first.reservation_id, card("tok_visa"))
        .await;
    assert_eq!(refused(late), DomainError::HoldExpired);
    assert_eq!(h.gateway.captured_count(), 0);
    assert_eq!(
        h.app
            .reservation(first.reservation_id)
            .await
            .unwrap()
            .status,
        ReservationStatus::Expired
    );
    // The second customer keeps the seats.
    let result = h
        .app
        .pay(&customer_ctx(2), second.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(matches!(result, PaymentResult::Confirmed { .. }));
    assert_eq!(seats(&h, show_id).await, (0, 2, 0));
}

pub async fn a_sold_out_section_refuses_a_hold(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 3).await;
    hold(&h, show_id, 1, 2).await;
    let refusal = h
        .app
        .hold_seats(&customer_ctx(2), hold_request(show_id, 2, 2))
        .await;
    assert_eq!(
        refused(refusal),
        DomainError::SoldOut {
            requested: 2,
            available: 1
        }
    );
    assert_eq!(seats(&h, show_id).await, (2, 0, 1));
}

pub async fn holds_are_refused_with_typed_errors(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 100).await;
    let ctx = customer_ctx(1);
    let above_limit = h.app.hold_seats(&ctx, hold_request(show_id, 1, 11)).await;
    assert_eq!(
        refused(above_limit),
        DomainError::QuantityAboveLimit {
            requested: 11,
            limit: 10
        }
    );
    let mut unknown_section = hold_request(show_id, 1, 1);
    unknown_section.section = SectionName::parse("Balcony").unwrap();
    assert_eq!(
        refused(h.app.hold_seats(&ctx, unknown_section).await),
        DomainError::UnknownSection
    );
    let unknown_show = hold_request(ShowId::new(), 1, 1);
    assert_eq!(
        refused(h.app.hold_seats(&ctx, unknown_show).await),
        DomainError::ShowNotFound
    );
    h.app
        .change_sales(&organizer(), show_id, ShowCommand::CloseSales)
        .await
        .unwrap();
    assert_eq!(
        refused(h.app.hold_seats(&ctx, hold_request(show_id, 1, 1)).await),
        DomainError::SalesNotOpen
    );
    assert_eq!(seats(&h, show_id).await, (0, 0, 100));
}

pub async fn paying_twice_is_refused(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 1).await;
    h.app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let again = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await;
    assert_eq!(refused(again), DomainError::AlreadyPaid);
    assert_eq!(h.gateway.captured_count(), 1);
}

pub async fn cancelling_a_held_reservation_releases_its_seats(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let cancelled = h
        .app
        .cancel(&customer_ctx(1), held.reservation_id)
        .await
        .unwrap();
    assert_eq!(cancelled.refunded, None);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    assert_eq!(
        refused(h.app.cancel(&customer_ctx(1), held.reservation_id).await),
        DomainError::AlreadyCancelled
    );
}

pub async fn cancelling_a_confirmed_purchase_refunds_it_and_returns_the_seats(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    h.app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let cancelled = h
        .app
        .cancel(&customer_ctx(1), held.reservation_id)
        .await
        .unwrap();
    assert_eq!(cancelled.refunded, Some(eur(9_000)));
    assert_eq!(h.gateway.refund_count(), 1);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    assert_eq!(h.app.sales(show_id).await.unwrap().tickets_sold, 0);
    let reservation = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(reservation.status, ReservationStatus::Refunded);
    let payment = h
        .app
        .payment(reservation.payment_id.unwrap())
        .await
        .unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!(
        refused(h.app.cancel(&customer_ctx(1), held.reservation_id).await),
        DomainError::AlreadyRefunded
    );
    assert_eq!(h.gateway.refund_count(), 1);
}

pub async fn refunding_twice_is_refused(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 1).await;
    let PaymentResult::Confirmed { payment_id, .. } = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap()
    else {
        panic!("not confirmed")
    };
    let refunded = h
        .app
        .refund_payment(&organizer(), payment_id, RefundReason::RefundedByOrganizer)
        .await
        .unwrap();
    assert_eq!(refunded, eur(4_500));
    let again = h
        .app
        .refund_payment(&organizer(), payment_id, RefundReason::RefundedByOrganizer)
        .await;
    assert_eq!(refused(again), DomainError::AlreadyRefunded);
    assert_eq!(h.gateway.refund_count(), 1);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    let unknown = h
        .app
        .refund_payment(
            &organizer(),
            PaymentId::new(),
            RefundReason::RefundedByOrganizer,
        )
        .await;
    assert_eq!(refused(unknown), DomainError::PaymentNotFound);
}

pub async fn show_sales_can_be_opened_closed_and_cancelled(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let again = h
        .app
        .change_sales(&organizer(), show_id, ShowCommand::OpenSales)
        .await;
    assert_eq!(refused(again), DomainError::SalesAlreadyOpen);
    h.app
        .change_sales(&organizer(), show_id, ShowCommand::CloseSales)
        .await
        .unwrap();
    assert_eq!(
        h.app.show(show_id).await.unwrap().status,
        SalesStatus::Closed
    );
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
    assert_eq!(
        h.app.show(show_id).await.unwrap().status,
        SalesStatus::Cancelled
    );
    let reopen = h
        .app
        .change_sales(&organizer(), show_id, ShowCommand::OpenSales)
        .await;
    assert_eq!(refused(reopen), DomainError::ShowCancelled);
    let missing = h
        .app
        .change_sales(&organizer(), ShowId::new(), ShowCommand::OpenSales)
        .await;
    assert_eq!(refused(missing), DomainError::ShowNotFound);
}
