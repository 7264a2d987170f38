use super::*;
use crate::reservation::*;

fn place(r: ReservationId) -> ReservationCommand {
    ReservationCommand::Place {
        reservation_id: r,
        show_id: ShowId::new(),
        section: section("Floor"),
        customer_id: CustomerId::parse("cust-1").unwrap(),
        quantity: qty(2),
        unit_price: eur(4_500),
        expires_at: t0() + minutes(10),
        buckets: vec![],
    }
}

/// Runs `commands` in order from an empty stream, each at `t0()`, and returns the history.
fn history(r: ReservationId, commands: Vec<ReservationCommand>) -> Vec<ReservationEvent> {
    let mut events = given::<Reservation>(&[]).decide(place(r), t0()).unwrap();
    for command in commands {
        let new = given::<Reservation>(&events).decide(command, t0()).unwrap();
        events.extend(new);
    }
    events
}

fn status(events: &[ReservationEvent]) -> ReservationStatus {
    given::<Reservation>(events).0.unwrap().status
}

fn when(
    events: &[ReservationEvent],
    command: ReservationCommand,
) -> Result<Vec<ReservationEvent>, DomainError> {
    given::<Reservation>(events).decide(command, t0())
}

#[test]
fn placing_a_reservation_prices_it() {
    let r = ReservationId::new();
    let events = history(r, vec![]);
    let ReservationEvent::ReservationPlaced(placed) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(placed.amount, eur(9_000));
    assert_eq!(status(&events), ReservationStatus::Held);
    assert_eq!(
        when(&events, place(r)).unwrap_err(),
        DomainError::ReservationAlreadyExists
    );
}

#[test]
fn the_happy_path_goes_held_paid_confirmed() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let events = history(
        r,
        vec![
            ReservationCommand::RequestPayment { payment_id: p },
            ReservationCommand::RecordPaymentCaptured { payment_id: p },
            ReservationCommand::Confirm,
        ],
    );
    let types: Vec<_> = events.iter().map(|e| e.encode().event_type).collect();
    assert_eq!(
        types,
        [
            "ReservationPlaced",
            "PaymentRequested",
            "ReservationPaid",
            "ReservationConfirmed"
        ]
    );
    assert_eq!(status(&events), ReservationStatus::Confirmed);
}

#[test]
fn paying_twice_is_refused() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let events = history(
        r,
        vec![
            ReservationCommand::RequestPayment { payment_id: p },
            ReservationCommand::RecordPaymentCaptured { payment_id: p },
        ],
    );
    assert_eq!(
        when(
            &events,
            ReservationCommand::RequestPayment {
                payment_id: PaymentId::new()
            }
        )
        .unwrap_err(),
        DomainError::AlreadyPaid
    );
    assert_eq!(
        when(
            &events,
            ReservationCommand::RecordPaymentCaptured { payment_id: p }
        )
        .unwrap_err(),
        DomainError::AlreadyPaid
    );
}

#[test]
fn a_retried_payment_request_reuses_the_pending_payment() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let events = history(
        r,
        vec![ReservationCommand::RequestPayment { payment_id: p }],
    );
    assert_eq!(
        when(
            &events,
            ReservationCommand::RequestPayment {
                payment_id: PaymentId::new()
            }
        )
        .unwrap(),
        vec![]
    );
    assert_eq!(given::<Reservation>(&events).0.unwrap().payment_id, Some(p));
}

#[test]
fn a_payment_request_records_when_it_was_requested_and_a_retry_keeps_it() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let placed = history(r, vec![]);
    assert_eq!(
        given::<Reservation>(&placed)
            .0
            .unwrap()
            .payment_requested_at,
        None
    );
    let requested = given::<Reservation>(&placed)
        .decide(
            ReservationCommand::RequestPayment { payment_id: p },
            t0() + minutes(3),
        )
        .unwrap();
    let events: Vec<_> = placed.into_iter().chain(requested).collect();
    let state = given::<Reservation>(&events);
    assert_eq!(
        state.0.as_ref().unwrap().payment_requested_at,
        Some(t0() + minutes(3))
    );
    let retried = state
        .decide(
            ReservationCommand::RequestPayment {
                payment_id: PaymentId::new(),
            },
            t0() + minutes(5),
        )
        .unwrap();
    assert_eq!(
        retried,
        vec![],
        "a retry records nothing, so the instant stays"
    );
}

#[test]
fn an_outcome_for_another_payment_is_refused() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let events = history(
        r,
        vec![ReservationCommand::RequestPayment { payment_id: p }],
    );
    assert_eq!(
        when(
            &events,
            ReservationCommand::RecordPaymentCaptured {
                payment_id: PaymentId::new()
            }
        )
        .unwrap_err(),
        DomainError::PaymentMismatch
    );
}

#[test]
fn a_declined_payment_ends_the_reservation() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let events = history(
        r,
        vec![
            ReservationCommand::RequestPayment { payment_id: p },
            ReservationCommand::RecordPaymentDeclined {
                payment_id: p,
                reason: "card_declined".into(),
            },
        ],
    );
    assert_eq!(status(&events), ReservationStatus::PaymentDeclined);
    assert_eq!(
        when(
            &events,
            ReservationCommand::RequestPayment {
                payment_id: PaymentId::new()
            }
        )
        .unwrap_err(),
        DomainError::ReservationClosed(ReservationStatus::PaymentDeclined)
    );
}

