//! A command layer on a fresh database, the projector beside it, and a day of
//! purchases to project.

use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use ticketing_app::payments::{CardToken, SimulatedGateway};
use ticketing_app::{
    Clock, CommandContext, HoldSeats, ManualClock, PaymentResult, Settings, Ticketing,
};
use ticketing_domain::schema::EventPayload;
use ticketing_domain::*;
use ticketing_projector::Projector;
use ticketing_read_models::postgres::PostgresReadModels;
use ticketing_read_models::sqlite::SqliteReadModels;
use ticketing_read_models::{ReadModelDump, ReadModelStore};
use ticketing_store::postgres::PostgresStore;
use ticketing_store::sqlite::SqliteStore;
use ticketing_store::testing::read_all_settled;
use ticketing_store::{EventStore, GlobalPosition, RecordedEvent};

pub struct Env {
    pub app: Ticketing,
    pub clock: ManualClock,
    pub store: Arc<dyn EventStore>,
    pub read_models: Arc<dyn ReadModelStore>,
    pub projector: Projector,
}

impl Env {
    fn new(store: Arc<dyn EventStore>, read_models: Arc<dyn ReadModelStore>) -> Self {
        let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
        let app = Ticketing::new(
            store.clone(),
            Arc::new(SimulatedGateway::new()),
            Arc::new(clock.clone()),
            Settings::default(),
        )
        .with_ticket_keys(ticket_keys());
        let projector = Projector::new(store.clone(), read_models.clone());
        Self {
            app,
            clock,
            store,
            read_models,
            projector,
        }
    }

    pub fn sqlite(store: SqliteStore) -> Self {
        let read_models = Arc::new(SqliteReadModels::new(store.pool().clone()));
        Self::new(Arc::new(store), read_models)
    }

    /// The events in SQLite, the read models in DynamoDB: as on AWS, where the
    /// events stay in the SQL store.
    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(
        store: SqliteStore,
        read_models: ticketing_read_models::dynamodb::DynamoDbReadModels,
    ) -> Self {
        Self::new(Arc::new(store), Arc::new(read_models))
    }

    pub fn postgres(store: PostgresStore) -> Self {
        let read_models = Arc::new(PostgresReadModels::new(store.pool().clone()));
        Self::new(Arc::new(store), read_models)
    }

    /// Every event of the store in the global order, once the server's horizon has
    /// passed all of them (another test's transaction may hold it back).
    pub async fn all_events(&self) -> Vec<RecordedEvent> {
        let types: Vec<&str> = ShowEvent::EVENT_TYPES
            .iter()
            .chain(InventoryEvent::EVENT_TYPES)
            .chain(ReservationEvent::EVENT_TYPES)
            .chain(PaymentEvent::EVENT_TYPES)
            .chain(ticketing_domain::ticket::TicketEvent::EVENT_TYPES)
            .chain(&["SeatsTeleported"])
            .copied()
            .collect();
        let heads = self.store.find_streams("", &types, 10_000).await.unwrap();
        let expected: u64 = heads.iter().map(|h| h.version).sum();
        let events = read_all_settled(
            self.store.as_ref(),
            GlobalPosition::START,
            100_000,
            usize::try_from(expected).unwrap(),
        )
        .await;
        assert_eq!(events.len() as u64, expected, "every event is visible");
        events
    }

    /// The read models of one clean rebuild.
    pub async fn rebuilt(&self) -> ReadModelDump {
        self.all_events().await;
        self.projector.rebuild(7, |_| {}).await.unwrap();
        self.read_models.dump().await.unwrap()
    }

    /// Empties the read models, then applies `batches` one after the other.
    pub async fn project(&self, batches: Vec<Vec<RecordedEvent>>) -> ReadModelDump {
        self.read_models.clear().await.unwrap();
        for batch in batches {
            self.projector.apply_batch(batch).await.unwrap();
        }
        self.read_models.dump().await.unwrap()
    }
}

