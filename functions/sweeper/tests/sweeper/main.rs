//! The `sweeper` function, driven by the EventBridge payload in `fixtures/`, on a
//! command layer whose clock the test moves.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use ticketing_app::payments::SimulatedGateway;
use ticketing_app::SweepLimits;
use ticketing_app::{AppError, ManualClock, Settings, Ticketing};
use ticketing_domain::reservation::ReservationStatus;
use ticketing_domain::DomainError;
use ticketing_fn_support::fixture;
use ticketing_fn_support::testing::{hold, show_on_sale, TestStore, CUSTOMER};
use ticketing_fn_sweeper::{handle, ScheduledEvent, SweepError};
use ticketing_store::GlobalPosition;

/// A command layer over `db` whose clock stands still until moved, holding seats for
/// one minute.
fn ticketing(db: &TestStore, clock: &ManualClock) -> Ticketing {
    let settings = Settings {
        hold_duration: TimeDelta::minutes(1),
        ..Settings::default()
    };
    Ticketing::new(
        Arc::clone(&db.store),
        Arc::new(SimulatedGateway::new()),
        Arc::new(clock.clone()),
        settings,
    )
}

/// The committed EventBridge payload, as the runtime hands it to the handler.
fn scheduled_invocation() -> LambdaEvent<ScheduledEvent> {
    let payload: ScheduledEvent = serde_json::from_value(fixture!("scheduled-event.json").json())
        .expect("the fixture is an EventBridge scheduled event");
    LambdaEvent::new(payload, Context::default())
}

#[test]
fn fixture_is_an_eventbridge_scheduled_event() {
    let event = scheduled_invocation().payload;
    assert_eq!(event.source.as_deref(), Some("aws.events"));
    assert_eq!(event.detail_type.as_deref(), Some("Scheduled Event"));
    assert_eq!(event.resources.len(), 1);
}

#[tokio::test]
async fn expired_hold_is_released_by_the_scheduled_sweep() {
    let db = TestStore::new().await;
    let clock = ManualClock::starting_at(Utc::now());
    let ticketing = ticketing(&db, &clock);
    let show_id = show_on_sale(&ticketing).await;
    let held = hold(&ticketing, show_id, CUSTOMER, 3).await;
    clock.advance(TimeDelta::minutes(2));

    let report = handle(&ticketing, SweepLimits::default(), scheduled_invocation())
        .await
        .expect("the sweep succeeds");

    let reservation = ticketing
        .reservation(held.reservation_id)
        .await
        .expect("the reservation");
    assert_eq!(reservation.status, ReservationStatus::Expired);
    let sections = ticketing.availability(show_id).await.expect("availability");
    assert_eq!(sections[0].held, 0);
    assert_eq!(sections[0].available, 100);
    assert_eq!(report.holds_expired, 1, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    // The answer the function returns to the runtime.
    let answer = serde_json::to_value(report).expect("the report is JSON");
    assert_eq!(answer["holds_expired"], 1);
}

#[tokio::test]
async fn hold_that_has_not_expired_is_left_alone() {
    let db = TestStore::new().await;
    let clock = ManualClock::starting_at(Utc::now());
    let ticketing = ticketing(&db, &clock);
    let show_id = show_on_sale(&ticketing).await;
    let held = hold(&ticketing, show_id, CUSTOMER, 3).await;
    clock.advance(TimeDelta::seconds(30));

    let report = handle(&ticketing, SweepLimits::default(), scheduled_invocation())
        .await
        .expect("the sweep succeeds");

    assert!(report.is_idle(), "{report:?}");
    let reservation = ticketing
        .reservation(held.reservation_id)
        .await
        .expect("the reservation");
    assert_eq!(reservation.status, ReservationStatus::Held);
    let sections = ticketing.availability(show_id).await.expect("availability");
    assert_eq!(sections[0].held, 3);
}

#[tokio::test]
async fn sweeping_again_changes_nothing() {
    let db = TestStore::new().await;
    let clock = ManualClock::starting_at(Utc::now());
    let ticketing = ticketing(&db, &clock);
    let show_id = show_on_sale(&ticketing).await;
    hold(&ticketing, show_id, CUSTOMER, 3).await;
    clock.advance(TimeDelta::minutes(2));
    handle(&ticketing, SweepLimits::default(), scheduled_invocation())
        .await
        .expect("the first sweep succeeds");
    let before = db
        .store
        .read_all(GlobalPosition::START, 1000)
        .await
        .expect("read_all")
        .len();

    let report = handle(&ticketing, SweepLimits::default(), scheduled_invocation())
        .await
        .expect("the second sweep succeeds");

    assert!(report.is_idle(), "{report:?}");
    let after = db
        .store
        .read_all(GlobalPosition::START, 1000)
        .await
        .expect("read_all")
        .len();
    assert_eq!(before, after);
}

#[test]
fn transient_failure_is_reported_as_retryable() {
    let error = SweepError::from(AppError::Contention {
        stream_id: "inventory-x-floor".into(),
        attempts: 8,
    });

    let diagnostic = Diagnostic::from(error);

    assert_eq!(diagnostic.error_type, "Retryable");
    assert!(diagnostic.error_message.contains("inventory-x-floor"));
}

#[test]
fn permanent_failure_is_reported_as_non_retryable() {
    let error = SweepError::from(AppError::Domain(DomainError::ShowNotFound));

    let diagnostic = Diagnostic::from(error);

    assert_eq!(diagnostic.error_type, "NonRetryable");
}

#[test]
fn the_payment_grace_comes_from_the_environment_and_is_checked() {
    // The only test of this binary that touches this variable.
    let grace = |value: &str| {
        std::env::set_var("SWEEP_PAYMENT_GRACE_SECONDS", value);
        ticketing_fn_sweeper::sweep_limits_from_env().map(|limits| limits.payment_grace)
    };
    assert_eq!(grace("").unwrap(), SweepLimits::default().payment_grace);
    assert_eq!(grace("1").unwrap(), TimeDelta::seconds(1));
    assert_eq!(grace(" 90 ").unwrap(), TimeDelta::seconds(90));
    for bad in ["0", "3601", "-5", "soon"] {
        assert!(grace(bad).is_err(), "{bad}");
    }
    std::env::remove_var("SWEEP_PAYMENT_GRACE_SECONDS");
}
