use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_app::payments::PaymentGateway;
use ticketing_app::sweeper::ABANDONED;
use ticketing_app::{AppError, CommandContext, SweepLimits, SweepReport};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

async fn status(h: &Harness, reservation_id: ReservationId) -> ReservationStatus {
    h.app.reservation(reservation_id).await.unwrap().status
}

/// Pays with a card whose answer never arrives: the payment is left pending.
async fn pay_without_answer(h: &Harness, n: u32, reservation_id: ReservationId, token: &str) {
    let lost = h
        .app
        .pay(&customer_ctx(n), reservation_id, card(token))
        .await;
    assert!(
        matches!(lost, Err(AppError::PaymentProvider(_))),
        "{lost:?}"
    );
    assert_eq!(
        status(h, reservation_id).await,
        ReservationStatus::PaymentPending
    );
}

pub async fn a_sweep_with_nothing_to_do_reports_zeros(store: Arc<dyn EventStore>) {
    let h = harness(store);
    assert_eq!(sweep(&h).await, SweepReport::default());

    // A confirmed purchase, a fresh hold and a payment still within its grace period.
    let show_id = show_on_sale(&h, 10).await;
    let paid = hold(&h, show_id, 1, 2).await;
    h.app
        .pay(&customer_ctx(1), paid.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    hold(&h, show_id, 2, 1).await;
    let pending = hold(&h, show_id, 3, 1).await;
    pay_without_answer(&h, 3, pending.reservation_id, "tok_timeout").await;
    h.clock.advance(TimeDelta::seconds(90));
    let before = all_heads(&h).await;

    let report = sweep(&h).await;

    assert!(report.is_idle(), "{report:?}");
    assert_eq!(all_heads(&h).await, before, "nothing appended");
}

pub async fn due_holds_are_expired_and_holds_not_yet_due_are_left_alone(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let first = hold(&h, show_id, 1, 2).await;
    h.clock.advance(TimeDelta::minutes(5));
    let second = hold(&h, show_id, 2, 3).await;
    h.clock.advance(TimeDelta::minutes(5));

    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            holds_expired: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(
        status(&h, first.reservation_id).await,
        ReservationStatus::Expired
    );
    assert_eq!(
        status(&h, second.reservation_id).await,
        ReservationStatus::Held
    );
    let (event_type, data) = last_event(&h, &inventory_stream(show_id, &floor())).await;
    assert_eq!(event_type, "SeatsReleased");
    assert_eq!(data["reason"], "expired");
    assert_eq!(seats(&h, show_id).await, (3, 0, 7));

    h.clock.advance(TimeDelta::minutes(5));
    assert_eq!(sweep(&h).await.holds_expired, 1);
    assert_eq!(
        status(&h, second.reservation_id).await,
        ReservationStatus::Expired
    );
}

pub async fn a_payment_whose_answer_was_lost_is_confirmed_after_the_grace_period_and_not_before(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    pay_without_answer(&h, 1, held.reservation_id, "tok_timeoutAfterCapture").await;
    assert_eq!(h.gateway.captured_count(), 1, "the provider did charge");

    h.clock.advance(TimeDelta::seconds(119));
    assert!(
        sweep(&h).await.is_idle(),
        "the request may still be in flight"
    );
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::PaymentPending
    );

    h.clock.advance(TimeDelta::seconds(1));
    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            payments_confirmed: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::Confirmed
    );
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));
    assert_eq!(h.gateway.captured_count(), 1, "charged exactly once");
    // The customer's late retry finds the purchase done and charges nothing.
    let retry = h
        .app
        .pay(
            &customer_ctx(1),
            held.reservation_id,
            card("tok_timeoutAfterCapture"),
        )
        .await;
    assert!(
        matches!(retry, Err(AppError::Domain(DomainError::AlreadyPaid))),
        "{retry:?}"
    );
    assert_eq!(h.gateway.captured_count(), 1);
}

