//! Turning stored columns back into rows, checked, for both backends: the backends
//! read their own column types (text or timestamptz, text or jsonb) and hand the
//! values over here.

use chrono::{DateTime, SecondsFormat, Utc};
use ticketing_domain::{
    Currency, CustomerId, Money, ReservationId, ReservationStatus, SectionName, ShowId, Timestamp,
};
use ticketing_store::StreamVersion;
use uuid::Uuid;

use crate::model::{HourKey, ReservationView, SalesTotals, SectionHolds, SectionView};
use crate::{
    ReadModelDump, ReadModelError, ReservationCursor, ReservationPage, SectionAvailability,
    StoredDeadLetter,
};

/// Every table [`crate::ReadModelStore::clear`] empties.
pub(crate) const TABLES: &[&str] = &[
    "read_section_availability",
    "read_section_sales",
    "read_sales_by_hour",
    "read_customer_reservations",
    "projection_applied",
    "projection_dead_letters",
    "projection_checkpoint",
];

/// An instant as stored where instants are text (SQLite, DynamoDB): RFC 3339 UTC with
/// six fractional digits, so that text order is time order.
pub(crate) fn instant(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_instant(text: &str) -> Result<Timestamp, ReadModelError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| ReadModelError::Corrupt(format!("instant {text:?}: {e}")))
}

pub(crate) fn opt_instant(text: Option<String>) -> Result<Option<Timestamp>, ReadModelError> {
    text.as_deref().map(parse_instant).transpose()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn uuid(text: &str) -> Result<Uuid, ReadModelError> {
    Uuid::parse_str(text).map_err(|e| corrupt("id", e))
}

pub(crate) fn count(value: i64) -> Result<u32, ReadModelError> {
    u32::try_from(value).map_err(|e| corrupt("count", e))
}

pub(crate) fn version(value: i64) -> Result<StreamVersion, ReadModelError> {
    StreamVersion::try_from(value).map_err(|e| corrupt("version", e))
}

pub(crate) fn db_version(value: StreamVersion) -> Result<i64, ReadModelError> {
    i64::try_from(value).map_err(|e| corrupt("version", e))
}

pub(crate) fn schema_version(value: i64) -> Result<u32, ReadModelError> {
    u32::try_from(value).map_err(|e| corrupt("schema version", e))
}

pub(crate) fn currency(text: &str) -> Result<Currency, ReadModelError> {
    Currency::parse(text).map_err(|e| corrupt("currency", e))
}

pub(crate) fn section_name(text: String) -> Result<SectionName, ReadModelError> {
    SectionName::parse(text).map_err(|e| corrupt("section", e))
}

/// The stored name of a purchase's state: its serde name (`payment_pending`).
pub(crate) fn state_name(state: ReservationStatus) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn state(text: String) -> Result<ReservationStatus, ReadModelError> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| corrupt("state", e))
}

/// The availability table's columns, as read.
pub(crate) struct SectionColumns {
    pub stream_id: String,
    pub show_id: String,
    pub section: String,
    pub capacity: i64,
    pub sold: i64,
    pub unit_price_minor: i64,
    pub currency: String,
    pub holds: SectionHolds,
}

pub(crate) fn section(
    columns: SectionColumns,
    sales: SalesTotals,
) -> Result<SectionView, ReadModelError> {
    Ok(SectionView {
        stream_id: columns.stream_id,
        show_id: ShowId(uuid(&columns.show_id)?),
        section: section_name(columns.section)?,
        capacity: count(columns.capacity)?,
        sold: count(columns.sold)?,
        unit_price: Money {
            amount_minor: columns.unit_price_minor,
            currency: currency(&columns.currency)?,
        },
        holds: columns.holds,
        sales,
    })
}

/// The customer-history table's columns, as read.
pub(crate) struct ReservationColumns {
    pub stream_id: String,
    pub reservation_id: String,
    pub customer_id: String,
    pub show_id: String,
    pub section: String,
    pub quantity: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub state: String,
    pub placed_at: Timestamp,
    pub expires_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub refunded_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

pub(crate) fn reservation(columns: ReservationColumns) -> Result<ReservationView, ReadModelError> {
    Ok(ReservationView {
        stream_id: columns.stream_id,
        reservation_id: ReservationId(uuid(&columns.reservation_id)?),
        customer_id: CustomerId::parse(columns.customer_id).map_err(|e| corrupt("customer", e))?,
        show_id: ShowId(uuid(&columns.show_id)?),
        section: section_name(columns.section)?,
        quantity: count(columns.quantity)?,
        amount: Money {
            amount_minor: columns.amount_minor,
            currency: currency(&columns.currency)?,
        },
        state: state(columns.state)?,
        placed_at: columns.placed_at,
        expires_at: columns.expires_at,
        paid_at: columns.paid_at,
        refunded_at: columns.refunded_at,
        updated_at: columns.updated_at,
    })
}

pub(crate) fn availability(section: &SectionView, now: Timestamp) -> SectionAvailability {
    let held = section.held_at(now);
    SectionAvailability {
        section: section.section.clone(),
        capacity: section.capacity,
        held,
        sold: section.sold,
        available: section
            .capacity
            .saturating_sub(section.sold)
            .saturating_sub(held),
        unit_price: section.unit_price,
    }
}

/// Availability per section from the views of its buckets (one view per inventory
/// stream): a section split into buckets reads as one, with its buckets added up, in
/// the order its first bucket came.
pub(crate) fn sections_availability<'a>(
    views: impl IntoIterator<Item = &'a SectionView>,
    now: Timestamp,
) -> Vec<SectionAvailability> {
    let mut sections: Vec<SectionAvailability> = Vec::new();
    for view in views {
        let bucket = availability(view, now);
        match sections.iter_mut().find(|s| s.section == bucket.section) {
            Some(section) => {
                section.capacity += bucket.capacity;
                section.held += bucket.held;
                section.sold += bucket.sold;
                section.available += bucket.available;
            }
            None => sections.push(bucket),
        }
    }
    sections
}

pub(crate) fn section_sales(
    section: String,
    currency_code: String,
    totals: SalesTotals,
) -> Result<(SectionName, Currency, SalesTotals), ReadModelError> {
    Ok((section_name(section)?, currency(&currency_code)?, totals))
}

/// A page, with a cursor when it is full (there may be more).
pub(crate) fn page(reservations: Vec<ReservationView>, limit: i64) -> ReservationPage {
    let full = i64::try_from(reservations.len()).unwrap_or(i64::MAX) >= limit && limit > 0;
    let next = if full {
        reservations.last().map(|r| ReservationCursor {
            placed_at: r.placed_at,
            reservation_id: r.reservation_id,
        })
    } else {
        None
    };
    ReservationPage { reservations, next }
}

/// A dump in the order [`ReadModelDump`] promises, whatever order the backend read
/// the rows in: each table by its key, dead letters by stream and version.
pub(crate) fn dump(
    mut sections: Vec<SectionView>,
    mut hours: Vec<(HourKey, SalesTotals)>,
    mut reservations: Vec<ReservationView>,
    mut applied: Vec<(String, StreamVersion)>,
    letters: Vec<StoredDeadLetter>,
) -> ReadModelDump {
    sections.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    hours.sort_by(|a, b| a.0.cmp(&b.0));
    reservations.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    applied.sort();
    let mut dead_letters: Vec<_> = letters.into_iter().map(|stored| stored.letter).collect();
    dead_letters.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
    ReadModelDump {
        sections,
        hours,
        reservations,
        applied,
        dead_letters,
    }
}
