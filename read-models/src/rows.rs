//! Turning stored columns back into rows, checked, for both backends: the backends
//! read their own column types (text or timestamptz, text or jsonb) and hand the
//! values over here.

use chrono::{DateTime, SecondsFormat, Utc};
use ticketing_domain::ticket::Revocation;
use ticketing_domain::{
    Currency, CustomerId, Money, ReservationId, ReservationStatus, SectionAvailability,
    SectionName, ShowId, TicketId, Timestamp,
};
use ticketing_store::StreamVersion;
use uuid::Uuid;

use crate::model::{
    HourKey, ReservationView, SalesTotals, SectionHolds, SectionView, TicketRevocationView,
    TicketView,
};
use crate::{
    HeldTicket, ReadModelDump, ReadModelError, ReservationCursor, ReservationPage, RevokedTicket,
    SectionAdmissions, StoredDeadLetter, TicketCursor, TicketPage,
};

/// Every table [`crate::ReadModelStore::clear`] empties.
pub(crate) const TABLES: &[&str] = &[
    "read_section_availability",
    "read_section_sales",
    "read_sales_by_hour",
    "read_customer_reservations",
    "read_tickets",
    "read_ticket_revocations",
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
    /// JSON: the ticket ids.
    pub ticket_ids: String,
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
        ticket_ids: serde_json::from_str(&columns.ticket_ids)
            .map_err(|e| corrupt("ticket ids", e))?,
    })
}

/// A purchase's ticket ids as stored (JSON text).
pub(crate) fn ticket_ids(view: &ReservationView) -> String {
    serde_json::to_string(&view.ticket_ids).unwrap_or_else(|_| "[]".into())
}

/// The ticket table's columns, as read.
pub(crate) struct TicketColumns {
    pub stream_id: String,
    pub ticket_id: String,
    pub reservation_id: String,
    pub show_id: String,
    pub section: String,
    pub holder: String,
    pub generation: i64,
    pub held_since: Timestamp,
    pub admitted_at: Option<Timestamp>,
    pub gate: Option<String>,
    pub updated_at: Timestamp,
}

pub(crate) fn ticket(columns: TicketColumns) -> Result<TicketView, ReadModelError> {
    Ok(TicketView {
        stream_id: columns.stream_id,
        ticket_id: TicketId(uuid(&columns.ticket_id)?),
        reservation_id: ReservationId(uuid(&columns.reservation_id)?),
        show_id: ShowId(uuid(&columns.show_id)?),
        section: section_name(columns.section)?,
        holder: CustomerId::parse(columns.holder).map_err(|e| corrupt("holder", e))?,
        generation: count(columns.generation)?,
        held_since: columns.held_since,
        admitted_at: columns.admitted_at,
        gate: columns.gate,
        updated_at: columns.updated_at,
    })
}

/// The revocation table's columns, as read.
pub(crate) struct RevocationColumns {
    pub stream_id: String,
    pub ticket_id: String,
    pub reservation_id: String,
    pub show_id: String,
    pub section: String,
    pub reason: String,
    pub revoked_at: Timestamp,
}

pub(crate) fn revocation(
    columns: RevocationColumns,
) -> Result<TicketRevocationView, ReadModelError> {
    Ok(TicketRevocationView {
        stream_id: columns.stream_id,
        ticket_id: TicketId(uuid(&columns.ticket_id)?),
        reservation_id: ReservationId(uuid(&columns.reservation_id)?),
        show_id: ShowId(uuid(&columns.show_id)?),
        section: section_name(columns.section)?,
        reason: reason(columns.reason)?,
        revoked_at: columns.revoked_at,
    })
}

pub(crate) fn reason_name(reason: Revocation) -> String {
    reason.to_string()
}

pub(crate) fn reason(text: String) -> Result<Revocation, ReadModelError> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| corrupt("reason", e))
}

