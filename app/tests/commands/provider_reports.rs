//! The provider's reports (Stripe's webhooks) of a payment's outcome: before the
//! payment's own answer, after it, twice, out of order: each ends in the state the
//! first recorded outcome gives.

use std::sync::Arc;

use ticketing_app::payments::stripe_webhook::PaymentUpdate;
use ticketing_app::payments::ChargeOutcome;
use ticketing_app::provider_reports::ReportOutcome;
use ticketing_app::{AppError, CommandContext, PaymentResult};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

fn stripe() -> CommandContext {
    CommandContext::new("stripe")
}

async fn payment_of(h: &Harness, reservation_id: ReservationId) -> PaymentId {
    h.app
        .reservation(reservation_id)
        .await
        .unwrap()
        .payment_id
        .expect("a payment was requested")
}

fn captured(reservation_id: ReservationId, payment_id: PaymentId) -> PaymentUpdate {
    PaymentUpdate {
        reservation_id,
        payment_id,
        outcome: ChargeOutcome::Captured {
            reference: format!("ch_sim_{payment_id}"),
        },
    }
}

fn declined(reservation_id: ReservationId, payment_id: PaymentId) -> PaymentUpdate {
    PaymentUpdate {
        reservation_id,
        payment_id,
        outcome: ChargeOutcome::Declined {
            reason: "card_declined".into(),
        },
    }
}

/// The report of a success arrives while the payment's own call is still at the
/// provider: it confirms the purchase, and the call's answer, arriving after, is the
/// same confirmation (not an error); the report sent again changes nothing.
pub async fn a_success_reported_before_the_answer_confirms_once_and_the_answer_agrees(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let charges = h.provider.hold_charges();
    let paying = {
        let app = h.app.clone();
        tokio::spawn(async move {
            app.pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
                .await
        })
    };
    charges.charge_arrived().await;
    let payment_id = payment_of(&h, held.reservation_id).await;
    let report = h
        .app
        .apply_payment_report(&stripe(), captured(held.reservation_id, payment_id))
        .await
        .unwrap();
    assert!(
        matches!(
            report,
            ReportOutcome::Settled(PaymentResult::Confirmed { .. })
        ),
        "{report:?}"
    );
    charges.open();
    let answer = paying.await.unwrap().unwrap();
    assert!(
        matches!(answer, PaymentResult::Confirmed { payment_id: p, .. } if p == payment_id),
        "{answer:?}"
    );
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::Confirmed);
    assert_eq!(details.tickets.len(), 2, "issued once");
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));

    let version = h
        .store
        .stream_version(&format!("reservation-{}", held.reservation_id))
        .await
        .unwrap();
    assert_eq!(
        h.app
            .apply_payment_report(&stripe(), captured(held.reservation_id, payment_id))
            .await
            .unwrap(),
        ReportOutcome::AlreadySettled
    );
    assert_eq!(
        h.store
            .stream_version(&format!("reservation-{}", held.reservation_id))
            .await
            .unwrap(),
        version,
        "a replayed report records nothing"
    );
}

/// A pending payment whose answer was lost is settled by the report, not by the
/// sweeper two minutes later: a failure releases the seats, and a contrary report
/// arriving after changes nothing.
pub async fn a_failure_reported_for_a_pending_payment_releases_the_seats_and_a_late_success_is_ignored(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 3).await;
    let lost = h
        .app
        .pay(&customer_ctx(1), held.reservation_id, card("tok_timeout"))
        .await;
    assert!(
        matches!(lost, Err(AppError::PaymentProvider(_))),
        "{lost:?}"
    );
    let payment_id = payment_of(&h, held.reservation_id).await;

    let report = h
        .app
        .apply_payment_report(&stripe(), declined(held.reservation_id, payment_id))
        .await
        .unwrap();
    assert!(
        matches!(
            report,
            ReportOutcome::Settled(PaymentResult::Declined { .. })
        ),
        "{report:?}"
    );
    assert_eq!(
        h.app.reservation(held.reservation_id).await.unwrap().status,
        ReservationStatus::PaymentDeclined
    );
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));
    assert_eq!(
        h.app
            .apply_payment_report(&stripe(), captured(held.reservation_id, payment_id))
            .await
            .unwrap(),
        ReportOutcome::AlreadySettled
    );

    // Reports of a payment that is not the reservation's, or of no reservation.
    assert_eq!(
        h.app
            .apply_payment_report(&stripe(), captured(held.reservation_id, PaymentId::new()))
            .await
            .unwrap(),
        ReportOutcome::NotOurs
    );
    assert_eq!(
        h.app
            .apply_payment_report(&stripe(), captured(ReservationId::new(), payment_id))
            .await
            .unwrap(),
        ReportOutcome::NotOurs
    );
}