pub async fn a_pending_payment_the_provider_never_saw_is_released_as_abandoned_after_the_grace_period(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    pay_without_answer(&h, 1, held.reservation_id, "tok_timeout").await;
    h.clock.advance(TimeDelta::minutes(1));
    assert!(sweep(&h).await.is_idle());
    assert_eq!(seats(&h, show_id).await, (2, 0, 8));

    h.clock.advance(TimeDelta::minutes(1));
    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            payments_abandoned: 1,
            ..SweepReport::default()
        }
    );
    let reservation = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(reservation.status, ReservationStatus::PaymentDeclined);
    let (event_type, data) = last_event(&h, &reservation_stream(held.reservation_id)).await;
    assert_eq!(event_type, "ReservationPaymentDeclined");
    assert_eq!(data["reason"], ABANDONED);
    let payment = h
        .app
        .payment(reservation.payment_id.unwrap())
        .await
        .unwrap();
    assert_eq!(payment.status, PaymentStatus::Declined);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    assert_eq!(h.gateway.captured_count(), 0);
}

pub async fn a_captured_payment_whose_seats_are_gone_is_refunded(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 2).await;
    let first = hold(&h, show_id, 1, 2).await;
    pay_without_answer(&h, 1, first.reservation_id, "tok_timeoutAfterCapture").await;
    // The hold runs out while the payment is unresolved, and another buyer takes the seats.
    h.clock.advance(TimeDelta::minutes(11));
    let second = hold(&h, show_id, 2, 2).await;

    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            purchases_refunded: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(
        status(&h, first.reservation_id).await,
        ReservationStatus::Refunded
    );
    let (_, refunded) = last_event(&h, &reservation_stream(first.reservation_id)).await;
    assert_eq!(refunded["reason"], "seats_unavailable");
    assert_eq!(
        (h.gateway.captured_count(), h.gateway.refund_count()),
        (1, 1)
    );
    assert_eq!(
        status(&h, second.reservation_id).await,
        ReservationStatus::Held
    );
    assert_eq!(
        seats(&h, show_id).await,
        (2, 0, 0),
        "the second buyer keeps them"
    );
}

/// A customer's retry records the capture, but the refund it needs goes unanswered:
/// the purchase is left `Paid`, neither confirmed nor refunded.
async fn captured_but_unsettled(h: &Harness, show_id: ShowId) -> (ReservationId, ReservationId) {
    let first = hold(h, show_id, 1, 2).await;
    pay_without_answer(h, 1, first.reservation_id, "tok_timeoutAfterCapture").await;
    h.clock.advance(TimeDelta::minutes(11));
    let second = hold(h, show_id, 2, 2).await;
    h.provider.set_outage(Outage::Refunds);
    let retry = h
        .app
        .pay(
            &customer_ctx(1),
            first.reservation_id,
            card("tok_timeoutAfterCapture"),
        )
        .await;
    assert!(
        matches!(retry, Err(AppError::PaymentProvider(_))),
        "{retry:?}"
    );
    assert_eq!(
        status(h, first.reservation_id).await,
        ReservationStatus::Paid
    );
    (first.reservation_id, second.reservation_id)
}

pub async fn a_captured_purchase_left_unsettled_is_refunded_once_the_provider_answers(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 2).await;
    let (first, second) = captured_but_unsettled(&h, show_id).await;

    let during_outage = sweep(&h).await;
    assert_eq!(
        during_outage,
        SweepReport {
            failures: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(status(&h, first).await, ReservationStatus::Paid);

    h.provider.set_outage(Outage::None);
    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            purchases_refunded: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(status(&h, first).await, ReservationStatus::Refunded);
    assert_eq!(status(&h, second).await, ReservationStatus::Held);
    assert_eq!(
        (h.gateway.captured_count(), h.gateway.refund_count()),
        (1, 1)
    );
    assert_eq!(seats(&h, show_id).await, (2, 0, 0));
}

pub async fn a_captured_purchase_left_unsettled_is_confirmed_when_its_seats_are_free_again(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 2).await;
    let (first, second) = captured_but_unsettled(&h, show_id).await;
    h.provider.set_outage(Outage::None);
    // The other buyer's hold runs out unpaid: the seats can be had again.
    h.clock.advance(TimeDelta::minutes(10));

    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            payments_confirmed: 1,
            holds_expired: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(status(&h, first).await, ReservationStatus::Confirmed);
    assert_eq!(status(&h, second).await, ReservationStatus::Expired);
    assert_eq!(
        (h.gateway.captured_count(), h.gateway.refund_count()),
        (1, 0)
    );
    assert_eq!(seats(&h, show_id).await, (0, 2, 0));
}

