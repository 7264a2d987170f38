use super::*;
use crate::reservation::ReservationStatus as S;
use crate::ticket::*;

fn customer(name: &str) -> CustomerId {
    CustomerId::parse(name).unwrap()
}

fn issued() -> Vec<TicketEvent> {
    given::<Ticket>(&[])
        .decide(
            TicketCommand::Issue {
                ticket_id: TicketId::new(),
                reservation_id: ReservationId::new(),
                show_id: ShowId::new(),
                section: section("Floor"),
                holder: customer("alice"),
                code: "code-0".into(),
            },
            t0(),
        )
        .unwrap()
}

fn scan(minute: i64, gate: &str) -> Scan {
    Scan {
        generation: 0,
        scanned_at: t0() + minutes(minute),
        gate: Some(gate.into()),
    }
}

fn admit(scan: Scan, purchase: ReservationStatus) -> TicketCommand {
    TicketCommand::Admit { scan, purchase }
}

fn when(events: &[TicketEvent], command: TicketCommand) -> Result<Vec<TicketEvent>, DomainError> {
    given::<Ticket>(events).decide(command, t0() + minutes(120))
}

fn then(mut events: Vec<TicketEvent>, command: TicketCommand) -> Vec<TicketEvent> {
    let new = when(&events, command).unwrap();
    events.extend(new);
    events
}

fn transfer(to: &str, generation: u32) -> TicketCommand {
    TicketCommand::Transfer {
        by: customer("alice"),
        to: customer(to),
        code: format!("code-{generation}"),
        generation,
        purchase: S::Confirmed,
    }
}

#[test]
fn an_issued_ticket_is_its_holders_with_generation_0() {
    let ticket = given::<Ticket>(&issued()).0.unwrap();
    assert_eq!(ticket.holder, customer("alice"));
    assert_eq!((ticket.generation, ticket.code.as_str()), (0, "code-0"));
    assert_eq!(ticket.admission, None);
    let again = TicketCommand::Issue {
        ticket_id: ticket.ticket_id,
        reservation_id: ticket.reservation_id,
        show_id: ticket.show_id,
        section: ticket.section.clone(),
        holder: ticket.holder.clone(),
        code: "other".into(),
    };
    assert_eq!(
        when(&issued(), again),
        Err(DomainError::TicketAlreadyIssued)
    );
}

#[test]
fn a_ticket_admits_once_and_then_says_when_and_where() {
    let events = then(issued(), admit(scan(0, "north"), S::Confirmed));
    assert!(
        matches!(events.last(), Some(TicketEvent::TicketAdmitted(a)) if a.gate.as_deref() == Some("north"))
    );
    assert_eq!(
        when(&events, admit(scan(5, "south"), S::Confirmed)),
        Err(DomainError::TicketAlreadyAdmitted {
            scanned_at: t0(),
            gate: Some("north".into()),
        })
    );
}

#[test]
fn the_same_scan_uploaded_again_records_nothing_new() {
    let events = then(issued(), admit(scan(0, "north"), S::Confirmed));
    assert_eq!(
        when(&events, admit(scan(0, "north"), S::Confirmed)),
        Ok(vec![])
    );
}

#[test]
fn an_earlier_scan_uploaded_later_becomes_the_admission() {
    let events = then(issued(), admit(scan(10, "online"), S::Confirmed));
    let events = then(events, admit(scan(3, "offline"), S::Confirmed));
    let Some(TicketEvent::TicketAdmissionBackdated(backdated)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(backdated.superseded_scanned_at, t0() + minutes(10));
    assert_eq!(backdated.superseded_gate.as_deref(), Some("online"));
    let admission = given::<Ticket>(&events).0.unwrap().admission.unwrap();
    assert_eq!(admission.scanned_at, t0() + minutes(3));
    assert_eq!(admission.gate.as_deref(), Some("offline"));
    // Later scans are duplicates of the earliest.
    assert_eq!(
        when(&events, admit(scan(10, "online"), S::Confirmed)),
        Err(DomainError::TicketAlreadyAdmitted {
            scanned_at: t0() + minutes(3),
            gate: Some("offline".into()),
        })
    );
}

#[test]
fn a_refunded_or_cancelled_purchase_revokes_its_tickets() {
    for (status, revocation) in [
        (S::Refunded, Revocation::Refunded),
        (S::Cancelled, Revocation::Cancelled),
    ] {
        assert_eq!(
            when(&issued(), admit(scan(0, "north"), status)),
            Err(DomainError::TicketRevoked(revocation))
        );
        assert_eq!(
            when(
                &issued(),
                TicketCommand::Transfer {
                    by: customer("alice"),
                    to: customer("bob"),
                    code: "code-1".into(),
                    generation: 1,
                    purchase: status,
                }
            ),
            Err(DomainError::TicketRevoked(revocation))
        );
    }
}

#[test]
fn a_transfer_moves_the_ticket_and_revokes_the_old_code() {
    let events = then(issued(), transfer("bob", 1));
    let ticket = given::<Ticket>(&events).0.unwrap();
    assert_eq!(ticket.holder, customer("bob"));
    assert_eq!(ticket.previous_holders, vec![customer("alice")]);
    assert_eq!((ticket.generation, ticket.code.as_str()), (1, "code-1"));
    assert_eq!(
        when(&events, admit(scan(0, "north"), S::Confirmed)),
        Err(DomainError::TicketRevoked(Revocation::Transferred))
    );
    let new_code = Scan {
        generation: 1,
        ..scan(0, "north")
    };
    assert!(when(&events, admit(new_code, S::Confirmed)).is_ok());
    // Only the holder transfers: alice no longer is.
    assert_eq!(
        when(&events, transfer("carol", 2)),
        Err(DomainError::NotTicketHolder)
    );
}

#[test]
fn a_transfer_is_refused_once_used_to_oneself_or_with_a_stale_generation() {
    let admitted = then(issued(), admit(scan(0, "north"), S::Confirmed));
    assert!(matches!(
        when(&admitted, transfer("bob", 1)),
        Err(DomainError::TicketAlreadyAdmitted { .. })
    ));
    assert_eq!(
        when(&issued(), transfer("alice", 1)),
        Err(DomainError::TransferToHolder)
    );
    assert_eq!(
        when(&issued(), transfer("bob", 3)),
        Err(DomainError::StaleTicketGeneration)
    );
}

#[test]
fn nothing_happens_to_a_ticket_never_issued() {
    assert_eq!(
        when(&[], admit(scan(0, "north"), S::Confirmed)),
        Err(DomainError::TicketNotFound)
    );
}

#[test]
fn a_gate_name_is_kept_short() {
    let long = Scan {
        gate: Some("g".repeat(500)),
        ..scan(0, "x")
    };
    let events = when(&issued(), admit(long, S::Confirmed)).unwrap();
    let TicketEvent::TicketAdmitted(admitted) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(admitted.gate.as_ref().map(String::len), Some(MAX_GATE_LEN));
}