/// The revocation list of a show from its revoked purchases' tickets and its
/// transferred tickets (generation above 0), each revoked after `since`, oldest first.
pub(crate) fn revoked_list(
    revocations: impl IntoIterator<Item = TicketRevocationView>,
    transferred: impl IntoIterator<Item = TicketView>,
    since: Option<Timestamp>,
) -> Vec<RevokedTicket> {
    let mut list: Vec<RevokedTicket> = revocations
        .into_iter()
        .map(|r| RevokedTicket {
            ticket_id: r.ticket_id,
            reason: r.reason,
            revoked_at: r.revoked_at,
            valid_generation: None,
        })
        .chain(
            transferred
                .into_iter()
                .filter(|t| t.generation > 0)
                .map(|t| RevokedTicket {
                    ticket_id: t.ticket_id,
                    reason: Revocation::Transferred,
                    revoked_at: t.held_since,
                    valid_generation: Some(t.generation),
                }),
        )
        .filter(|r| since.is_none_or(|since| r.revoked_at > since))
        .collect();
    list.sort_by(|a, b| {
        (a.revoked_at, a.ticket_id.0, a.valid_generation).cmp(&(
            b.revoked_at,
            b.ticket_id.0,
            b.valid_generation,
        ))
    });
    list
}

/// Adds one ticket to its section's figures: `admitted` wins over `revoked`. (The SQL
/// backends count in SQL.)
#[cfg(feature = "dynamodb")]
pub(crate) fn count_admission(
    sections: &mut Vec<SectionAdmissions>,
    section: &SectionName,
    admitted: bool,
    revoked: bool,
) {
    let at = match sections.iter().position(|s| &s.section == section) {
        Some(at) => at,
        None => {
            sections.push(SectionAdmissions {
                section: section.clone(),
                issued: 0,
                admitted: 0,
                revoked: 0,
                remaining: 0,
            });
            sections.len() - 1
        }
    };
    let figures = &mut sections[at];
    figures.issued += 1;
    if admitted {
        figures.admitted += 1;
    } else if revoked {
        figures.revoked += 1;
    } else {
        figures.remaining += 1;
    }
}

/// A ticket of a holder's page and the stored reason of its revocation, if any.
pub(crate) fn held_ticket(
    ticket: TicketView,
    revoked: Option<String>,
) -> Result<HeldTicket, ReadModelError> {
    Ok(HeldTicket {
        ticket,
        revoked: revoked.map(reason).transpose()?,
    })
}

/// A section's figures from its counts: (section, issued, admitted, revoked before
/// use).
pub(crate) fn section_admissions(
    (section, issued, admitted, revoked): (String, i64, i64, i64),
) -> Result<SectionAdmissions, ReadModelError> {
    let number = |n: i64| u64::try_from(n).map_err(|e| corrupt("ticket count", e));
    let (issued, admitted, revoked) = (number(issued)?, number(admitted)?, number(revoked)?);
    Ok(SectionAdmissions {
        section: section_name(section)?,
        issued,
        admitted,
        revoked,
        remaining: issued.saturating_sub(admitted).saturating_sub(revoked),
    })
}

/// A page of tickets, with a cursor when it is full (there may be more).
pub(crate) fn ticket_page(tickets: Vec<HeldTicket>, limit: usize) -> TicketPage {
    let next = if tickets.len() >= limit && limit > 0 {
        tickets.last().map(|t| TicketCursor {
            held_since: t.ticket.held_since,
            ticket_id: t.ticket.ticket_id,
        })
    } else {
        None
    };
    TicketPage { tickets, next }
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
    (mut tickets, mut revocations): (Vec<TicketView>, Vec<TicketRevocationView>),
    mut applied: Vec<(String, StreamVersion)>,
    letters: Vec<StoredDeadLetter>,
) -> ReadModelDump {
    sections.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    hours.sort_by(|a, b| a.0.cmp(&b.0));
    reservations.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    tickets.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
    revocations.sort_by_key(|r| r.ticket_id.0);
    applied.sort();
    let mut dead_letters: Vec<_> = letters.into_iter().map(|stored| stored.letter).collect();
    dead_letters.sort_by(|a, b| (&a.stream_id, a.version).cmp(&(&b.stream_id, b.version)));
    ReadModelDump {
        sections,
        hours,
        reservations,
        tickets,
        revocations,
        applied,
        dead_letters,
    }
}
