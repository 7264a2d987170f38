//! The projector's suite, run on SQLite and on PostgreSQL alike (a fresh database per
//! test), and with feature `dynamodb` on DynamoDB read models too: real purchases
//! through the command layer, then projected.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that a test whose server
//! (PostgreSQL, DynamoDB) does not answer is reported as skipped (ignored) by name
//! when `CI` is not set ([`ticketing_store::testing::postgres_trial`],
//! [`ticketing_read_models::testing::dynamodb::dynamodb_trial`]); with `CI` set it
//! runs, and fails without its server. A new test is listed in `on_both_backends!`,
//! another test function in `main`'s `trials!` (or its module's `trials()`).

#[cfg(feature = "dynamodb")]
mod dynamodb;
mod properties;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use ticketing_app::Clock;
use ticketing_domain::{Money, ReservationStatus};
use ticketing_projector::{DeadLetterVerdict, ProjectionError, Projector};
use ticketing_read_models::testing::FaultyReadModels;
use ticketing_read_models::{BatchWrite, DeadLetter, ReadModelError, ShowSales};
use ticketing_store::{EventMetadata, ExpectedVersion, NewEvent, RecordedEvent, StreamAppend};
use uuid::Uuid;

use support::{a_seat_an_hour, busy_day, on_both_backends, spread_over_hours, Env};

fn main() {
    let mut trials = backend_trials();
    trials.extend(properties::trials());
    #[cfg(feature = "dynamodb")]
    trials.extend(ticketing_store::trials![
        dynamodb::dynamodb_trial =>
            a_rebuild_into_dynamodb_equals_a_rebuild_into_the_sql_store,
            a_stream_too_large_for_one_dynamodb_transaction_is_refused_whole,
    ]);
    ticketing_store::testing::run_trials(trials);
}

on_both_backends!(
    read_models_say_what_the_command_layer_says,
    duplicates_and_reordering_give_the_clean_rebuild,
    undecodable_events_are_dead_lettered_and_the_rest_is_applied,
    a_batch_that_starts_late_in_a_stream_fills_the_gap_from_the_store,
    catch_up_continues_from_the_rebuild_checkpoint,
    customer_history_pages_newest_first,
    tickets_at_the_door_revocations_and_holders_say_what_the_tickets_say,
    a_rebuild_replays_the_dead_letters_the_current_code_decodes,
    a_write_from_a_stale_applied_version_is_a_conflict_and_changes_nothing,
    a_stream_selling_in_more_hours_than_one_write_holds_is_applied_whole,
    a_batch_written_in_parts_that_fails_between_them_is_finished_by_applying_it_again,
);

/// 120 hourly buckets in one stream and one batch: more than one DynamoDB
/// transaction holds (ADR 11), so the projector writes that batch in parts. The
/// result is the one of small batches.
async fn a_stream_selling_in_more_hours_than_one_write_holds_is_applied_whole(env: Env) {
    let show_id = a_seat_an_hour(&env, 120).await;
    let mut events = env.all_events().await;
    spread_over_hours(&mut events);

    let in_small_batches = env
        .project(events.chunks(7).map(<[RecordedEvent]>::to_vec).collect())
        .await;
    let in_one_batch = env.project(vec![events]).await;
    assert_eq!(in_one_batch, in_small_batches);

    let sales = env.read_models.show_sales(show_id).await.unwrap().unwrap();
    assert_eq!(sales.by_hour.len(), 120, "a sale in each of 120 hours");
    assert_eq!(sales.total.tickets_sold, 120);
    assert_eq!(sales.total.gross_revenue.amount_minor, 120 * 2_000);
}