/// Runs `test` on a fresh SQLite file, on a fresh PostgreSQL database and (feature
/// `dynamodb`) on DynamoDB tables of its own beside a fresh SQLite event store: a
/// module per test holding its trials `<test>::sqlite`, `<test>::postgres` (a
/// PostgreSQL trial) and `<test>::dynamodb` (a DynamoDB trial, whose event store is
/// SQLite), and `backend_trials()`, the trials of them all.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                pub async fn sqlite() {
                    ticketing_store::testing::with_sqlite(|store| async move {
                        super::$name($crate::support::Env::sqlite(store)).await
                    })
                    .await;
                }

                pub async fn postgres() {
                    ticketing_store::testing::with_postgres(stringify!($name), |store| async move {
                        super::$name($crate::support::Env::postgres(store)).await
                    })
                    .await;
                }

                #[cfg(feature = "dynamodb")]
                pub async fn dynamodb() {
                    $crate::dynamodb::with_dynamodb(stringify!($name), |read_models| async move {
                        ticketing_store::testing::with_sqlite(|store| async move {
                            super::$name($crate::support::Env::dynamodb(store, read_models)).await
                        })
                        .await
                    })
                    .await;
                }

                pub fn trials() -> Vec<ticketing_store::testing::Trial> {
                    #[allow(unused_mut)]
                    let mut trials = ticketing_store::trials![
                        ticketing_store::testing::async_trial => sqlite;
                        ticketing_store::testing::postgres_trial => postgres;
                    ];
                    #[cfg(feature = "dynamodb")]
                    trials.extend(ticketing_store::trials![
                        $crate::dynamodb::dynamodb_trial => dynamodb
                    ]);
                    trials
                }
            }
        )*

        /// The trials of every test of `on_both_backends!`, on every backend.
        fn backend_trials() -> Vec<ticketing_store::testing::Trial> {
            [$($name::trials()),*].into_iter().flatten().collect()
        }
    };
}
pub(crate) use on_both_backends;

pub fn ticket_keys() -> ticketing_app::TicketKeys {
    ticketing_app::TicketKeys::from_seeds(&[("test", [7; 32])]).unwrap()
}

pub fn ctx(who: &str) -> CommandContext {
    CommandContext::new(who)
}

pub fn customer(n: u32) -> CustomerId {
    CustomerId::parse(format!("customer-{n}")).unwrap()
}

pub fn section(name: &str) -> SectionName {
    SectionName::parse(name).unwrap()
}

fn eur(amount_minor: i64) -> Money {
    Money::unit_price(amount_minor, Currency::parse("EUR").unwrap()).unwrap()
}

fn card(token: &str) -> CardToken {
    CardToken::parse(token).unwrap()
}

/// Creates the show `plan` describes as organizer-1 and opens its sales.
async fn on_sale(env: &Env, organizer: &CommandContext, plan: ShowPlan) -> ShowId {
    let show_id = env
        .app
        .create_show(organizer, OrganizerId::parse("organizer-1").unwrap(), plan)
        .await
        .unwrap();
    env.app
        .change_sales(organizer, show_id, ShowCommand::OpenSales)
        .await
        .unwrap();
    show_id
}

/// What [`busy_day`] did.
pub struct Day {
    pub show_id: ShowId,
    pub customers: Vec<CustomerId>,
    /// The first purchase's two tickets: the first let in at gate A, the second
    /// transferred from customer-1 to customer-8.
    pub admitted: TicketId,
    pub transferred: TicketId,
    /// The tickets of the purchase customer-1 cancelled after paying, and of the
    /// one the organizer refunded.
    pub cancelled: Vec<TicketId>,
    pub refunded: Vec<TicketId>,
}

