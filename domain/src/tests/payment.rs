use super::*;
use crate::payment::*;

fn capture(p: PaymentId) -> PaymentCommand {
    PaymentCommand::RecordCapture {
        payment_id: p,
        reservation_id: ReservationId::new(),
        amount: eur(9_000),
        provider_reference: "ch_1".into(),
    }
}

fn when(
    events: &[PaymentEvent],
    command: PaymentCommand,
) -> Result<Vec<PaymentEvent>, DomainError> {
    given::<Payment>(events).decide(command, t0())
}

#[test]
fn a_capture_is_recorded_once() {
    let p = PaymentId::new();
    let events = when(&[], capture(p)).unwrap();
    assert!(matches!(&events[..], [PaymentEvent::PaymentCaptured(e)] if e.payment_id == p));
    assert_eq!(
        given::<Payment>(&events).0.unwrap().status,
        PaymentStatus::Captured
    );
    assert_eq!(
        when(&events, capture(p)).unwrap_err(),
        DomainError::PaymentAlreadyRecorded
    );
}

#[test]
fn a_decline_is_recorded_and_cannot_be_refunded() {
    let p = PaymentId::new();
    let decline = PaymentCommand::RecordDecline {
        payment_id: p,
        reservation_id: ReservationId::new(),
        amount: eur(100),
        reason: "card_declined".into(),
    };
    let events = when(&[], decline).unwrap();
    assert_eq!(
        given::<Payment>(&events).0.unwrap().status,
        PaymentStatus::Declined
    );
    let refund = PaymentCommand::RecordRefund {
        provider_reference: "re_1".into(),
    };
    assert_eq!(
        when(&events, refund).unwrap_err(),
        DomainError::NotRefundable
    );
}

#[test]
fn refunding_twice_is_refused() {
    let p = PaymentId::new();
    let mut events = when(&[], capture(p)).unwrap();
    let refund = PaymentCommand::RecordRefund {
        provider_reference: "re_1".into(),
    };
    events.extend(when(&events, refund.clone()).unwrap());
    assert_eq!(
        given::<Payment>(&events).0.unwrap().status,
        PaymentStatus::Refunded
    );
    assert_eq!(
        when(&events, refund).unwrap_err(),
        DomainError::AlreadyRefunded
    );
}

#[test]
fn refunding_an_unknown_payment_is_refused() {
    let refund = PaymentCommand::RecordRefund {
        provider_reference: "re_1".into(),
    };
    assert_eq!(when(&[], refund).unwrap_err(), DomainError::PaymentNotFound);
}