/// A batch written in parts whose second part fails: what the first wrote stays,
/// and applying the batch again finishes it, with the result of one write.
async fn a_batch_written_in_parts_that_fails_between_them_is_finished_by_applying_it_again(
    env: Env,
) {
    a_seat_an_hour(&env, 30).await;
    let mut events = env.all_events().await;
    spread_over_hours(&mut events);
    let whole = env.project(vec![events.clone()]).await;

    env.read_models.clear().await.unwrap();
    let faulty = Arc::new(
        FaultyReadModels::new(env.read_models.clone())
            .with_max_hours_per_stream(Some(10))
            .failing_when(|number, _| number == 1),
    );
    let projector = Projector::new(env.store.clone(), faulty.clone());
    let prepared = projector.prepare(events.clone(), Vec::new()).await.unwrap();
    assert!(
        prepared.write_count() >= 3,
        "a section selling in 30 hours, 10 hours a write: {} writes",
        prepared.write_count()
    );
    let error = projector.write_prepared(&prepared).await.unwrap_err();
    assert!(
        matches!(
            error,
            ProjectionError::ReadModels(ReadModelError::ServiceUnavailable(_))
        ),
        "{error:?}"
    );
    assert_eq!(
        faulty.writes(),
        2,
        "the parts after the failed one are not tried"
    );
    let half_written = env.read_models.dump().await.unwrap();
    assert_ne!(half_written, whole);
    assert!(!half_written.applied.is_empty(), "the first part stays");

    projector.apply_batch(events).await.unwrap();
    assert_eq!(env.read_models.dump().await.unwrap(), whole);
}

async fn read_models_say_what_the_command_layer_says(env: Env) {
    let day = busy_day(&env).await;
    env.rebuilt().await;
    let now = env.clock.now();

    let mut expected = env.app.availability(day.show_id).await.unwrap();
    expected.sort_by(|a, b| a.section.as_str().cmp(b.section.as_str()));
    let projected = env
        .read_models
        .section_availability(day.show_id, now)
        .await
        .unwrap();
    assert_eq!(projected.len(), expected.len());
    for (p, e) in projected.iter().zip(&expected) {
        assert_eq!(
            (
                &p.section,
                p.capacity,
                p.held,
                p.sold,
                p.available,
                p.unit_price
            ),
            (
                &e.section,
                e.capacity,
                e.held,
                e.sold,
                e.available,
                e.unit_price
            )
        );
    }

    let sales = env.app.sales(day.show_id).await.unwrap();
    let ShowSales {
        total, by_section, ..
    } = env
        .read_models
        .show_sales(day.show_id)
        .await
        .unwrap()
        .expect("the show has sales figures");
    assert_eq!(total.tickets_sold, i64::from(sales.tickets_sold));
    assert_eq!(total.net_revenue, sales.revenue);
    let by_name: BTreeMap<_, _> = by_section
        .iter()
        .map(|(name, figures)| (name.as_str().to_owned(), figures))
        .collect();
    for section in &sales.by_section {
        let figures = by_name[section.section.as_str()];
        assert_eq!(figures.tickets_sold, i64::from(section.tickets_sold));
        assert_eq!(figures.net_revenue, section.revenue);
    }
    // Floor: 2 + 3 sold at 45.00; Balcony: 1 and 2 sold at 30.00, both refunded.
    let eur = |amount_minor| Money {
        amount_minor,
        currency: sales.revenue.currency,
    };
    assert_eq!(total.gross_revenue, eur(5 * 4_500 + 3 * 3_000));
    assert_eq!((total.refunds_count, total.refunds_amount), (2, eur(9_000)));

    for customer in &day.customers {
        let expected = env.app.customer_reservations(customer).await.unwrap();
        let page = env
            .read_models
            .customer_reservations(customer, 100, None)
            .await
            .unwrap();
        assert!(page.next.is_none());
        let projected: Vec<_> = page
            .reservations
            .iter()
            .map(|r| (r.reservation_id, r.state, r.quantity, r.amount, r.placed_at))
            .collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|r| {
                (
                    r.reservation_id,
                    r.status,
                    r.quantity,
                    r.amount,
                    r.placed_at,
                )
            })
            .collect();
        assert_eq!(projected, expected, "history of {customer}");
    }
    let first = env
        .read_models
        .customer_reservations(&day.customers[0], 10, None)
        .await
        .unwrap();
    let states: Vec<_> = first.reservations.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [ReservationStatus::Refunded, ReservationStatus::Confirmed]
    );
    assert!(first.reservations[0].paid_at.is_some());
    assert!(first.reservations[0].refunded_at.is_some());
}

async fn duplicates_and_reordering_give_the_clean_rebuild(env: Env) {
    busy_day(&env).await;
    let clean = env.rebuilt().await;
    let events = env.all_events().await;

    // Everything twice, in one batch and then again.
    let twice = env
        .project(vec![
            [events.clone(), events.clone()].concat(),
            events.clone(),
        ])
        .await;
    assert_eq!(twice, clean);

    // Overlapping windows.
    let windows: Vec<Vec<RecordedEvent>> = (0..events.len())
        .step_by(4)
        .map(|start| events[start..(start + 7).min(events.len())].to_vec())
        .collect();
    assert_eq!(env.project(windows).await, clean);

    // Newest first, in batches of five: most batches start beyond what is applied.
    let mut reversed = events.clone();
    reversed.reverse();
    let batches = reversed.chunks(5).map(<[_]>::to_vec).collect();
    assert_eq!(env.project(batches).await, clean);
}

