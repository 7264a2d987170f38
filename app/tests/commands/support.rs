use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeDelta, TimeZone, Utc};
use ticketing_app::payments::stripe_webhook::PaymentUpdate;
use ticketing_app::payments::{
    CardToken, ChargeGate, ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway,
    RefundReceipt, RefundRequest, SimulatedGateway,
};
use ticketing_app::{
    AppError, Clock, CommandContext, HeldSeats, HoldSeats, ManualClock, PaymentResult, Settings,
    SweepLimits, SweepReport, Ticketing,
};
use ticketing_bus::EventBus;
use ticketing_domain::*;
use ticketing_store::{EventStore, StreamHead};

pub struct Harness {
    pub app: Arc<Ticketing>,
    pub clock: ManualClock,
    /// The provider's ledger: what was really charged and refunded.
    pub gateway: Arc<SimulatedGateway>,
    /// The provider as the command layer reaches it, which a test can cut off.
    pub provider: Arc<UnreliableProvider>,
    pub store: Arc<dyn EventStore>,
}

/// Which calls to the provider fail with [`GatewayError::Unavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    None,
    /// Refunds only: a purchase whose refund is due stays half done.
    Refunds,
    /// Every call.
    Everything,
}

/// The simulated provider behind a switch, so that a test can show what happens when
/// the provider is unreachable at the worst moment.
#[derive(Debug)]
pub struct UnreliableProvider {
    inner: Arc<SimulatedGateway>,
    outage: Mutex<Outage>,
    /// Where charges wait, once a test holds them.
    gate: Mutex<Option<Arc<ChargeGate>>>,
}

impl UnreliableProvider {
    /// Holds every charge from now on at a gate the test opens.
    pub fn hold_charges(&self) -> Arc<ChargeGate> {
        let gate = ChargeGate::closed();
        *self.gate.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }

    pub fn set_outage(&self, outage: Outage) {
        *self.outage.lock().unwrap() = outage;
    }

