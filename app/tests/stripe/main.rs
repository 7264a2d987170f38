//! The Stripe adapter against a stand-in for Stripe's API (`ticketing-stripe-stand-in`), and a
//! purchase through the command layer paid with it. The `..._on_stripe` tests run the
//! same checks against Stripe's real test mode whenever `STRIPE_SECRET_KEY` holds a
//! test-mode key (`sk_test_...`); without one they are reported as skipped, by name,
//! in CI too, since no CI machine has Stripe's credentials. The binary has no libtest
//! harness (`harness = false`): its tests are `libtest_mimic` trials, which can be
//! skipped by what the environment holds.

use std::future::Future;
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use ticketing_app::payments::{
    CardToken, ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway, RefundRequest,
    StripeConfig, StripeGateway,
};
use ticketing_app::{CommandContext, HoldSeats, ManualClock, PaymentResult, Settings, Ticketing};
use ticketing_domain::*;
use ticketing_store::testing::{async_trial, run_trials, Trial};

use ticketing_stripe_stand_in::{StandIn, STAND_IN_KEY};

fn eur(amount_minor: i64) -> Money {
    Money::unit_price(amount_minor, Currency::parse("EUR").unwrap()).unwrap()
}

/// A charge of `amount_minor` cents with `card`, under a fresh payment id.
fn charge(card: &str, amount_minor: i64) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: PaymentId::new().to_string(),
        amount: eur(amount_minor),
        card: CardToken::parse(card).unwrap(),
        description: "2 x Floor".into(),
        reservation_id: Some(ReservationId::new()),
    }
}

async fn stand_in() -> (StandIn, StripeGateway) {
    let stand_in = StandIn::start().await;
    let mut config = StripeConfig::new(STAND_IN_KEY);
    config.api_base = stand_in.base_url.clone();
    (stand_in, StripeGateway::new(config).unwrap())
}

fn main() {
    let mut trials = ticketing_store::trials![
        async_trial =>
            charges_are_captured_once_per_payment_and_declines_say_why_on_the_stand_in,
            a_charge_never_authenticated_is_cancelled_on_the_stand_in,
            an_authenticated_charge_is_captured_and_cannot_be_cancelled_any_more,
            partial_refunds_add_up_to_the_charge_on_the_stand_in,
            a_capture_is_refunded_once_on_the_stand_in,
            an_incident_is_retried_under_the_same_key_and_then_reported_as_unavailable,
            a_charge_is_found_by_its_payment_id_and_a_recent_one_not_yet_listed_is_unknown,
            a_wrong_secret_key_is_refused_as_a_misconfiguration,
            a_purchase_paid_through_stripe_is_confirmed_and_refunded,
    ];
    trials.extend(ticketing_store::trials![
        stripe_trial =>
            charges_are_captured_once_per_payment_and_declines_say_why_on_stripe,
            a_charge_never_authenticated_is_cancelled_on_stripe,
            partial_refunds_add_up_to_the_charge_on_stripe,
            a_capture_is_refunded_once_on_stripe,
    ]);
    run_trials(trials);
}

/// Whether `STRIPE_SECRET_KEY` holds a test-mode key, which the `..._on_stripe` tests
/// need.
fn stripe_test_key() -> Option<String> {
    std::env::var("STRIPE_SECRET_KEY")
        .ok()
        .filter(|key| key.starts_with("sk_test_"))
}

/// A trial against Stripe's real test mode: skipped, by name, without a test-mode key.
fn stripe_trial<F, Fut>(name: String, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    async_trial(name, test).with_ignored_flag(stripe_test_key().is_none())
}

/// The adapter on Stripe's real test mode, when its key is set.
fn real_stripe() -> StripeGateway {
    let key = stripe_test_key().expect(
        "set STRIPE_SECRET_KEY to a test-mode key (sk_test_...) to run this against Stripe",
    );
    StripeGateway::new(StripeConfig::new(key)).unwrap()
}