fn raw(event_type: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data,
        metadata: EventMetadata::default(),
    }
}

async fn undecodable_events_are_dead_lettered_and_the_rest_is_applied(env: Env) {
    busy_day(&env).await;
    let before = env.rebuilt().await;

    let broken = format!("reservation-{}", Uuid::new_v4());
    env.store
        .append(
            vec![
                StreamAppend {
                    stream_id: "mystery-1".into(),
                    expected_version: ExpectedVersion::NoStream,
                    events: vec![raw("SeatsTeleported", json!({ "seats": 3 }))],
                },
                StreamAppend {
                    stream_id: broken.clone(),
                    expected_version: ExpectedVersion::NoStream,
                    events: vec![
                        raw("ReservationPlaced", json!({ "nonsense": true })),
                        raw("ReservationCancelled", json!({ "also": "nonsense" })),
                    ],
                },
            ],
            None,
        )
        .await
        .unwrap();
    let events = env.all_events().await;
    let new: Vec<RecordedEvent> = events[events.len() - 3..].to_vec();

    // Applied live, twice over, after the rest.
    let outcome = env
        .projector
        .apply_batch([new.clone(), new].concat())
        .await
        .unwrap();
    assert_eq!(
        (outcome.applied, outcome.duplicates, outcome.dead_lettered),
        (3, 3, 3)
    );

    let after = env.read_models.dump().await.unwrap();
    assert_eq!(after.sections, before.sections);
    assert_eq!(after.reservations, before.reservations);
    assert_eq!(after.hours, before.hours);
    let letters: Vec<_> = after
        .dead_letters
        .iter()
        .map(|l| (l.stream_id.as_str(), l.version, l.event_type.as_str()))
        .collect();
    let mut expected = vec![
        (broken.as_str(), 1, "ReservationPlaced"),
        (broken.as_str(), 2, "ReservationCancelled"),
        ("mystery-1", 1, "SeatsTeleported"),
    ];
    expected.sort();
    assert_eq!(letters, expected);
    let mystery = after
        .dead_letters
        .iter()
        .find(|l| l.stream_id == "mystery-1")
        .unwrap();
    assert!(
        mystery.error.contains("unknown event type"),
        "{}",
        mystery.error
    );
    let applied: BTreeMap<_, _> = after.applied.iter().cloned().collect();
    assert_eq!((applied["mystery-1"], applied[&broken]), (1, 2));

    // A rebuild records the same letters and the same rows.
    assert_eq!(env.rebuilt().await, after);
    let stored = env.read_models.dead_letters(10).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].letter.payload, json!({ "seats": 3 }));
}

async fn a_batch_that_starts_late_in_a_stream_fills_the_gap_from_the_store(env: Env) {
    busy_day(&env).await;
    let clean = env.rebuilt().await;
    let events = env.all_events().await;

    // Only the last event of every stream.
    let mut last: BTreeMap<String, RecordedEvent> = BTreeMap::new();
    for event in &events {
        last.insert(event.stream_id.clone(), event.clone());
    }
    env.read_models.clear().await.unwrap();
    let outcome = env
        .projector
        .apply_batch(last.values().cloned().collect())
        .await
        .unwrap();
    assert_eq!(outcome.gap_filled, events.len() - last.len());
    assert_eq!(outcome.applied, events.len());
    assert_eq!(env.read_models.dump().await.unwrap(), clean);
}