pub async fn running_the_sweep_twice_changes_nothing_the_second_time(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    hold(&h, show_id, 1, 1).await;
    let lost = hold(&h, show_id, 2, 2).await;
    pay_without_answer(&h, 2, lost.reservation_id, "tok_timeoutAfterCapture").await;
    let abandoned = hold(&h, show_id, 3, 3).await;
    pay_without_answer(&h, 3, abandoned.reservation_id, "tok_timeout").await;
    h.clock.advance(TimeDelta::minutes(10));

    let first = sweep(&h).await;
    assert_eq!(
        first,
        SweepReport {
            holds_expired: 1,
            payments_confirmed: 1,
            payments_abandoned: 1,
            ..SweepReport::default()
        }
    );
    let after_first = all_heads(&h).await;

    let second = sweep(&h).await;

    assert!(second.is_idle(), "{second:?}");
    assert_eq!(all_heads(&h).await, after_first, "nothing appended");
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));
}

pub async fn a_provider_outage_is_counted_as_failures_and_the_rest_of_the_sweep_goes_on(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let pending = [hold(&h, show_id, 1, 1).await, hold(&h, show_id, 2, 1).await];
    for (n, held) in (1..).zip(&pending) {
        pay_without_answer(&h, n, held.reservation_id, "tok_timeout").await;
    }
    let unpaid = hold(&h, show_id, 3, 1).await;
    h.clock.advance(TimeDelta::minutes(10));
    h.provider.set_outage(Outage::Everything);

    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            holds_expired: 1,
            failures: 2,
            ..SweepReport::default()
        }
    );
    assert_eq!(
        status(&h, unpaid.reservation_id).await,
        ReservationStatus::Expired
    );
    for held in &pending {
        assert_eq!(
            status(&h, held.reservation_id).await,
            ReservationStatus::PaymentPending
        );
    }

    h.provider.set_outage(Outage::None);
    assert_eq!(
        sweep(&h).await,
        SweepReport {
            payments_abandoned: 2,
            ..SweepReport::default()
        }
    );
}

pub async fn a_sweep_acts_on_at_most_max_items_and_leaves_the_rest_for_the_next_run(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    for n in 0..3 {
        hold(&h, show_id, n, 1).await;
    }
    h.clock.advance(TimeDelta::minutes(10));
    let limits = SweepLimits {
        max_items: 2,
        ..SweepLimits::default()
    };
    let ctx = CommandContext::system();

    assert_eq!(h.app.sweep(&ctx, limits).await.unwrap().holds_expired, 2);
    assert_eq!(h.app.sweep(&ctx, limits).await.unwrap().holds_expired, 1);
    assert!(h.app.sweep(&ctx, limits).await.unwrap().is_idle());
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
}

