//! `ticketing demo`: the origin system's validated purchase (create a show with a
//! 100-seat section, hold 2 seats, pay, confirm), then the failure paths: a declined
//! card releases its seats, an expired hold is released, a sold-out section refuses.
//!
//! It runs through the same command layer as the API, on whatever store is
//! configured, with the simulated payment provider and a clock that the demo moves
//! forward to let a hold expire. After the purchase the projector applies the new
//! events and the demo prints the projected availability, as the API serves it.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{TimeDelta, Utc};
use ticketing_app::payments::{CardToken, SimulatedGateway};
use ticketing_app::queries::SalesSummary;
use ticketing_app::tickets::{CheckIn, ScanScope};
use ticketing_app::{
    AppError, Clock, CommandContext, HoldSeats, ManualClock, PaymentResult, Settings, Ticketing,
};
use ticketing_domain::*;
use ticketing_projector::Projector;
use ticketing_read_models::ReadModelStore;
use ticketing_store::EventStore;

/// What the demo ended with, for its caller to check.
#[derive(Debug)]
pub struct DemoReport {
    pub show_id: ShowId,
    pub section: SectionAvailability,
    /// The purchased section as the read models showed it right after the purchase.
    pub projected: SectionAvailability,
    pub sales: SalesSummary,
    pub declined_released: bool,
    pub expired_released: bool,
    pub sold_out_refusal: Option<DomainError>,
    /// The purchase's tickets.
    pub tickets: Vec<ticketing_app::tickets::TicketView>,
    /// The first ticket's first scan at the door, and its second.
    pub first_scan: Option<ticketing_app::tickets::Admitted>,
    pub second_scan: Option<DomainError>,
}

struct Demo<'a, W: Write> {
    app: Ticketing,
    clock: ManualClock,
    out: &'a mut W,
    step: u32,
}

impl<W: Write> Demo<'_, W> {
    fn step(&mut self, text: impl AsRef<str>) -> anyhow::Result<()> {
        self.step += 1;
        writeln!(self.out, "{:>3}. {}", self.step, text.as_ref())?;
        Ok(())
    }

    fn detail(&mut self, text: impl AsRef<str>) -> anyhow::Result<()> {
        writeln!(self.out, "       {}", text.as_ref())?;
        Ok(())
    }

    async fn create_show(
        &mut self,
        title: &str,
        section: &str,
        capacity: u32,
        price: Money,
    ) -> anyhow::Result<ShowId> {
        let organizer = OrganizerId::parse("organizer-demo")?;
        let plan = ShowPlan::new(
            title,
            "Riverside Arena",
            self.clock.now() + TimeDelta::days(45),
            vec![SectionSpec {
                name: SectionName::parse(section)?,
                capacity,
                unit_price: price,
                buckets: 1,
            }],
            10,
        )?;
        let ctx = CommandContext::new(organizer.as_str());
        let show_id = self.app.create_show(&ctx, organizer, plan).await?;
        self.step(format!(
            "organizer creates \"{title}\" with section \"{section}\": {capacity} seats at {price}"
        ))?;
        self.detail(format!("show {show_id}"))?;
        self.app
            .change_sales(&ctx, show_id, ShowCommand::OpenSales)
            .await?;
        self.step("organizer opens sales")?;
        Ok(show_id)
    }

    async fn hold(
        &mut self,
        show_id: ShowId,
        section: &str,
        customer: &str,
        quantity: u32,
    ) -> Result<ReservationId, AppError> {
        let request = HoldSeats {
            show_id,
            section: SectionName::parse(section)?,
            customer_id: CustomerId::parse(customer)?,
            quantity: Quantity::new(quantity)?,
        };
        let held = self
            .app
            .hold_seats(&CommandContext::new(customer), request)
            .await?;
        let _ = self.step(format!(
            "{customer} holds {quantity} seat(s) in \"{section}\": reservation {}, {} to pay before {}",
            held.reservation_id,
            held.amount,
            held.expires_at.format("%H:%M:%S UTC")
        ));
        Ok(held.reservation_id)
    }

    async fn pay(
        &mut self,
        customer: &str,
        reservation_id: ReservationId,
        token: &str,
    ) -> anyhow::Result<PaymentResult> {
        let result = self
            .app
            .pay(
                &CommandContext::new(customer),
                reservation_id,
                CardToken::parse(token)?,
            )
            .await?;
        let text = match &result {
            PaymentResult::Confirmed {
                payment_id, amount, ..
            } => {
                format!("{customer} pays with {token}: {amount} captured (payment {payment_id}), seats confirmed")
            }
            PaymentResult::Declined { reason, .. } => {
                format!("{customer} pays with {token}: declined ({reason}), seats released")
            }
            PaymentResult::Refunded { amount, .. } => {
                format!("{customer} pays with {token}: seats gone, {amount} refunded")
            }
            PaymentResult::ActionRequired { expires_at, .. } => {
                format!("{customer} pays with {token}: 3-D Secure asked for, seats held until {expires_at}")
            }
        };
        self.step(text)?;
        Ok(result)
    }

    async fn section(&self, show_id: ShowId) -> anyhow::Result<SectionAvailability> {
        let sections = self.app.availability(show_id).await?;
        sections
            .into_iter()
            .next()
            .context("the show has a section")
    }
}

