use std::sync::Arc;

use chrono::{TimeDelta, TimeZone, Utc};
use ticketing_app::payments::{CardToken, SimulatedGateway};
use ticketing_app::{
    Clock, CommandContext, HeldSeats, HoldSeats, ManualClock, Settings, Ticketing,
};
use ticketing_domain::*;
use ticketing_store::EventStore;

pub struct Harness {
    pub app: Arc<Ticketing>,
    pub clock: ManualClock,
    pub gateway: Arc<SimulatedGateway>,
    pub store: Arc<dyn EventStore>,
}

pub fn harness(store: Arc<dyn EventStore>) -> Harness {
    harness_with(store, Settings::default())
}

pub fn harness_with(store: Arc<dyn EventStore>, settings: Settings) -> Harness {
    let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
    let gateway = Arc::new(SimulatedGateway::new());
    let app = Ticketing::new(
        store.clone(),
        gateway.clone(),
        Arc::new(clock.clone()),
        settings,
    );
    Harness {
        app: Arc::new(app),
        clock,
        gateway,
        store,
    }
}

pub fn organizer() -> CommandContext {
    CommandContext::new("organizer-1")
}

pub fn customer_ctx(n: u32) -> CommandContext {
    CommandContext::new(format!("customer-{n}"))
}

pub fn customer(n: u32) -> CustomerId {
    CustomerId::parse(format!("customer-{n}")).unwrap()
}

pub fn card(token: &str) -> CardToken {
    CardToken::parse(token).unwrap()
}

pub fn floor() -> SectionName {
    SectionName::parse("Floor").unwrap()
}

pub fn eur(amount_minor: i64) -> Money {
    Money::unit_price(amount_minor, Currency::parse("EUR").unwrap()).unwrap()
}

/// A show with one section "Floor" of `capacity` seats at 45.00 EUR, sales open.
pub async fn show_on_sale(h: &Harness, capacity: u32) -> ShowId {
    let plan = ShowPlan::new(
        "Summer Festival",
        "Main Arena",
        h.clock.now() + TimeDelta::days(30),
        vec![SectionSpec {
            name: floor(),
            capacity,
            unit_price: eur(4_500),
        }],
        10,
    )
    .unwrap();
    let organizer_id = OrganizerId::parse("organizer-1").unwrap();
    let show_id = h
        .app
        .create_show(&organizer(), organizer_id, plan)
        .await
        .unwrap();
    h.app
        .change_sales(&organizer(), show_id, ShowCommand::OpenSales)
        .await
        .unwrap();
    show_id
}

pub fn hold_request(show_id: ShowId, n: u32, quantity: u32) -> HoldSeats {
    HoldSeats {
        show_id,
        section: floor(),
        customer_id: customer(n),
        quantity: Quantity::new(quantity).unwrap(),
    }
}

pub async fn hold(h: &Harness, show_id: ShowId, n: u32, quantity: u32) -> HeldSeats {
    h.app
        .hold_seats(&customer_ctx(n), hold_request(show_id, n, quantity))
        .await
        .unwrap()
}

/// (held, sold, available) of the show's only section at the clock's instant.
pub async fn seats(h: &Harness, show_id: ShowId) -> (u32, u32, u32) {
    let sections = h.app.availability(show_id).await.unwrap();
    (sections[0].held, sections[0].sold, sections[0].available)
}

/// The versions of the streams a purchase touches: how a test sees that nothing was appended.
pub async fn versions(h: &Harness, show_id: ShowId, reservation_id: ReservationId) -> [u64; 3] {
    let streams = [
        show_stream(show_id),
        inventory_stream(show_id, &floor()),
        reservation_stream(reservation_id),
    ];
    let mut versions = [0; 3];
    for (version, stream) in versions.iter_mut().zip(&streams) {
        *version = h.store.stream_version(stream).await.unwrap();
    }
    versions
}
