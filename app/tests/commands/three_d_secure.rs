//! Payments that wait for the customer to authenticate (3-D Secure), with the
//! simulated provider's `tok_threeDSecure2Required`: the seats stay held until the
//! hold's expiry, the outcome arrives reported by the provider (a webhook), on the
//! customer's next attempt, or from the sweeper, which cancels what was never finished.

use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_app::payments::simulated::AUTHENTICATION_CANCELLED;
use ticketing_app::payments::ChargeOutcome;
use ticketing_app::provider_reports::ReportOutcome;
use ticketing_app::{AppError, PaymentResult, SweepReport};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

const THREE_D_SECURE: &str = "tok_threeDSecure2Required";

/// Pays for `reservation_id` with a card that needs authentication: the payment and
/// the provider's reference of it.
async fn pay_needing_authentication(
    h: &Harness,
    n: u32,
    reservation_id: ReservationId,
) -> (PaymentId, String) {
    let answer = h
        .app
        .pay(&customer_ctx(n), reservation_id, card(THREE_D_SECURE))
        .await
        .unwrap();
    let PaymentResult::ActionRequired {
        payment_id,
        client_secret,
        ..
    } = answer
    else {
        panic!("authentication is asked for: {answer:?}");
    };
    assert!(!client_secret.is_empty());
    let details = h.app.reservation(reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::PaymentPending);
    assert_eq!(details.payment_id, Some(payment_id));
    let reference = details
        .payment_action_reference
        .expect("the provider's reference is recorded");
    (payment_id, reference)
}

pub async fn a_payment_waiting_for_authentication_keeps_its_seats_and_a_reported_success_confirms_it(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let (payment_id, reference) = pay_needing_authentication(&h, 1, held.reservation_id).await;
    assert_eq!(seats(&h, show_id).await, (2, 0, 8), "still held");
    assert_eq!(h.gateway.captured_count(), 0);

    // Paying again, even with another card, answers where this payment stands.
    let again = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(
        matches!(again, PaymentResult::ActionRequired { payment_id: p, expires_at, .. }
            if p == payment_id && expires_at == held.expires_at),
        "{again:?}"
    );
    // Past the payment grace, the sweeper leaves it alone: the hold has not run out.
    h.clock.advance(TimeDelta::minutes(5));
    assert!(sweep(&h).await.is_idle());

    let captured = h.gateway.authenticate(&reference, true).await.unwrap();
    let settled = h
        .app
        .apply_payment_report(
            &stripe(),
            report(held.reservation_id, payment_id, captured.clone()),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            settled,
            ReportOutcome::Settled(PaymentResult::Confirmed { .. })
        ),
        "{settled:?}"
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::Confirmed);
    assert_eq!(details.tickets.len(), 2);
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));
    assert_eq!(h.gateway.captured_count(), 1);
    // The report again, or a contrary one out of order, changes nothing.
    for outcome in [
        captured,
        ChargeOutcome::Declined {
            reason: "card_declined".into(),
        },
    ] {
        assert_eq!(
            h.app
                .apply_payment_report(&stripe(), report(held.reservation_id, payment_id, outcome))
                .await
                .unwrap(),
            ReportOutcome::AlreadySettled
        );
    }
    assert!(matches!(
        h.app
            .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
            .await,
        Err(AppError::Domain(DomainError::AlreadyPaid))
    ));
}

pub async fn an_authentication_finished_before_paying_again_confirms_on_the_retry(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let (payment_id, reference) = pay_needing_authentication(&h, 1, held.reservation_id).await;
    h.gateway.authenticate(&reference, true).await.unwrap();

    let ctx = customer_ctx(1).with_idempotency_key("pay-again");
    let answer = h
        .app
        .pay(&ctx, held.reservation_id, card(THREE_D_SECURE))
        .await
        .unwrap();
    assert!(
        matches!(answer, PaymentResult::Confirmed { payment_id: p, .. } if p == payment_id),
        "{answer:?}"
    );
    // Recorded under its key like any payment: the retry replays it.
    assert_eq!(
        h.app
            .pay(&ctx, held.reservation_id, card(THREE_D_SECURE))
            .await
            .unwrap(),
        answer
    );
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));
    assert_eq!(h.gateway.captured_count(), 1);
}