/// A show with two sections (the second split into three escrow buckets) and every way a purchase can end: paid, declined,
/// expired (recorded), expired (not yet recorded), cancelled while held, cancelled
/// after paying (refund), refunded by the organizer, and one still held.
pub async fn busy_day(env: &Env) -> Day {
    let plan = ShowPlan::new(
        "Summer Festival",
        "Main Arena",
        env.clock.now() + TimeDelta::days(30),
        vec![
            SectionSpec {
                name: section("Floor"),
                capacity: 10,
                unit_price: eur(4_500),
                buckets: 1,
            },
            SectionSpec {
                name: section("Balcony"),
                capacity: 20,
                unit_price: eur(3_000),
                // Split: the read models add the buckets up as the command layer does.
                buckets: 3,
            },
        ],
        10,
    )
    .unwrap();
    let organizer = ctx("organizer-1");
    let show_id = on_sale(env, &organizer, plan).await;

    let hold = |n: u32, name: &'static str, quantity: u32| {
        let app = &env.app;
        let clock = &env.clock;
        async move {
            // Each purchase a minute after the last: newest first is well defined.
            clock.advance(TimeDelta::minutes(1));
            app.hold_seats(
                &ctx(&format!("customer-{n}")),
                HoldSeats {
                    show_id,
                    section: section(name),
                    customer_id: customer(n),
                    quantity: Quantity::new(quantity).unwrap(),
                },
            )
            .await
            .unwrap()
        }
    };
    let pay = |n: u32, reservation_id: ReservationId, token: &'static str| {
        let app = &env.app;
        async move {
            app.pay(&ctx(&format!("customer-{n}")), reservation_id, card(token))
                .await
                .unwrap()
        }
    };

    // Paid.
    let paid = hold(1, "Floor", 2).await;
    assert!(matches!(
        pay(1, paid.reservation_id, "tok_visa").await,
        PaymentResult::Confirmed { .. }
    ));
    // Declined.
    let declined = hold(2, "Balcony", 3).await;
    assert!(matches!(
        pay(2, declined.reservation_id, "tok_chargeDeclined").await,
        PaymentResult::Declined { .. }
    ));
    // Expired, and the expiry recorded.
    let expired = hold(3, "Floor", 1).await;
    // Cancelled while held.
    let cancelled = hold(4, "Floor", 2).await;
    env.app
        .cancel(&ctx("customer-4"), cancelled.reservation_id)
        .await
        .unwrap();
    env.clock.advance(TimeDelta::minutes(11));
    env.app
        .expire(&ctx("sweeper"), expired.reservation_id)
        .await
        .unwrap();
    // Paid, then cancelled by the customer: refunded, seats back on sale.
    let regretted = hold(1, "Balcony", 1).await;
    pay(1, regretted.reservation_id, "tok_visa").await;
    env.app
        .cancel(&ctx("customer-1"), regretted.reservation_id)
        .await
        .unwrap();
    // Paid, then refunded by the organizer.
    let refunded = hold(5, "Balcony", 2).await;
    let PaymentResult::Confirmed { payment_id, .. } =
        pay(5, refunded.reservation_id, "tok_visa").await
    else {
        panic!("tok_visa pays");
    };
    env.app
        .refund_payment(&organizer, payment_id, RefundReason::RefundedByOrganizer)
        .await
        .unwrap();
    // Expired, not recorded: an hour later it no longer counts.
    hold(7, "Balcony", 4).await;
    env.clock.advance(TimeDelta::hours(1));
    // Paid in a later hour.
    let late = hold(6, "Floor", 3).await;
    pay(6, late.reservation_id, "tok_visa").await;
    // Still held.
    hold(6, "Balcony", 1).await;

    // At the door: one of the first purchase's tickets let in, the other given away.
    let tickets = |n: u32, reservation_id: ReservationId| {
        let app = &env.app;
        async move {
            app.reservation_tickets(&ctx(&format!("customer-{n}")), reservation_id)
                .await
                .unwrap()
                .1
                .into_iter()
                .map(|t| t.ticket_id)
                .collect::<Vec<_>>()
        }
    };
    let first = tickets(1, paid.reservation_id).await;
    let code = env.app.ticket(first[0]).await.unwrap().code.unwrap();
    env.clock.advance(TimeDelta::minutes(1));
    env.app
        .check_in(
            &ctx("gate-a"),
            &ticketing_app::tickets::ScanScope::AnyShow,
            ticketing_app::tickets::CheckIn {
                code,
                show_id: Some(show_id),
                gate: Some("A".into()),
                scanned_at: None,
            },
        )
        .await
        .unwrap();
    env.clock.advance(TimeDelta::minutes(1));
    env.app
        .transfer_ticket(&ctx("customer-1"), customer(1), first[1], customer(8))
        .await
        .unwrap();

    Day {
        show_id,
        customers: (1..=8).map(customer).collect(),
        admitted: first[0],
        transferred: first[1],
        cancelled: tickets(1, regretted.reservation_id).await,
        refunded: tickets(5, refunded.reservation_id).await,
    }
}

/// A show with one section of `hours` seats, one of them bought every hour: the
/// section's stream touches `hours` hourly buckets. Returns the show.
pub async fn a_seat_an_hour(env: &Env, hours: u32) -> ShowId {
    let plan = ShowPlan::new(
        "Long Run",
        "Small Hall",
        env.clock.now() + TimeDelta::days(60),
        vec![SectionSpec {
            name: section("Stalls"),
            capacity: hours,
            unit_price: eur(2_000),
            buckets: 1,
        }],
        10,
    )
    .unwrap();
    let show_id = on_sale(env, &ctx("organizer-1"), plan).await;
    for n in 1..=hours {
        env.clock.advance(TimeDelta::hours(1));
        let who = ctx(&format!("customer-{n}"));
        let hold = env
            .app
            .hold_seats(
                &who,
                HoldSeats {
                    show_id,
                    section: section("Stalls"),
                    customer_id: customer(n),
                    quantity: Quantity::new(1).unwrap(),
                },
            )
            .await
            .unwrap();
        let paid = env
            .app
            .pay(&who, hold.reservation_id, card("tok_visa"))
            .await
            .unwrap();
        assert!(matches!(paid, PaymentResult::Confirmed { .. }));
    }
    show_id
}

/// Moves `events` half an hour apart from the first one's instant: the store
/// records events at the wall clock's instant, all within seconds in a test, and a
/// sale over days would have them in many hours.
pub fn spread_over_hours(events: &mut [RecordedEvent]) {
    let Some(start) = events.first().map(|e| e.recorded_at) else {
        return;
    };
    for (n, event) in (0..).zip(events.iter_mut()) {
        event.recorded_at = start + TimeDelta::minutes(30 * n);
    }
}
