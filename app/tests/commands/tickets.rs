use std::sync::Arc;

use chrono::TimeDelta;
use ticketing_app::tickets::{CheckIn, ScanScope, TicketState, TicketView};
use ticketing_app::{AppError, CommandContext, SweepLimits, Ticketing};
use ticketing_domain::*;
use ticketing_store::EventStore;

use crate::support::*;

/// A confirmed purchase of `quantity` seats by customer 1: (show id, reservation id).
async fn purchase(h: &Harness, quantity: u32) -> (ShowId, ReservationId) {
    let show_id = show_on_sale(h, 20).await;
    let held = hold(h, show_id, 1, quantity).await;
    pay_confirmed(h, held.reservation_id).await;
    (show_id, held.reservation_id)
}

async fn tickets_of(app: &Ticketing, reservation_id: ReservationId) -> Vec<TicketView> {
    app.reservation_tickets(&customer_ctx(1), reservation_id)
        .await
        .unwrap()
        .1
}

fn scan(code: &str, gate: &str) -> CheckIn {
    CheckIn {
        code: code.to_owned(),
        show_id: None,
        gate: Some(gate.to_owned()),
        scanned_at: None,
    }
}

pub async fn a_confirmed_purchase_has_one_ticket_per_seat_and_a_retry_issues_none(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 20).await;
    let held = hold(&h, show_id, 1, 3).await;
    let ctx = customer_ctx(1).with_idempotency_key("pay-once");
    h.app
        .pay(&ctx, held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.tickets.len(), 3, "issued with the confirmation");
    let tickets = tickets_of(&h.app, held.reservation_id).await;
    assert_eq!(tickets.len(), 3);
    for ticket in &tickets {
        assert_eq!(ticket.state, TicketState::Valid);
        let claims = ticket_keys()
            .verify(ticket.code.as_deref().unwrap())
            .unwrap();
        assert_eq!(
            (claims.ticket_id, claims.show_id),
            (ticket.ticket_id, show_id)
        );
    }
    let before = h.store.event_count().await.unwrap();
    // A retried payment answers as the first one and issues nothing new.
    h.app
        .pay(&ctx, held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert_eq!(h.store.event_count().await.unwrap(), before);
    assert_eq!(tickets_of(&h.app, held.reservation_id).await, tickets);
}

pub async fn twenty_gates_scanning_one_ticket_at_once_admit_it_exactly_once(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let (_, reservation_id) = purchase(&h, 1).await;
    let code = tickets_of(&h.app, reservation_id).await[0]
        .code
        .clone()
        .unwrap();
    let gates = 20;
    let start = Arc::new(tokio::sync::Barrier::new(gates));
    let scans: Vec<_> = (0..gates)
        .map(|gate| {
            let (app, start, code) = (h.app.clone(), start.clone(), code.clone());
            tokio::spawn(async move {
                start.wait().await;
                let ctx = CommandContext::new(format!("gate-{gate}"));
                app.check_in(&ctx, &ScanScope::AnyShow, scan(&code, &format!("G{gate}")))
                    .await
            })
        })
        .collect();
    let (mut admitted, mut already) = (Vec::new(), 0);
    for answer in scans {
        match answer.await.unwrap() {
            Ok(admission) => admitted.push(admission),
            Err(AppError::Domain(DomainError::TicketAlreadyAdmitted { .. })) => already += 1,
            Err(other) => panic!("admitted or already admitted, got {other:?}"),
        }
    }
    assert_eq!((admitted.len(), already), (1, 19));
    let ticket = &tickets_of(&h.app, reservation_id).await[0];
    assert_eq!(
        ticket.state,
        TicketState::Admitted {
            scanned_at: admitted[0].scanned_at,
            gate: admitted[0].gate.clone(),
        }
    );
}

pub async fn a_purchase_confirmed_without_a_key_gets_its_tickets_when_first_listed(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store.clone());
    // The same store, served by a deployment that has no signing key yet.
    let keyless = Ticketing::new(
        store,
        h.provider.clone(),
        Arc::new(h.clock.clone()),
        Default::default(),
    );
    let show_id = show_on_sale(&h, 20).await;
    let held = hold(&h, show_id, 1, 2).await;
    keyless
        .pay(&customer_ctx(1), held.reservation_id, card("tok_visa"))
        .await
        .unwrap();
    assert!(h
        .app
        .reservation(held.reservation_id)
        .await
        .unwrap()
        .tickets
        .is_empty());
    let refused = keyless
        .reservation_tickets(&customer_ctx(1), held.reservation_id)
        .await;
    assert!(
        matches!(refused, Err(AppError::TicketsNotConfigured)),
        "{refused:?}"
    );

    let first = tickets_of(&h.app, held.reservation_id).await;
    assert_eq!(first.len(), 2);
    assert_eq!(
        tickets_of(&h.app, held.reservation_id).await,
        first,
        "issued once"
    );
}

pub async fn a_payment_the_sweeper_settles_is_confirmed_with_its_tickets(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 10).await;
    let held = hold(&h, show_id, 1, 2).await;
    let lost = h
        .app
        .pay(
            &customer_ctx(1),
            held.reservation_id,
            card("tok_timeoutAfterCapture"),
        )
        .await;
    assert!(
        matches!(lost, Err(AppError::PaymentProvider(_))),
        "{lost:?}"
    );
    h.clock.advance(TimeDelta::minutes(5));
    let report = h
        .app
        .sweep(&CommandContext::system(), SweepLimits::default())
        .await
        .unwrap();
    assert_eq!(report.payments_confirmed, 1, "{report:?}");
    let details = h.app.reservation(held.reservation_id).await.unwrap();
    assert_eq!(details.status, ReservationStatus::Confirmed);
    assert_eq!(details.tickets.len(), 2);
}

pub async fn a_cancelled_show_revokes_its_tickets(store: Arc<dyn EventStore>) {
    let h = harness(store);
    let (show_id, reservation_id) = purchase(&h, 1).await;
    let code = tickets_of(&h.app, reservation_id).await[0]
        .code
        .clone()
        .unwrap();
    h.app
        .cancel_show(&organizer(), show_id, "storm".into())
        .await
        .unwrap();
    let refused = h
        .app
        .check_in(
            &CommandContext::new("gate"),
            &ScanScope::AnyShow,
            scan(&code, "A"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Domain(DomainError::TicketRevoked(
                Revocation::Refunded
            )))
        ),
        "{refused:?}"
    );
    assert_eq!(
        tickets_of(&h.app, reservation_id).await[0].state,
        TicketState::Revoked {
            reason: Revocation::Refunded
        }
    );
}
