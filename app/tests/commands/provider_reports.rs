//! The provider's reports (Stripe's webhooks) of a payment's outcome: before the
//! payment's own answer, after it, twice, out of order: each ends in the state the
//! first recorded outcome gives. Refunds and disputes made at the provider afterwards
//! are recorded on the payment, each once.

use std::sync::Arc;

use ticketing_app::payments::stripe_webhook::PaymentUpdate;
use ticketing_app::payments::ChargeOutcome;
use ticketing_app::provider_reports::{ChargeReport, ReportOutcome};
use ticketing_app::{AppError, PaymentResult};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

fn captured(reservation_id: ReservationId, payment_id: PaymentId) -> PaymentUpdate {
    report(
        reservation_id,
        payment_id,
        captured_by_simulation(payment_id),
    )
}

fn declined(reservation_id: ReservationId, payment_id: PaymentId) -> PaymentUpdate {
    report(
        reservation_id,
        payment_id,
        ChargeOutcome::Declined {
            reason: "card_declined".into(),
        },
    )
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
    let paying = pay_in_background(&h, customer_ctx(1), held.reservation_id, "tok_visa");
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

/// A confirmed purchase paid with `tok_visa`: its payment and the provider's reference.
async fn confirmed_purchase(h: &Harness, show_id: ShowId, quantity: u32) -> (PaymentId, String) {
    let held = hold(h, show_id, 1, quantity).await;
    let payment_id = pay_confirmed(h, held.reservation_id).await;
    (payment_id, format!("ch_sim_{payment_id}"))
}

/// A refund of the whole amount made at the provider (its dashboard) refunds the
/// purchase here too, once: the seats go back on sale, and a refund through the API
/// afterwards is refused as already done.
pub async fn a_refund_made_at_the_provider_refunds_the_purchase_once(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let (payment_id, reference) = confirmed_purchase(&h, show_id, 2).await;
    let refunded = ChargeReport::Refunded {
        refunded_minor: 9_000,
        refund_reference: "re_dashboard_1".into(),
    };

    let report = h
        .app
        .apply_charge_report(&stripe(), &reference, refunded.clone())
        .await
        .unwrap();
    assert!(
        matches!(
            report,
            ReportOutcome::Settled(PaymentResult::Refunded { .. })
        ),
        "{report:?}"
    );
    let payment = h.app.payment(payment_id).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    let reservation = h.app.reservation(payment.reservation_id).await.unwrap();
    assert_eq!(reservation.status, ReservationStatus::Refunded);
    let (_, data) = last_event(&h, &reservation_stream(payment.reservation_id)).await;
    assert_eq!(data["reason"], "refunded_at_provider");
    assert_eq!(seats(&h, show_id).await, (0, 0, 10));

    assert_eq!(
        h.app
            .apply_charge_report(&stripe(), &reference, refunded)
            .await
            .unwrap(),
        ReportOutcome::AlreadySettled
    );
    assert!(matches!(
        h.app
            .refund_payment(&organizer(), payment_id, RefundReason::RefundedByOrganizer)
            .await,
        Err(AppError::Domain(DomainError::AlreadyRefunded))
    ));
    assert_eq!(
        h.gateway.refund_count(),
        0,
        "the provider refunded it, not us"
    );
}

/// A partial refund and a dispute made at the provider are recorded on the payment,
/// each once; the purchase stands. Reports about a charge that is not ours are ignored.
pub async fn a_partial_refund_and_a_dispute_are_recorded_on_the_payment_once(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let (payment_id, reference) = confirmed_purchase(&h, show_id, 2).await;
    let partial = ChargeReport::Refunded {
        refunded_minor: 1_000,
        refund_reference: "re_dashboard_1".into(),
    };
    let dispute = ChargeReport::Disputed {
        dispute_reference: "dp_1".into(),
        reason: "fraudulent".into(),
        amount_minor: 9_000,
    };
    for (report, first) in [
        (partial.clone(), ReportOutcome::Recorded),
        (partial, ReportOutcome::AlreadySettled),
        (dispute.clone(), ReportOutcome::Recorded),
        (dispute, ReportOutcome::AlreadySettled),
    ] {
        assert_eq!(
            h.app
                .apply_charge_report(&stripe(), &reference, report.clone())
                .await
                .unwrap(),
            first,
            "{report:?}"
        );
    }
    let payment = h.app.payment(payment_id).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Captured);
    assert_eq!(payment.partially_refunded, Some(eur(1_000)));
    assert_eq!(payment.disputes, ["dp_1"]);
    assert_eq!(
        h.app
            .reservation(payment.reservation_id)
            .await
            .unwrap()
            .status,
        ReservationStatus::Confirmed
    );
    assert_eq!(seats(&h, show_id).await, (0, 2, 8));
    assert_eq!(
        h.app
            .apply_charge_report(
                &stripe(),
                "ch_other_1",
                ChargeReport::Refunded {
                    refunded_minor: 1,
                    refund_reference: "re_x".into(),
                },
            )
            .await
            .unwrap(),
        ReportOutcome::NotOurs
    );
}

/// A refund through the API, which the provider then reports as well: the report
/// changes nothing.
pub async fn a_refund_through_the_api_reported_by_the_provider_changes_nothing(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let (payment_id, reference) = confirmed_purchase(&h, show_id, 1).await;
    h.app
        .refund_payment(&organizer(), payment_id, RefundReason::RefundedByOrganizer)
        .await
        .unwrap();
    let version = h
        .store
        .stream_version(&payment_stream(payment_id))
        .await
        .unwrap();
    assert_eq!(
        h.app
            .apply_charge_report(
                &stripe(),
                &reference,
                ChargeReport::Refunded {
                    refunded_minor: 4_500,
                    refund_reference: "re_sim_1".into(),
                },
            )
            .await
            .unwrap(),
        ReportOutcome::AlreadySettled
    );
    assert_eq!(
        h.store
            .stream_version(&payment_stream(payment_id))
            .await
            .unwrap(),
        version
    );
    let reservation = h.app.payment(payment_id).await.unwrap().reservation_id;
    let (_, data) = last_event(&h, &reservation_stream(reservation)).await;
    assert_eq!(data["reason"], "refunded_by_organizer");
}