async fn catch_up_continues_from_the_rebuild_checkpoint(env: Env) {
    let day = busy_day(&env).await;
    env.all_events().await;
    let mut reports = Vec::new();
    let rebuilt = env
        .projector
        .rebuild(5, |progress| reports.push(progress))
        .await
        .unwrap();
    assert!(reports.len() > 1);
    assert_eq!(reports.last(), Some(&rebuilt));
    let checkpoint = env
        .read_models
        .checkpoint(ticketing_projector::CHECKPOINT)
        .await
        .unwrap();
    assert_eq!(checkpoint, Some(rebuilt.position));

    // More purchases after the rebuild.
    env.app
        .hold_seats(
            &support::ctx("customer-9"),
            ticketing_app::HoldSeats {
                show_id: day.show_id,
                section: support::section("Floor"),
                customer_id: support::customer(9),
                quantity: ticketing_domain::Quantity::new(2).unwrap(),
            },
        )
        .await
        .unwrap();
    let events = env.all_events().await;
    let caught_up = env.projector.catch_up(5, |_| {}).await.unwrap();
    assert_eq!(caught_up.events, 2, "the hold and its reservation");
    assert_eq!(caught_up.position, events.last().unwrap().global_position);
    let live = env.read_models.dump().await.unwrap();
    assert_eq!(live, env.rebuilt().await);
}

/// Admissions per section, the revocation list and each holder's tickets agree with
/// the tickets as the command layer loads them.
async fn tickets_at_the_door_revocations_and_holders_say_what_the_tickets_say(env: Env) {
    let day = busy_day(&env).await;
    env.rebuilt().await;

    let admissions = env.read_models.show_admissions(day.show_id).await.unwrap();
    let figures: Vec<_> = admissions
        .iter()
        .map(|s| {
            (
                s.section.as_str(),
                s.issued,
                s.admitted,
                s.revoked,
                s.remaining,
            )
        })
        .collect();
    // Balcony: 1 ticket cancelled after paying, 2 refunded. Floor: the first
    // purchase's 2 (one let in) and a later purchase's 3.
    assert_eq!(figures, [("Balcony", 3, 0, 3, 0), ("Floor", 5, 1, 0, 4)]);

    let revoked = env
        .read_models
        .revoked_tickets(day.show_id, None)
        .await
        .unwrap();
    let mut expected: Vec<_> = day
        .cancelled
        .iter()
        .chain(&day.refunded)
        .map(|&id| (id, None))
        .chain([(day.transferred, Some(1))])
        .collect();
    expected.sort_by_key(|(id, _)| id.0);
    let mut listed: Vec<_> = revoked
        .iter()
        .map(|r| (r.ticket_id, r.valid_generation))
        .collect();
    listed.sort_by_key(|(id, _)| id.0);
    assert_eq!(listed, expected);
    for entry in &revoked {
        let ticket = env.app.ticket(entry.ticket_id).await.unwrap();
        match entry.valid_generation {
            Some(generation) => assert_eq!(ticket.generation, generation),
            None => assert_eq!(
                ticket.state,
                ticketing_app::tickets::TicketState::Revoked {
                    reason: entry.reason
                }
            ),
        }
    }
    assert!(revoked
        .windows(2)
        .all(|w| w[0].revoked_at <= w[1].revoked_at));
    // Only what was revoked after `since`: the transfer came last.
    let since = revoked[revoked.len() - 2].revoked_at;
    let later = env
        .read_models
        .revoked_tickets(day.show_id, Some(since))
        .await
        .unwrap();
    assert_eq!(later, revoked[revoked.len() - 1..]);
    assert!(env
        .read_models
        .revoked_tickets(ticketing_domain::ShowId(Uuid::new_v4()), None)
        .await
        .unwrap()
        .is_empty());

    // Customer-1 keeps one of the first purchase's tickets and the revoked one of
    // the purchase it cancelled; customer-8 holds the one it was given.
    for (holder, count) in [(0, 2), (7, 1), (5, 3)] {
        let customer = &day.customers[holder];
        let page = env
            .read_models
            .holder_tickets(customer, 10, None)
            .await
            .unwrap();
        assert_eq!(page.tickets.len(), count, "tickets of {customer}");
        assert!(page.next.is_none());
        for held in &page.tickets {
            let ticket = env.app.ticket(held.ticket.ticket_id).await.unwrap();
            assert_eq!(&ticket.holder, customer);
            assert_eq!(held.ticket.generation, ticket.generation);
            let state = match (held.revoked, held.ticket.admitted_at) {
                (Some(reason), _) => ticketing_app::tickets::TicketState::Revoked { reason },
                (None, Some(scanned_at)) => ticketing_app::tickets::TicketState::Admitted {
                    scanned_at,
                    gate: held.ticket.gate.clone(),
                },
                (None, None) => ticketing_app::tickets::TicketState::Valid,
            };
            assert_eq!(state, ticket.state);
        }
        assert!(page
            .tickets
            .windows(2)
            .all(|w| w[0].ticket.held_since >= w[1].ticket.held_since));
    }
    let received = env
        .read_models
        .holder_tickets(&day.customers[7], 10, None)
        .await
        .unwrap();
    assert_eq!(received.tickets[0].ticket.ticket_id, day.transferred);
    let kept = env
        .read_models
        .holder_tickets(&day.customers[0], 10, None)
        .await
        .unwrap();
    let let_in = kept
        .tickets
        .iter()
        .find(|t| t.ticket.ticket_id == day.admitted)
        .expect("customer-1 keeps the ticket it was let in with");
    assert!(let_in.ticket.admitted_at.is_some());
    assert_eq!(let_in.ticket.gate.as_deref(), Some("A"));

    // A page at a time, newest first.
    let all = env
        .read_models
        .holder_tickets(&day.customers[5], 10, None)
        .await
        .unwrap()
        .tickets;
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = env
            .read_models
            .holder_tickets(&day.customers[5], 2, cursor)
            .await
            .unwrap();
        paged.extend(page.tickets);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all);
}