    fn check(&self, refund: bool) -> Result<(), GatewayError> {
        match *self.outage.lock().unwrap() {
            Outage::Everything => Err(GatewayError::Unavailable("switched off".into())),
            Outage::Refunds if refund => Err(GatewayError::Unavailable("switched off".into())),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl PaymentGateway for UnreliableProvider {
    async fn charge(&self, request: ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        self.check(false)?;
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        self.inner.charge(request).await
    }

    async fn refund(&self, request: RefundRequest) -> Result<RefundReceipt, GatewayError> {
        self.check(true)?;
        self.inner.refund(request).await
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        self.check(false)?;
        self.inner.find_charge(idempotency_key).await
    }

    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        self.check(false)?;
        self.inner.charge_status(reference).await
    }

    async fn cancel_charge(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        self.check(false)?;
        self.inner.cancel_charge(reference).await
    }

    async fn payment_of(&self, reference: &str) -> Result<Option<String>, GatewayError> {
        self.check(false)?;
        self.inner.payment_of(reference).await
    }
}

/// The key the harness signs ticket codes with.
pub fn ticket_keys() -> ticketing_app::TicketKeys {
    ticketing_app::TicketKeys::from_seeds(&[("test", [7; 32])]).unwrap()
}

pub fn harness(store: Arc<dyn EventStore>) -> Harness {
    harness_with(store, Settings::default())
}

/// A harness whose command layer publishes to `bus` after every commit.
pub fn harness_with_bus(store: Arc<dyn EventStore>, bus: Arc<dyn EventBus>) -> Harness {
    harness_with_bus_and(store, bus, Settings::default())
}

/// [`harness_with_bus`] with `settings`.
pub fn harness_with_bus_and(
    store: Arc<dyn EventStore>,
    bus: Arc<dyn EventBus>,
    settings: Settings,
) -> Harness {
    let mut h = harness(store);
    let app = Ticketing::new(
        h.store.clone(),
        h.provider.clone(),
        Arc::new(h.clock.clone()),
        settings,
    )
    .with_ticket_keys(ticket_keys())
    .with_bus(bus);
    h.app = Arc::new(app);
    h
}

pub fn harness_with(store: Arc<dyn EventStore>, settings: Settings) -> Harness {
    let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
    let gateway = Arc::new(SimulatedGateway::new());
    let provider = Arc::new(UnreliableProvider {
        inner: gateway.clone(),
        outage: Mutex::new(Outage::None),
        gate: Mutex::new(None),
    });
    let app = Ticketing::new(
        store.clone(),
        provider.clone(),
        Arc::new(clock.clone()),
        settings,
    )
    .with_ticket_keys(ticket_keys());
    Harness {
        app: Arc::new(app),
        clock,
        gateway,
        provider,
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
    show_on_sale_in_buckets(h, capacity, 1).await
}

/// Like [`show_on_sale`], the section split into `buckets` escrow buckets.
pub async fn show_on_sale_in_buckets(h: &Harness, capacity: u32, buckets: u32) -> ShowId {
    let plan = ShowPlan::new(
        "Summer Festival",
        "Main Arena",
        h.clock.now() + TimeDelta::days(30),
        vec![SectionSpec {
            name: floor(),
            capacity,
            unit_price: eur(4_500),
            buckets,
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

/// The head of every stream in the store, by stream id: how a test sees that a command
/// appended nothing anywhere.
pub async fn all_heads(h: &Harness) -> Vec<StreamHead> {
    let types: Vec<&str> = [
        ShowEvent::EVENT_TYPES,
        InventoryEvent::EVENT_TYPES,
        ReservationEvent::EVENT_TYPES,
        PaymentEvent::EVENT_TYPES,
    ]
    .concat();
    let mut heads = h.store.find_streams("", &types, 10_000).await.unwrap();
    heads.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    heads
}

/// The type and payload of the last event of a stream.
pub async fn last_event(h: &Harness, stream_id: &str) -> (String, serde_json::Value) {
    let events = h.store.read_stream(stream_id, 0).await.unwrap();
    let last = events.last().expect("the stream has events");
    (last.event_type.clone(), last.data.clone())
}

/// A flash sale: `buyers` customers hold one seat each at the same instant, each with
/// its own idempotency key, on a harness patient enough for all their turns (this is
/// about who gets the seats, not how fast). Returns (seats won, told sold out); any
/// other answer fails the test.
pub async fn flash_sale(h: &Harness, show_id: ShowId, buyers: u32) -> (u32, u32) {
    let start = Arc::new(tokio::sync::Barrier::new(buyers as usize));
    let tasks: Vec<_> = (0..buyers)
        .map(|n| {
            let (app, start) = (h.app.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let ctx = customer_ctx(n).with_idempotency_key(format!("flash-{n}"));
                app.hold_seats(&ctx, hold_request(show_id, n, 1)).await
            })
        })
        .collect();
    let (mut won, mut sold_out) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(ticketing_app::AppError::Domain(DomainError::SoldOut { .. })) => sold_out += 1,
            Err(other) => panic!("only seats or sold out, got: {other:?}"),
        }
    }
    (won, sold_out)
}

/// Settings whose section wait outlasts a few hundred turns of a debug build on a
/// loaded machine.
pub fn patient() -> Settings {
    Settings {
        section_wait: std::time::Duration::from_secs(60),
        ..Settings::default()
    }
}

/// Starts `ctx`'s payment of `reservation_id` with `token` in the background: how a
/// test lets a payment wait at the provider (see [`UnreliableProvider::hold_charges`])
/// while something else happens.
pub fn pay_in_background(
    h: &Harness,
    ctx: CommandContext,
    reservation_id: ReservationId,
    token: &str,
) -> tokio::task::JoinHandle<Result<PaymentResult, AppError>> {
    let (app, card) = (h.app.clone(), card(token));
    tokio::spawn(async move { app.pay(&ctx, reservation_id, card).await })
}

/// Pays for `reservation_id` as customer 1 with `tok_visa`: the confirmed payment.
pub async fn pay_confirmed(h: &Harness, reservation_id: ReservationId) -> PaymentId {
    let paid = h
        .app
        .pay(&customer_ctx(1), reservation_id, card("tok_visa"))
        .await
        .unwrap();
    let PaymentResult::Confirmed { payment_id, .. } = paid else {
        panic!("tok_visa confirms: {paid:?}");
    };
    payment_id
}

/// Runs the timeout sweeper once with its default limits.
pub async fn sweep(h: &Harness) -> SweepReport {
    h.app
        .sweep(&CommandContext::system(), SweepLimits::default())
        .await
        .unwrap()
}

/// Who reports a payment's outcome on the provider's behalf (its webhooks).
pub fn stripe() -> CommandContext {
    CommandContext::new("stripe")
}

/// The payment requested for `reservation_id`.
pub async fn payment_of(h: &Harness, reservation_id: ReservationId) -> PaymentId {
    h.app
        .reservation(reservation_id)
        .await
        .unwrap()
        .payment_id
        .expect("a payment was requested")
}

/// The capture of `payment_id` as the simulated provider references it.
pub fn captured_by_simulation(payment_id: PaymentId) -> ChargeOutcome {
    ChargeOutcome::Captured {
        reference: format!("ch_sim_{payment_id}"),
    }
}

/// The provider's report that `payment_id` of `reservation_id` ended in `outcome`.
pub fn report(
    reservation_id: ReservationId,
    payment_id: PaymentId,
    outcome: ChargeOutcome,
) -> PaymentUpdate {
    PaymentUpdate {
        reservation_id,
        payment_id,
        outcome,
    }
}

/// Starts one keyed hold of one seat per buyer in `buyers`.
pub fn hold_in_background(
    h: &Harness,
    show_id: ShowId,
    buyers: std::ops::Range<u32>,
) -> Vec<tokio::task::JoinHandle<Result<HeldSeats, AppError>>> {
    buyers
        .map(|n| {
            let app = h.app.clone();
            tokio::spawn(async move {
                let ctx = customer_ctx(n).with_idempotency_key(format!("batch-{n}"));
                app.hold_seats(&ctx, hold_request(show_id, n, 1)).await
            })
        })
        .collect()
}

/// Waits until `condition` holds, yielding to the tasks that make it so; fails the
/// test after 30 s, naming `what` never happened.
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never: {what}"));
}

/// A bus that keeps the event ids of each call.
#[derive(Default)]
pub struct RecordingBus {
    calls: Mutex<Vec<Vec<uuid::Uuid>>>,
}

impl RecordingBus {
    /// The event ids of each call so far.
    pub fn calls(&self) -> Vec<Vec<uuid::Uuid>> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(
        &self,
        events: &[ticketing_store::RecordedEvent],
    ) -> Result<(), ticketing_bus::BusError> {
        let ids = events.iter().map(|e| e.event_id).collect();
        self.calls.lock().unwrap().push(ids);
        Ok(())
    }
}