#[test]
fn a_hold_expires_only_after_its_expiry_instant() {
    let r = ReservationId::new();
    let events = history(r, vec![]);
    let state = given::<Reservation>(&events);
    assert_eq!(
        state
            .decide(ReservationCommand::Expire, t0() + minutes(9))
            .unwrap_err(),
        DomainError::HoldNotExpired
    );
    let expired = state
        .decide(ReservationCommand::Expire, t0() + minutes(10))
        .unwrap();
    assert!(matches!(
        expired[..],
        [ReservationEvent::ReservationExpired(_)]
    ));
    let after: Vec<_> = events.into_iter().chain(expired).collect();
    assert_eq!(status(&after), ReservationStatus::Expired);
    assert_eq!(
        when(
            &after,
            ReservationCommand::RequestPayment {
                payment_id: PaymentId::new()
            }
        )
        .unwrap_err(),
        DomainError::HoldExpired
    );
}

#[test]
fn a_pending_payment_blocks_expiry_and_cancellation() {
    let r = ReservationId::new();
    let events = history(
        r,
        vec![ReservationCommand::RequestPayment {
            payment_id: PaymentId::new(),
        }],
    );
    let state = given::<Reservation>(&events);
    assert_eq!(
        state
            .decide(ReservationCommand::Expire, t0() + minutes(30))
            .unwrap_err(),
        DomainError::PaymentInProgress
    );
    assert_eq!(
        when(&events, ReservationCommand::Cancel { refund: None }).unwrap_err(),
        DomainError::PaymentInProgress
    );
}

#[test]
fn the_customer_cancels_a_held_reservation() {
    let r = ReservationId::new();
    let events = history(r, vec![ReservationCommand::Cancel { refund: None }]);
    assert_eq!(status(&events), ReservationStatus::Cancelled);
    assert_eq!(
        when(&events, ReservationCommand::Cancel { refund: None }).unwrap_err(),
        DomainError::AlreadyCancelled
    );
}

#[test]
fn cancelling_a_confirmed_purchase_refunds_it() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let confirmed = history(
        r,
        vec![
            ReservationCommand::RequestPayment { payment_id: p },
            ReservationCommand::RecordPaymentCaptured { payment_id: p },
            ReservationCommand::Confirm,
        ],
    );
    assert_eq!(
        when(&confirmed, ReservationCommand::Cancel { refund: None }).unwrap_err(),
        DomainError::RefundRequired
    );
    let events = when(
        &confirmed,
        ReservationCommand::Cancel {
            refund: Some(RefundReason::CancelledByCustomer),
        },
    )
    .unwrap();
    assert!(matches!(
        &events[..],
        [ReservationEvent::ReservationCancelled(_), ReservationEvent::ReservationRefunded(ReservationRefunded { amount, payment_id, .. })]
            if *amount == eur(9_000) && *payment_id == p
    ));
    let all: Vec<_> = confirmed.into_iter().chain(events).collect();
    assert_eq!(status(&all), ReservationStatus::Refunded);
    assert_eq!(
        when(
            &all,
            ReservationCommand::Refund {
                reason: RefundReason::RefundedByOrganizer
            }
        )
        .unwrap_err(),
        DomainError::AlreadyRefunded
    );
}

#[test]
fn a_paid_reservation_whose_seats_are_gone_is_refunded() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let paid = history(
        r,
        vec![
            ReservationCommand::RequestPayment { payment_id: p },
            ReservationCommand::RecordPaymentCaptured { payment_id: p },
        ],
    );
    let events = when(
        &paid,
        ReservationCommand::Refund {
            reason: RefundReason::SeatsUnavailable,
        },
    )
    .unwrap();
    assert!(
        matches!(&events[..], [ReservationEvent::ReservationRefunded(e)] if e.reason == RefundReason::SeatsUnavailable)
    );
}

#[test]
fn refunding_or_confirming_an_unpaid_reservation_is_refused() {
    let events = history(ReservationId::new(), vec![]);
    assert_eq!(
        when(
            &events,
            ReservationCommand::Refund {
                reason: RefundReason::RefundedByOrganizer
            }
        )
        .unwrap_err(),
        DomainError::NotPaid
    );
    assert_eq!(
        when(&events, ReservationCommand::Confirm).unwrap_err(),
        DomainError::NotPaid
    );
}

#[test]
fn commands_on_an_unknown_reservation_are_refused() {
    assert_eq!(
        given::<Reservation>(&[])
            .decide(ReservationCommand::Confirm, t0())
            .unwrap_err(),
        DomainError::ReservationNotFound
    );
}

#[test]
fn a_confirmed_purchase_issues_one_ticket_per_seat_once() {
    let (r, p) = (ReservationId::new(), PaymentId::new());
    let confirmed = history(
        r,
        vec![
            ReservationCommand::RequestPayment { payment_id: p },
            ReservationCommand::RecordPaymentCaptured { payment_id: p },
            ReservationCommand::Confirm,
        ],
    );
    assert_eq!(
        when(
            &confirmed,
            ReservationCommand::IssueTickets {
                tickets: vec![TicketId::new()]
            }
        ),
        Err(DomainError::TicketCountMismatch {
            quantity: 2,
            tickets: 1
        })
    );
    let tickets = vec![TicketId::new(), TicketId::new()];
    let mut events = confirmed.clone();
    events.extend(
        when(
            &confirmed,
            ReservationCommand::IssueTickets {
                tickets: tickets.clone(),
            },
        )
        .unwrap(),
    );
    assert_eq!(given::<Reservation>(&events).0.unwrap().tickets, tickets);
    assert_eq!(
        when(
            &events,
            ReservationCommand::IssueTickets {
                tickets: vec![TicketId::new(), TicketId::new()]
            }
        ),
        Err(DomainError::TicketsAlreadyIssued)
    );
    let held = history(r, vec![]);
    assert_eq!(
        when(&held, ReservationCommand::IssueTickets { tickets }),
        Err(DomainError::NotPaid)
    );
}