/// Runs the demo on `store`, printing each step to `out`.
///
/// # Errors
/// When the store fails or a step does not end as the demo expects.
pub async fn run(
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
    location: &str,
    out: &mut impl Write,
) -> anyhow::Result<DemoReport> {
    let clock = ManualClock::starting_at(Utc::now());
    let projector = Projector::new(Arc::clone(&store), read_models);
    // The demo's tickets are signed with a key of its own, made for this run.
    let ticket_keys = ticketing_app::TicketKeys::from_seeds(&[("demo", rand::random())])?;
    let app = Ticketing::new(
        store,
        Arc::new(SimulatedGateway::new()),
        Arc::new(clock.clone()),
        Settings::default(),
    )
    .with_ticket_keys(ticket_keys);
    let mut demo = Demo {
        app,
        clock,
        out,
        step: 0,
    };
    let eur = Currency::parse("EUR")?;

    writeln!(demo.out, "Ticketing demo on {location}\n")?;
    writeln!(
        demo.out,
        "Purchase: create a show with 100 seats, hold 2, pay, confirm"
    )?;
    let show_id = demo
        .create_show(
            "Summer Music Festival",
            "General Admission",
            100,
            Money::unit_price(4_500, eur)?,
        )
        .await?;
    let reservation_id = demo.hold(show_id, "General Admission", "alice", 2).await?;
    let paid = demo.pay("alice", reservation_id, "tok_visa").await?;
    if !matches!(paid, PaymentResult::Confirmed { .. }) {
        bail!("the purchase was not confirmed: {paid:?}");
    }
    let status = demo.app.reservation(reservation_id).await?.status;
    demo.step(format!("reservation {reservation_id} is {status}"))?;
    let (_, tickets) = demo
        .app
        .reservation_tickets(&CommandContext::new("alice"), reservation_id)
        .await?;
    demo.step(format!("alice's {} tickets:", tickets.len()))?;
    for ticket in &tickets {
        demo.detail(format!(
            "ticket {}: {}",
            ticket.ticket_id,
            ticket.code.as_deref().unwrap_or("(no code)")
        ))?;
    }
    let first_code = tickets
        .first()
        .and_then(|t| t.code.clone())
        .context("the purchase has a ticket with a code")?;
    let door = ScanScope::AnyShow;
    let scan = |gate: &str| CheckIn {
        code: first_code.clone(),
        show_id: Some(show_id),
        gate: Some(gate.to_owned()),
        scanned_at: None,
    };
    let ctx = CommandContext::new("gate-a");
    let first_scan = demo.app.check_in(&ctx, &door, scan("A")).await?;
    demo.step(format!(
        "gate A scans the first ticket: admitted at {}",
        first_scan.scanned_at.format("%H:%M:%S")
    ))?;
    let second_scan = match demo.app.check_in(&ctx, &door, scan("B")).await {
        Err(AppError::Domain(refusal)) => refusal,
        other => bail!("a second scan of a ticket was not refused: {other:?}"),
    };
    demo.step(format!("gate B scans it again: refused, {second_scan}"))?;
    // The projector applies everything committed so far; the demo waits for it, so
    // the line below is the projected state, not a race with it. On a PostgreSQL
    // server that others use, the global order stops short of transactions still in
    // flight anywhere on it (ADR 1): catch up again until the purchase is in.
    let committed = demo.section(show_id).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let projected = loop {
        projector
            .catch_up(1_000, |_| {})
            .await
            .context("projecting the events into the read models")?;
        // Not there yet while the show's own events wait behind a transaction still
        // in flight elsewhere on the server.
        let projected = projector
            .read_models()
            .section_availability(show_id, demo.clock.now())
            .await?
            .into_iter()
            .next();
        let caught_up = projected
            .as_ref()
            .is_some_and(|p| (p.held, p.sold) == (committed.held, committed.sold));
        if caught_up || tokio::time::Instant::now() >= deadline {
            break projected.context("the read models know the show's section")?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    demo.detail(format!(
        "read model: {} {} available, {} sold",
        projected.section, projected.available, projected.sold
    ))?;

    writeln!(demo.out, "\nFailure paths")?;
    let declined = demo.hold(show_id, "General Admission", "bob", 3).await?;
    let result = demo.pay("bob", declined, "tok_chargeDeclined").await?;
    let declined_released =
        matches!(result, PaymentResult::Declined { .. }) && demo.section(show_id).await?.held == 0;

    let expiring = demo.hold(show_id, "General Admission", "carol", 4).await?;
    demo.clock.advance(TimeDelta::minutes(11));
    demo.step("11 minutes pass without carol paying")?;
    demo.app.expire(&CommandContext::system(), expiring).await?;
    let section = demo.section(show_id).await?;
    let expired_released = section.held == 0
        && demo.app.reservation(expiring).await?.status == ReservationStatus::Expired;
    demo.step(format!(
        "carol's hold is expired and released: {} seats available again",
        section.available
    ))?;

    let small = demo
        .create_show(
            "Acoustic Night",
            "Front Row",
            2,
            Money::unit_price(8_000, eur)?,
        )
        .await?;
    let front_row = demo.hold(small, "Front Row", "dave", 2).await?;
    demo.pay("dave", front_row, "tok_mastercard").await?;
    let refusal = match demo.hold(small, "Front Row", "erin", 1).await {
        Err(AppError::Domain(refusal)) => refusal,
        other => bail!("a hold in a sold-out section was not refused: {other:?}"),
    };
    demo.step(format!("erin is refused: {refusal}"))?;

    let section = demo.section(show_id).await?;
    let sales = demo.app.sales(show_id).await?;
    writeln!(demo.out, "\nFinal state of \"Summer Music Festival\"")?;
    writeln!(
        demo.out,
        "  section \"{}\": capacity {}, held {}, sold {}, available {}",
        section.section, section.capacity, section.held, section.sold, section.available
    )?;
    writeln!(
        demo.out,
        "  sales: {} tickets sold, revenue {}",
        sales.tickets_sold, sales.revenue
    )?;
    Ok(DemoReport {
        show_id,
        section,
        projected,
        sales,
        declined_released,
        expired_released,
        sold_out_refusal: Some(refusal),
        tickets,
        first_scan: Some(first_scan),
        second_scan: Some(second_scan),
    })
}