async fn charges_are_captured_once_per_payment_and_declines_say_why(gateway: &StripeGateway) {
    let request = charge("tok_visa", 9_000);
    let first = gateway.charge(request.clone()).await.unwrap();
    let ChargeOutcome::Captured { reference } = &first else {
        panic!("tok_visa is captured: {first:?}");
    };
    assert!(reference.starts_with("pi_"), "{reference}");
    // A retry under the same payment id is the same charge.
    assert_eq!(gateway.charge(request.clone()).await.unwrap(), first);
    // The same payment id for another amount is a bug, refused.
    let other = ChargeRequest {
        amount: eur(1),
        ..request
    };
    assert!(matches!(
        gateway.charge(other).await,
        Err(GatewayError::Rejected(_))
    ));

    for (card, reason) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ] {
        assert_eq!(
            gateway.charge(charge(card, 9_000)).await.unwrap(),
            ChargeOutcome::Declined {
                reason: reason.into()
            },
            "{card}"
        );
    }
}

/// A charge that needs 3-D Secure: the client secret to finish it with, and where it
/// stands read back by its reference.
async fn an_authentication_is_asked_for(gateway: &StripeGateway) -> (ChargeRequest, String) {
    let request = charge("tok_threeDSecure2Required", 9_000);
    let outcome = gateway.charge(request.clone()).await.unwrap();
    let ChargeOutcome::ActionRequired {
        reference,
        client_secret,
    } = &outcome
    else {
        panic!("3-D Secure is asked for: {outcome:?}");
    };
    assert!(reference.starts_with("pi_"), "{reference}");
    assert!(
        client_secret.starts_with(&format!("{reference}_secret_")),
        "{client_secret}"
    );
    // A retry is the same PaymentIntent, still waiting.
    assert_eq!(gateway.charge(request.clone()).await.unwrap(), outcome);
    assert_eq!(gateway.charge_status(reference).await.unwrap(), outcome);
    (request, reference.clone())
}

async fn a_charge_never_authenticated_is_cancelled(gateway: &StripeGateway) {
    let (request, reference) = an_authentication_is_asked_for(gateway).await;
    let cancelled = gateway.cancel_charge(&reference).await.unwrap();
    assert!(
        matches!(cancelled, ChargeOutcome::Declined { .. }),
        "{cancelled:?}"
    );
    // Cancelling again, or looking it up, tells the same.
    assert_eq!(gateway.cancel_charge(&reference).await.unwrap(), cancelled);
    assert_eq!(gateway.charge_status(&reference).await.unwrap(), cancelled);
    assert_eq!(
        gateway.find_charge(&request.idempotency_key).await.unwrap(),
        Some(cancelled)
    );
}

async fn a_capture_is_refunded_once(gateway: &StripeGateway) {
    let request = charge("tok_visa", 4_500);
    let ChargeOutcome::Captured { reference } = gateway.charge(request.clone()).await.unwrap()
    else {
        panic!("captured")
    };
    // The charge traced back to our payment, as a refund reported by webhook is.
    assert_eq!(
        gateway.payment_of(&reference).await.unwrap(),
        Some(request.idempotency_key.clone())
    );
    assert_eq!(
        gateway
            .payment_of("pi_0000000000000000unknown")
            .await
            .unwrap(),
        None
    );
    let refund = RefundRequest {
        idempotency_key: format!("refund-{}", request.idempotency_key),
        charge_reference: reference,
        amount: request.amount,
    };
    let receipt = gateway.refund(refund.clone()).await.unwrap();
    assert!(receipt.reference.starts_with("re_"), "{receipt:?}");
    assert_eq!(gateway.refund(refund.clone()).await.unwrap(), receipt);
    let again = RefundRequest {
        idempotency_key: format!("another-{}", request.idempotency_key),
        ..refund
    };
    assert!(matches!(
        gateway.refund(again).await,
        Err(GatewayError::Rejected(_))
    ));
}

async fn charges_are_captured_once_per_payment_and_declines_say_why_on_the_stand_in() {
    let (stand_in, gateway) = stand_in().await;
    charges_are_captured_once_per_payment_and_declines_say_why(&gateway).await;
    assert_eq!(
        stand_in.created_intents(),
        3,
        "one per payment, retries replayed"
    );
    // Amounts in minor units with the currency, and the ids in the metadata.
    let (path, form) = &stand_in.requests()[0];
    assert_eq!(path, "/v1/payment_intents");
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("amount"), "9000");
    assert_eq!(value("currency"), "eur");
    assert_eq!(value("confirm"), "true");
    assert!(!value("metadata[payment_id]").is_empty());
    assert!(!value("metadata[reservation_id]").is_empty());
    assert_eq!(value("payment_method_data[card][token]"), "tok_visa");
}