async fn customer_history_pages_newest_first(env: Env) {
    let day = busy_day(&env).await;
    env.rebuilt().await;
    let customer = &day.customers[0];
    let all = env
        .read_models
        .customer_reservations(customer, 10, None)
        .await
        .unwrap()
        .reservations;
    assert_eq!(all.len(), 2);
    let first = env
        .read_models
        .customer_reservations(customer, 1, None)
        .await
        .unwrap();
    assert_eq!(first.reservations, all[..1]);
    let second = env
        .read_models
        .customer_reservations(customer, 1, first.next)
        .await
        .unwrap();
    assert_eq!(second.reservations, all[1..]);
    let third = env
        .read_models
        .customer_reservations(customer, 1, second.next)
        .await
        .unwrap();
    assert!(third.reservations.is_empty());
    assert!(third.next.is_none());
}

async fn a_rebuild_replays_the_dead_letters_the_current_code_decodes(env: Env) {
    busy_day(&env).await;
    let clean = env.rebuilt().await;
    let events = env.all_events().await;
    // An event an older projector could not decode (before an upcaster, say): it is
    // in the store as it always was, and in the dead letters.
    let fixed = events
        .iter()
        .find(|e| e.stream_id.starts_with("inventory-") && e.version == 2)
        .expect("a section with a second event")
        .clone();
    let as_dead = |stream_id: &str, version, event_type: &str| DeadLetter {
        stream_id: stream_id.to_owned(),
        version,
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: json!({}),
        error: "unknown event type (an older projector)".to_owned(),
    };
    env.read_models
        .write(&BatchWrite {
            dead_letters: vec![
                as_dead(&fixed.stream_id, fixed.version, &fixed.event_type),
                as_dead("bus:ticketing-show-events/0@7", 0, ""),
            ],
            ..BatchWrite::default()
        })
        .await
        .unwrap();
    // And one that no code decodes.
    env.store
        .append(
            vec![StreamAppend {
                stream_id: "mystery-2".into(),
                expected_version: ExpectedVersion::NoStream,
                events: vec![raw("SeatsTeleported", json!({ "seats": 1 }))],
            }],
            None,
        )
        .await
        .unwrap();
    let mystery = env.all_events().await.pop().unwrap();
    env.projector.apply_batch(vec![mystery]).await.unwrap();

    let checks = env.projector.check_dead_letters(100).await.unwrap();
    let verdicts: BTreeMap<(String, u64), DeadLetterVerdict> = checks
        .into_iter()
        .map(|c| ((c.stream_id, c.version), c.verdict))
        .collect();
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    assert_eq!(
        verdicts[&(fixed.stream_id.clone(), fixed.version)],
        DeadLetterVerdict::Replayable
    );
    assert_eq!(
        verdicts[&("bus:ticketing-show-events/0@7".to_owned(), 0)],
        DeadLetterVerdict::NotInStore
    );
    assert!(
        matches!(
            &verdicts[&("mystery-2".to_owned(), 1)],
            DeadLetterVerdict::StillFailing { error } if error.contains("unknown event type")
        ),
        "{verdicts:?}"
    );
    assert_eq!(
        env.read_models.dead_letters(100).await.unwrap().len(),
        3,
        "checking changes nothing"
    );

    let replayed = env.rebuilt().await;
    let left: Vec<_> = replayed
        .dead_letters
        .iter()
        .map(|l| (l.stream_id.as_str(), l.version))
        .collect();
    assert_eq!(left, vec![("mystery-2", 1)]);
    assert_eq!(replayed.sections, clean.sections);
    assert_eq!(replayed.reservations, clean.reservations);
    assert_eq!(replayed.hours, clean.hours);
}