pub async fn a_failed_authentication_reported_releases_the_seats(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let (payment_id, reference) = pay_needing_authentication(&h, 1, held.reservation_id).await;
    let failed = h.gateway.authenticate(&reference, false).await.unwrap();
    assert!(matches!(failed, ChargeOutcome::Declined { .. }));

    let settled = h
        .app
        .apply_payment_report(&stripe(), report(held.reservation_id, payment_id, failed))
        .await
        .unwrap();
    assert!(
        matches!(
            settled,
            ReportOutcome::Settled(PaymentResult::Declined { .. })
        ),
        "{settled:?}"
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::PaymentDeclined);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    // The customer cannot finish it afterwards: the provider settled it as failed.
    assert!(matches!(
        h.gateway.authenticate(&reference, true).await,
        Ok(ChargeOutcome::Declined { .. })
    ));
    assert_eq!(h.gateway.captured_count(), 0);
}

/// The provider reports the success (the customer authenticated at once) before the
/// payment's own call has recorded that authentication was asked for: the answer is
/// the confirmation, not an error, and nothing is recorded twice.
pub async fn a_success_reported_before_the_answer_that_asked_for_authentication_wins(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let charges = h.provider.hold_charges();
    let paying = pay_in_background(&h, customer_ctx(1), held.reservation_id, THREE_D_SECURE);
    charges.charge_arrived().await;
    let payment_id = payment_of(&h, held.reservation_id).await;
    let success = captured_by_simulation(payment_id);
    let settled = h
        .app
        .apply_payment_report(&stripe(), report(held.reservation_id, payment_id, success))
        .await
        .unwrap();
    assert!(matches!(
        settled,
        ReportOutcome::Settled(PaymentResult::Confirmed { .. })
    ));
    charges.open();
    let answer = paying.await.unwrap().unwrap();
    assert!(
        matches!(answer, PaymentResult::Confirmed { payment_id: p, .. } if p == payment_id),
        "{answer:?}"
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::Confirmed);
    assert_eq!(details.payment_action_reference, None, "never recorded");
    assert_eq!(details.tickets.len(), 2);
}

pub async fn a_payment_never_authenticated_is_cancelled_when_its_hold_runs_out(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let (_, reference) = pay_needing_authentication(&h, 1, held.reservation_id).await;

    h.clock.advance(TimeDelta::minutes(9));
    assert!(sweep(&h).await.is_idle(), "not before the hold's expiry");
    h.clock.advance(TimeDelta::minutes(1));
    assert_eq!(
        sweep(&h).await,
        SweepReport {
            authentications_cancelled: 1,
            ..SweepReport::default()
        }
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::PaymentDeclined);
    let (event_type, data) = last_event(&h, &reservation_stream(held.reservation_id)).await;
    assert_eq!(event_type, "ReservationPaymentDeclined");
    assert_eq!(data["reason"], AUTHENTICATION_CANCELLED);
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    // Too late for the customer: the cancellation came first.
    assert_eq!(
        h.gateway.authenticate(&reference, true).await.unwrap(),
        ChargeOutcome::Declined {
            reason: AUTHENTICATION_CANCELLED.into()
        }
    );
    assert!(sweep(&h).await.is_idle());
    assert_eq!(h.gateway.captured_count(), 0);
}

pub async fn an_authentication_finished_before_the_sweep_is_confirmed_not_cancelled(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let (_, reference) = pay_needing_authentication(&h, 1, held.reservation_id).await;
    // Finished at the last moment; its report is lost.
    h.clock.advance(TimeDelta::minutes(10));
    h.gateway.authenticate(&reference, true).await.unwrap();

    assert_eq!(
        sweep(&h).await,
        SweepReport {
            payments_confirmed: 1,
            ..SweepReport::default()
        }
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::Confirmed);
    assert_eq!(details.tickets.len(), 2);
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));
}