async fn charges_are_captured_once_per_payment_and_declines_say_why_on_stripe() {
    charges_are_captured_once_per_payment_and_declines_say_why(&real_stripe()).await;
}

async fn a_charge_never_authenticated_is_cancelled_on_the_stand_in() {
    let (stand_in, gateway) = stand_in().await;
    a_charge_never_authenticated_is_cancelled(&gateway).await;
    assert!(stand_in
        .requests()
        .iter()
        .any(|(path, _)| path.ends_with("/cancel")));
}

async fn a_charge_never_authenticated_is_cancelled_on_stripe() {
    a_charge_never_authenticated_is_cancelled(&real_stripe()).await;
}

/// The customer's authentication happens in their browser, which only the stand-in
/// can play.
async fn an_authenticated_charge_is_captured_and_cannot_be_cancelled_any_more() {
    let (stand_in, gateway) = stand_in().await;
    let (_, reference) = an_authentication_is_asked_for(&gateway).await;
    let event = stand_in.authenticate(&reference, true).unwrap();
    assert_eq!(event["type"], "payment_intent.succeeded");
    let captured = ChargeOutcome::Captured {
        reference: reference.clone(),
    };
    assert_eq!(gateway.charge_status(&reference).await.unwrap(), captured);
    assert_eq!(gateway.cancel_charge(&reference).await.unwrap(), captured);

    let (_, failing) = an_authentication_is_asked_for(&gateway).await;
    let event = stand_in.authenticate(&failing, false).unwrap();
    assert_eq!(event["type"], "payment_intent.payment_failed");
    assert_eq!(
        gateway.charge_status(&failing).await.unwrap(),
        ChargeOutcome::Declined {
            reason: "payment_intent_authentication_failure".into()
        }
    );
}

/// Partial refunds, each under its own key, add up to the charge and no further.
async fn partial_refunds_add_up_to_the_charge(gateway: &StripeGateway) {
    let request = charge("tok_visa", 4_500);
    let ChargeOutcome::Captured { reference } = gateway.charge(request.clone()).await.unwrap()
    else {
        panic!("captured")
    };
    let refund = |key: &str, amount_minor: i64| RefundRequest {
        idempotency_key: format!("{key}-{}", request.idempotency_key),
        charge_reference: reference.clone(),
        amount: eur(amount_minor),
    };
    let first = gateway.refund(refund("part-1", 1_000)).await.unwrap();
    assert_eq!(
        gateway.refund(refund("part-1", 1_000)).await.unwrap(),
        first
    );
    let second = gateway.refund(refund("part-2", 3_500)).await.unwrap();
    assert_ne!(first, second);
    assert!(matches!(
        gateway.refund(refund("part-3", 1)).await,
        Err(GatewayError::Rejected(_))
    ));
}

async fn partial_refunds_add_up_to_the_charge_on_the_stand_in() {
    let (_stand_in, gateway) = stand_in().await;
    partial_refunds_add_up_to_the_charge(&gateway).await;
}

async fn partial_refunds_add_up_to_the_charge_on_stripe() {
    partial_refunds_add_up_to_the_charge(&real_stripe()).await;
}

async fn a_capture_is_refunded_once_on_the_stand_in() {
    let (_stand_in, gateway) = stand_in().await;
    a_capture_is_refunded_once(&gateway).await;
}

async fn a_capture_is_refunded_once_on_stripe() {
    a_capture_is_refunded_once(&real_stripe()).await;
}