pub async fn the_sweeper_refunds_rather_than_confirms_a_pending_payment_of_a_cancelled_show(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    pay_without_answer(&h, 1, held.reservation_id, "tok_timeoutAfterCapture").await;
    let cancellation = h
        .app
        .cancel_show(&organizer(), show_id, "storm".into())
        .await
        .unwrap();
    assert_eq!(cancellation.payments_pending, 1);
    h.clock.advance(TimeDelta::minutes(2));

    let report = sweep(&h).await;

    assert_eq!(
        report,
        SweepReport {
            purchases_refunded: 1,
            ..SweepReport::default()
        }
    );
    assert_eq!(
        status(&h, held.reservation_id).await,
        ReservationStatus::Refunded
    );
    let (event_type, data) = last_event(&h, &reservation_stream(held.reservation_id)).await;
    assert_eq!(event_type, "ReservationRefunded");
    assert_eq!(data["reason"], "show_cancelled");
    let (event_type, data) = last_event(&h, &inventory_stream(show_id, &floor())).await;
    assert_eq!(event_type, "SeatsReleased");
    assert_eq!(data["reason"], "show_cancelled");
    assert_eq!(
        (h.gateway.captured_count(), h.gateway.refund_count()),
        (1, 1)
    );
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    let again = h
        .app
        .cancel_show(&organizer(), show_id, "storm".into())
        .await
        .unwrap();
    assert!(again.is_complete(), "{again:?}");
}

/// The functions of a deployment are separate processes on one database. A charge
/// whose answer the `reservations` function lost is found by the `sweeper` function in
/// the simulated provider's records kept there, and the purchase is confirmed with its
/// tickets; providers kept in each process's memory could not see it, and the sweeper
/// would release the seats of a purchase the customer paid for.
pub async fn a_charge_whose_answer_one_process_lost_is_found_by_another_s_sweep(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store.clone());
    let process = |gateway: ticketing_app::payments::SimulatedGateway| {
        ticketing_app::Ticketing::new(
            store.clone(),
            Arc::new(gateway),
            Arc::new(h.clock.clone()),
            ticketing_app::Settings::default(),
        )
        .with_ticket_keys(ticket_keys())
    };
    let show_id = show_on_sale(&h, 10).await;
    let sweep_in = |app: ticketing_app::Ticketing| async move {
        app.sweep(&CommandContext::system(), SweepLimits::default())
            .await
            .unwrap()
    };

    // Pays through `app`, whose answer is lost, and lets the grace period pass.
    let paid_unanswered = |app: ticketing_app::Ticketing, n: u32, reservation_id| {
        let clock = h.clock.clone();
        async move {
            let lost = app
                .pay(
                    &customer_ctx(n),
                    reservation_id,
                    card("tok_timeoutAfterCapture"),
                )
                .await;
            assert!(
                matches!(lost, Err(AppError::PaymentProvider(_))),
                "{lost:?}"
            );
            clock.advance(TimeDelta::minutes(3));
        }
    };

    // In-memory providers, one per process: the sweeper's has never heard of it.
    let isolated = hold(&h, show_id, 1, 2).await;
    paid_unanswered(
        process(ticketing_app::payments::SimulatedGateway::new()),
        1,
        isolated.reservation_id,
    )
    .await;
    let blind = sweep_in(process(ticketing_app::payments::SimulatedGateway::new())).await;
    assert_eq!(blind.payments_abandoned, 1, "{blind:?}");

    // The provider's records in the database: the sweeper finds the charge.
    let shared = || ticketing_app::payments::SimulatedGateway::sharing(store.as_ref());
    let held = hold(&h, show_id, 2, 2).await;
    paid_unanswered(process(shared()), 2, held.reservation_id).await;
    let report = sweep_in(process(shared())).await;
    assert_eq!(
        report,
        SweepReport {
            payments_confirmed: 1,
            ..SweepReport::default()
        }
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::Confirmed);
    assert_eq!(details.tickets.len(), 2, "confirmed with its tickets");

    // A third process refunds it, once, whichever key asks second.
    let payment_id = details.payment_id.expect("paid");
    let refunder = process(shared());
    refunder
        .refund_payment(&organizer(), payment_id, RefundReason::RefundedByOrganizer)
        .await
        .unwrap();
    let charge_reference = format!("ch_sim_{}", payment_id.0);
    let again = shared()
        .refund(ticketing_app::payments::RefundRequest {
            idempotency_key: "another-key".into(),
            charge_reference,
            amount: details.amount,
        })
        .await;
    assert!(
        matches!(
            again,
            Err(ticketing_app::payments::GatewayError::Rejected(_))
        ),
        "{again:?}"
    );
}