async fn a_write_from_a_stale_applied_version_is_a_conflict_and_changes_nothing(env: Env) {
    busy_day(&env).await;
    let before = env.rebuilt().await;
    let mut section = before.sections[0].clone();
    let (stream, version) = before
        .applied
        .iter()
        .find(|(stream, _)| *stream == section.stream_id)
        .cloned()
        .unwrap();
    section.sold += 1;
    for stale in [0, version - 1] {
        let write = BatchWrite {
            sections: vec![section.clone()],
            applied: vec![(stream.clone(), stale, version + 1)],
            ..BatchWrite::default()
        };
        let error = env.read_models.write(&write).await.unwrap_err();
        assert!(
            matches!(&error, ReadModelError::Conflict { stream_id } if *stream_id == stream),
            "{error}"
        );
    }
    assert_eq!(env.read_models.dump().await.unwrap(), before);
}

/// The same events rebuilt into the SQL read models and into DynamoDB give the same
/// rows, applied versions and dead letters.
#[cfg(feature = "dynamodb")]
async fn a_rebuild_into_dynamodb_equals_a_rebuild_into_the_sql_store() {
    dynamodb::with_dynamodb("a_rebuild_into_dynamodb", |dynamo| async move {
        ticketing_store::testing::with_sqlite(|store| async move {
            let env = Env::sqlite(store);
            busy_day(&env).await;
            env.store
                .append(
                    vec![StreamAppend {
                        stream_id: "mystery-1".into(),
                        expected_version: ExpectedVersion::NoStream,
                        events: vec![raw("SeatsTeleported", json!({ "seats": 3 }))],
                    }],
                    None,
                )
                .await
                .unwrap();
            let sql = env.rebuilt().await;
            assert_eq!(sql.dead_letters.len(), 1);

            let dynamo: std::sync::Arc<dyn ticketing_read_models::ReadModelStore> =
                std::sync::Arc::new(dynamo);
            let projector = ticketing_projector::Projector::new(env.store.clone(), dynamo.clone());
            let progress = projector.rebuild(7, |_| {}).await.unwrap();
            assert!(progress.batches > 1);
            assert_eq!(dynamo.dump().await.unwrap(), sql);
            assert_eq!(
                dynamo
                    .checkpoint(ticketing_projector::CHECKPOINT)
                    .await
                    .unwrap(),
                Some(progress.position)
            );
        })
        .await
    })
    .await;
}

/// A stream whose part of a batch needs more than one DynamoDB transaction holds is
/// refused with the limit named, and nothing of it is written.
#[cfg(feature = "dynamodb")]
async fn a_stream_too_large_for_one_dynamodb_transaction_is_refused_whole() {
    dynamodb::with_dynamodb("a_stream_too_large", |dynamo| async move {
        ticketing_store::testing::with_sqlite(|store| async move {
            let env = Env::dynamodb(store, dynamo);
            busy_day(&env).await;
            let before = env.rebuilt().await;
            let mut section = before.sections[0].clone();
            section.stream_id = "inventory-elsewhere-Floor".into();
            let hour = |n: i64| {
                let key = ticketing_read_models::HourKey {
                    show_id: section.show_id.0.to_string(),
                    section: section.section.as_str().to_owned(),
                    hour: env.clock.now() + chrono::TimeDelta::hours(n),
                };
                let delta = ticketing_read_models::model::HourDelta {
                    currency: section.unit_price.currency,
                    totals: ticketing_read_models::SalesTotals {
                        tickets_sold: 1,
                        ..Default::default()
                    },
                };
                (key, delta)
            };
            let write = BatchWrite {
                sections: vec![section.clone()],
                hours: (0..120).map(hour).collect(),
                applied: vec![(section.stream_id.clone(), 0, 120)],
                ..BatchWrite::default()
            };
            let error = env.read_models.write(&write).await.unwrap_err();
            assert!(
                matches!(
                    &error,
                    ReadModelError::TooLarge {
                        items: 122,
                        limit: 100,
                        ..
                    }
                ),
                "{error}"
            );
            assert_eq!(env.read_models.dump().await.unwrap(), before);
        })
        .await
    })
    .await;
}
