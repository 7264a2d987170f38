//! Given events / when command / then events or error, for every aggregate.

mod buckets;
mod inventory;
mod payment;
mod properties;
mod reservation;
mod schema;
mod show;
mod ticket;

use chrono::{TimeDelta, TimeZone};

use crate::*;

pub(crate) fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

pub(crate) fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub(crate) fn eur(amount_minor: i64) -> Money {
    Money::unit_price(amount_minor, Currency::parse("EUR").unwrap()).unwrap()
}

pub(crate) fn section(name: &str) -> SectionName {
    SectionName::parse(name).unwrap()
}

pub(crate) fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

/// The state after `events`.
pub(crate) fn given<A: Aggregate>(events: &[A::Event]) -> A {
    A::default().fold(events)
}