async fn an_incident_is_retried_under_the_same_key_and_then_reported_as_unavailable() {
    let (stand_in, gateway) = stand_in().await;
    stand_in.fail_next(&[
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
    ]);
    assert!(matches!(
        gateway.charge(charge("tok_visa", 100)).await,
        Ok(ChargeOutcome::Captured { .. })
    ));
    assert_eq!(stand_in.created_intents(), 1);

    stand_in.fail_next(&[StatusCode::SERVICE_UNAVAILABLE; 4]);
    assert!(matches!(
        gateway.charge(charge("tok_visa", 100)).await,
        Err(GatewayError::Unavailable(_))
    ));
    assert_eq!(stand_in.created_intents(), 1, "nothing reached the books");
}

async fn a_charge_is_found_by_its_payment_id_and_a_recent_one_not_yet_listed_is_unknown() {
    let (_stand_in, gateway) = stand_in().await;
    let request = charge("tok_visa", 100);
    let captured = gateway.charge(request.clone()).await.unwrap();
    assert_eq!(
        gateway.find_charge(&request.idempotency_key).await.unwrap(),
        Some(captured)
    );
    let declined = charge("tok_chargeDeclined", 100);
    gateway.charge(declined.clone()).await.unwrap();
    assert!(matches!(
        gateway.find_charge(&declined.idempotency_key).await,
        Ok(Some(ChargeOutcome::Declined { .. }))
    ));
    // A payment made a moment ago that search does not list: ask again later.
    assert!(matches!(
        gateway.find_charge(&PaymentId::new().to_string()).await,
        Err(GatewayError::Unavailable(_))
    ));
    // One made long ago that Stripe never saw.
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        1_700_000_000,
        0,
    ));
    assert_eq!(gateway.find_charge(&old.to_string()).await.unwrap(), None);
}

async fn a_wrong_secret_key_is_refused_as_a_misconfiguration() {
    let stand_in = StandIn::start().await;
    let mut config = StripeConfig::new("sk_test_wrong");
    config.api_base = stand_in.base_url.clone();
    let gateway = StripeGateway::new(config).unwrap();
    assert!(matches!(
        gateway.charge(charge("tok_visa", 100)).await,
        Err(GatewayError::Rejected(_))
    ));
}

/// A purchase on the embedded store paid through the adapter: confirmed, and
/// refunded by the organizer through it.
async fn a_purchase_paid_through_stripe_is_confirmed_and_refunded() {
    ticketing_store::testing::with_sqlite(|store| async move {
        let (stand_in, gateway) = stand_in().await;
        let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
        let app = Ticketing::new(
            Arc::new(store),
            Arc::new(gateway),
            Arc::new(clock),
            Settings::default(),
        );
        let organizer = CommandContext::new("organizer-1");
        let plan = ShowPlan::new(
            "Summer Festival",
            "Main Arena",
            Utc.with_ymd_and_hms(2026, 7, 1, 20, 0, 0).unwrap(),
            vec![SectionSpec {
                name: SectionName::parse("Floor").unwrap(),
                capacity: 10,
                unit_price: eur(4_500),
                buckets: 1,
            }],
            6,
        )
        .unwrap();
        let show_id = app
            .create_show(&organizer, OrganizerId::parse("organizer-1").unwrap(), plan)
            .await
            .unwrap();
        app.change_sales(&organizer, show_id, ShowCommand::OpenSales)
            .await
            .unwrap();
        let customer = CustomerId::parse("customer-1").unwrap();
        let held = app
            .hold_seats(
                &CommandContext::new("customer-1"),
                HoldSeats {
                    show_id,
                    section: SectionName::parse("Floor").unwrap(),
                    customer_id: customer,
                    quantity: Quantity::new(2).unwrap(),
                },
            )
            .await
            .unwrap();
        let paid = app
            .pay(
                &CommandContext::new("customer-1"),
                held.reservation_id,
                CardToken::parse("tok_visa").unwrap(),
            )
            .await
            .unwrap();
        let PaymentResult::Confirmed { payment_id, .. } = paid else {
            panic!("tok_visa confirms: {paid:?}");
        };
        app.refund_payment(&organizer, payment_id, RefundReason::RefundedByOrganizer)
            .await
            .unwrap();
        let paths: Vec<String> = stand_in.requests().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["/v1/payment_intents", "/v1/refunds"]);
        let details = app.reservation(held.reservation_id).await.unwrap();
        assert_eq!(details.status, ReservationStatus::Refunded);
    })
    .await;
}
