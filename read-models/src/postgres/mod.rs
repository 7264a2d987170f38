//! The read models in PostgreSQL, beside the events (the store's
//! `migrations/postgres/0005_read_models.sql`).
//!
//! Instants are `timestamptz` (microseconds), holds and dead-letter payloads `jsonb`,
//! ids text. A batch is one transaction; the applied versions are checked and moved in
//! it, so two projectors racing on a stream cannot both write (one gets
//! [`ReadModelError::Conflict`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use ticketing_domain::{CustomerId, SectionAvailability, ShowId, Timestamp};
use ticketing_store::{GlobalPosition, StreamVersion};

use crate::model::{
    BatchWrite, DeadLetter, HourKey, LoadedRows, ReservationView, SalesTotals, SectionView,
    TicketRevocationView, TicketView,
};
use crate::{
    unique, ReadModelDump, ReadModelError, ReadModelStore, ReservationCursor, ReservationPage,
    RevokedTicket, SectionAdmissions, ShowSales, StoredDeadLetter, TicketCursor, TicketPage,
};

use crate::rows as d;

/// The read models in a PostgreSQL database whose schema the store's migrations made
/// (connect with `ticketing_store::postgres::PostgresStore` and pass its pool).
#[derive(Debug, Clone)]
pub struct PostgresReadModels {
    pool: PgPool,
}

impl PostgresReadModels {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const SECTION_COLUMNS: &str = "a.stream_id, a.show_id, a.section, a.capacity, a.sold, \
     a.unit_price_minor, a.currency, a.holds, s.tickets_sold, s.gross_minor, \
     s.refunds_count, s.refunds_minor \
     from read_section_availability a join read_section_sales s on s.stream_id = a.stream_id";

const RESERVATION_COLUMNS: &str = "stream_id, reservation_id, customer_id, show_id, section, \
     quantity, amount_minor, currency, state, placed_at, expires_at, paid_at, refunded_at, \
     updated_at, ticket_ids::text as ticket_ids from read_customer_reservations";

const TICKET_COLUMNS: &str = "t.stream_id, t.ticket_id, t.reservation_id, t.show_id, \
     t.section, t.holder, t.generation, t.held_since, t.admitted_at, t.gate, t.updated_at";

const REVOCATION_COLUMNS: &str = "stream_id, ticket_id, reservation_id, show_id, section, \
     reason, revoked_at from read_ticket_revocations";

fn section_row(row: &PgRow) -> Result<SectionView, ReadModelError> {
    let holds: Json<crate::model::SectionHolds> = row.try_get("holds")?;
    d::section(
        d::SectionColumns {
            stream_id: row.try_get("stream_id")?,
            show_id: row.try_get("show_id")?,
            section: row.try_get("section")?,
            capacity: row.try_get("capacity")?,
            sold: row.try_get("sold")?,
            unit_price_minor: row.try_get("unit_price_minor")?,
            currency: row.try_get("currency")?,
            holds: holds.0,
        },
        sales(row)?,
    )
}

fn sales(row: &PgRow) -> Result<SalesTotals, ReadModelError> {
    Ok(SalesTotals {
        tickets_sold: row.try_get("tickets_sold")?,
        gross_minor: row.try_get("gross_minor")?,
        refunds_count: row.try_get("refunds_count")?,
        refunds_minor: row.try_get("refunds_minor")?,
    })
}

fn reservation_row(row: &PgRow) -> Result<ReservationView, ReadModelError> {
    d::reservation(d::ReservationColumns {
        stream_id: row.try_get("stream_id")?,
        reservation_id: row.try_get("reservation_id")?,
        customer_id: row.try_get("customer_id")?,
        show_id: row.try_get("show_id")?,
        section: row.try_get("section")?,
        quantity: row.try_get("quantity")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        state: row.try_get("state")?,
        placed_at: row.try_get("placed_at")?,
        expires_at: row.try_get("expires_at")?,
        paid_at: row.try_get("paid_at")?,
        refunded_at: row.try_get("refunded_at")?,
        updated_at: row.try_get("updated_at")?,
        ticket_ids: row.try_get("ticket_ids")?,
    })
}

fn ticket_row(row: &PgRow) -> Result<TicketView, ReadModelError> {
    d::ticket(d::TicketColumns {
        stream_id: row.try_get("stream_id")?,
        ticket_id: row.try_get("ticket_id")?,
        reservation_id: row.try_get("reservation_id")?,
        show_id: row.try_get("show_id")?,
        section: row.try_get("section")?,
        holder: row.try_get("holder")?,
        generation: row.try_get("generation")?,
        held_since: row.try_get("held_since")?,
        admitted_at: row.try_get("admitted_at")?,
        gate: row.try_get("gate")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn revocation_row(row: &PgRow) -> Result<TicketRevocationView, ReadModelError> {
    d::revocation(d::RevocationColumns {
        stream_id: row.try_get("stream_id")?,
        ticket_id: row.try_get("ticket_id")?,
        reservation_id: row.try_get("reservation_id")?,
        show_id: row.try_get("show_id")?,
        section: row.try_get("section")?,
        reason: row.try_get("reason")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn rows<T>(
    rows: &[PgRow],
    row: fn(&PgRow) -> Result<T, ReadModelError>,
) -> Result<Vec<T>, ReadModelError> {
    rows.iter().map(row).collect()
}

// A batch's rows of one kind are written in one statement each, whatever their number
// (`unnest` of one array per column): at an on-sale a batch holds a reservation and an
// applied version per hold, and a statement per row cost a round trip each.

/// Moves each stream's applied version from `before` to `after`, refusing the batch
/// ([`ReadModelError::Conflict`], naming a stream) unless every one was where the batch
/// found it: another writer moved it first.
async fn move_applied(
    tx: &mut sqlx::PgConnection,
    applied: &[(String, StreamVersion, StreamVersion)],
) -> Result<(), ReadModelError> {
    let (new, moved): (Vec<_>, Vec<_>) = applied.iter().partition(|(_, before, _)| *before == 0);
    let mut written: std::collections::HashSet<String> = std::collections::HashSet::new();
    if !new.is_empty() {
        let streams: Vec<&str> = new.iter().map(|(stream, _, _)| stream.as_str()).collect();
        let versions = new
            .iter()
            .map(|(_, _, after)| d::db_version(*after))
            .collect::<Result<Vec<_>, _>>()?;
        let inserted: Vec<String> = sqlx::query_scalar(
            "insert into projection_applied (stream_id, version) \
             select * from unnest($1::text[], $2::bigint[]) \
             on conflict (stream_id) do nothing returning stream_id",
        )
        .bind(streams)
        .bind(versions)
        .fetch_all(&mut *tx)
        .await?;
        written.extend(inserted);
    }
    if !moved.is_empty() {
        let streams: Vec<&str> = moved.iter().map(|(stream, _, _)| stream.as_str()).collect();
        let befores = moved
            .iter()
            .map(|(_, before, _)| d::db_version(*before))
            .collect::<Result<Vec<_>, _>>()?;
        let afters = moved
            .iter()
            .map(|(_, _, after)| d::db_version(*after))
            .collect::<Result<Vec<_>, _>>()?;
        let updated: Vec<String> = sqlx::query_scalar(
            "update projection_applied p set version = m.after \
             from unnest($1::text[], $2::bigint[], $3::bigint[]) as m(stream_id, before, after) \
             where p.stream_id = m.stream_id and p.version = m.before \
             returning p.stream_id",
        )
        .bind(streams)
        .bind(befores)
        .bind(afters)
        .fetch_all(&mut *tx)
        .await?;
        written.extend(updated);
    }
    match applied
        .iter()
        .find(|(stream, _, _)| !written.contains(stream))
    {
        Some((stream_id, _, _)) => Err(ReadModelError::Conflict {
            stream_id: stream_id.clone(),
        }),
        None => Ok(()),
    }
}

/// One column of `rows`, as an array to `unnest`.
fn column<R, T>(rows: &[R], value: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

async fn write_reservations(
    tx: &mut sqlx::PgConnection,
    reservations: &[ReservationView],
) -> Result<(), ReadModelError> {
    if reservations.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into read_customer_reservations (stream_id, reservation_id, customer_id, \
         show_id, section, quantity, amount_minor, currency, state, placed_at, \
         expires_at, paid_at, refunded_at, updated_at, ticket_ids) \
         select stream_id, reservation_id, customer_id, show_id, section, quantity, \
                amount_minor, currency, state, placed_at, expires_at, paid_at, refunded_at, \
                updated_at, ticket_ids::jsonb \
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                       $6::bigint[], $7::bigint[], $8::text[], $9::text[], \
                       $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], \
                       $13::timestamptz[], $14::timestamptz[], $15::text[]) \
             as r(stream_id, reservation_id, customer_id, show_id, section, quantity, \
                  amount_minor, currency, state, placed_at, expires_at, paid_at, \
                  refunded_at, updated_at, ticket_ids) \
         on conflict (stream_id) do update set state = excluded.state, \
         paid_at = excluded.paid_at, refunded_at = excluded.refunded_at, \
         updated_at = excluded.updated_at, ticket_ids = excluded.ticket_ids",
    )
    .bind(column(reservations, |r| r.stream_id.clone()))
    .bind(column(reservations, |r| r.reservation_id.0.to_string()))
    .bind(column(reservations, |r| r.customer_id.as_str().to_owned()))
    .bind(column(reservations, |r| r.show_id.0.to_string()))
    .bind(column(reservations, |r| r.section.as_str().to_owned()))
    .bind(column(reservations, |r| i64::from(r.quantity)))
    .bind(column(reservations, |r| r.amount.amount_minor))
    .bind(column(reservations, |r| {
        r.amount.currency.as_str().to_owned()
    }))
    .bind(column(reservations, |r| d::state_name(r.state)))
    .bind(column(reservations, |r| r.placed_at))
    .bind(column(reservations, |r| r.expires_at))
    .bind(column(reservations, |r| r.paid_at))
    .bind(column(reservations, |r| r.refunded_at))
    .bind(column(reservations, |r| r.updated_at))
    .bind(column(reservations, d::ticket_ids))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn write_tickets(
    tx: &mut sqlx::PgConnection,
    tickets: &[TicketView],
) -> Result<(), ReadModelError> {
    if tickets.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into read_tickets (stream_id, ticket_id, reservation_id, show_id, \
         section, holder, generation, held_since, admitted_at, gate, updated_at) \
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                              $6::text[], $7::bigint[], $8::timestamptz[], \
                              $9::timestamptz[], $10::text[], $11::timestamptz[]) \
         on conflict (stream_id) do update set holder = excluded.holder, \
         generation = excluded.generation, held_since = excluded.held_since, \
         admitted_at = excluded.admitted_at, gate = excluded.gate, \
         updated_at = excluded.updated_at",
    )
    .bind(column(tickets, |t| t.stream_id.clone()))
    .bind(column(tickets, |t| t.ticket_id.0.to_string()))
    .bind(column(tickets, |t| t.reservation_id.0.to_string()))
    .bind(column(tickets, |t| t.show_id.0.to_string()))
    .bind(column(tickets, |t| t.section.as_str().to_owned()))
    .bind(column(tickets, |t| t.holder.as_str().to_owned()))
    .bind(column(tickets, |t| i64::from(t.generation)))
    .bind(column(tickets, |t| t.held_since))
    .bind(column(tickets, |t| t.admitted_at))
    .bind(column(tickets, |t| t.gate.clone()))
    .bind(column(tickets, |t| t.updated_at))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait]
impl ReadModelStore for PostgresReadModels {
    async fn applied_versions(
        &self,
        stream_ids: &[String],
    ) -> Result<BTreeMap<String, StreamVersion>, ReadModelError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select stream_id, version from projection_applied where stream_id = any($1)",
        )
        .bind(unique(stream_ids))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(stream_id, version)| Ok((stream_id, d::version(version)?)))
            .collect()
    }

    async fn load(&self, stream_ids: &[String]) -> Result<LoadedRows, ReadModelError> {
        let ids = unique(stream_ids);
        let sections = sqlx::query(&format!(
            "select {SECTION_COLUMNS} where a.stream_id = any($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(section_row)
        .collect::<Result<Vec<_>, _>>()?;
        let reservations = sqlx::query(&format!(
            "select {RESERVATION_COLUMNS} where stream_id = any($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(reservation_row)
        .collect::<Result<Vec<_>, _>>()?;
        let tickets = sqlx::query(&format!(
            "select {TICKET_COLUMNS} from read_tickets t where t.stream_id = any($1)"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(LoadedRows {
            sections,
            reservations,
            tickets: rows(&tickets, ticket_row)?,
        })
    }

    #[tracing::instrument(skip_all, fields(streams = batch.applied.len()))]
    async fn write(&self, batch: &BatchWrite) -> Result<(), ReadModelError> {
        let mut tx = self.pool.begin().await?;
        move_applied(&mut tx, &batch.applied).await?;
        for s in &batch.sections {
            sqlx::query(
                "insert into read_section_availability (stream_id, show_id, section, capacity, \
                 sold, unit_price_minor, currency, holds) values ($1, $2, $3, $4, $5, $6, $7, $8) \
                 on conflict (stream_id) do update set capacity = excluded.capacity, \
                 sold = excluded.sold, unit_price_minor = excluded.unit_price_minor, \
                 currency = excluded.currency, holds = excluded.holds",
            )
            .bind(&s.stream_id)
            .bind(s.show_id.0.to_string())
            .bind(s.section.as_str())
            .bind(i64::from(s.capacity))
            .bind(i64::from(s.sold))
            .bind(s.unit_price.amount_minor)
            .bind(s.unit_price.currency.as_str())
            .bind(Json(&s.holds))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into read_section_sales (stream_id, show_id, section, currency, \
                 tickets_sold, gross_minor, refunds_count, refunds_minor) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8) \
                 on conflict (stream_id) do update set currency = excluded.currency, \
                 tickets_sold = excluded.tickets_sold, gross_minor = excluded.gross_minor, \
                 refunds_count = excluded.refunds_count, refunds_minor = excluded.refunds_minor",
            )
            .bind(&s.stream_id)
            .bind(s.show_id.0.to_string())
            .bind(s.section.as_str())
            .bind(s.unit_price.currency.as_str())
            .bind(s.sales.tickets_sold)
            .bind(s.sales.gross_minor)
            .bind(s.sales.refunds_count)
            .bind(s.sales.refunds_minor)
            .execute(&mut *tx)
            .await?;
        }
        for (key, delta) in &batch.hours {
            sqlx::query(
                "insert into read_sales_by_hour (show_id, section, hour, currency, tickets_sold, \
                 gross_minor, refunds_count, refunds_minor) values ($1, $2, $3, $4, $5, $6, $7, $8) \
                 on conflict (show_id, section, hour) do update set \
                 tickets_sold = read_sales_by_hour.tickets_sold + excluded.tickets_sold, \
                 gross_minor = read_sales_by_hour.gross_minor + excluded.gross_minor, \
                 refunds_count = read_sales_by_hour.refunds_count + excluded.refunds_count, \
                 refunds_minor = read_sales_by_hour.refunds_minor + excluded.refunds_minor",
            )
            .bind(&key.show_id)
            .bind(&key.section)
            .bind(key.hour)
            .bind(delta.currency.as_str())
            .bind(delta.totals.tickets_sold)
            .bind(delta.totals.gross_minor)
            .bind(delta.totals.refunds_count)
            .bind(delta.totals.refunds_minor)
            .execute(&mut *tx)
            .await?;
        }
        write_reservations(&mut tx, &batch.reservations).await?;
        write_tickets(&mut tx, &batch.tickets).await?;
        for r in &batch.revocations {
            sqlx::query(
                "insert into read_ticket_revocations (ticket_id, stream_id, reservation_id, \
                 show_id, section, reason, revoked_at) values ($1, $2, $3, $4, $5, $6, $7) \
                 on conflict (ticket_id) do update set reason = excluded.reason, \
                 revoked_at = excluded.revoked_at",
            )
            .bind(r.ticket_id.0.to_string())
            .bind(&r.stream_id)
            .bind(r.reservation_id.0.to_string())
            .bind(r.show_id.0.to_string())
            .bind(r.section.as_str())
            .bind(d::reason_name(r.reason))
            .bind(r.revoked_at)
            .execute(&mut *tx)
            .await?;
        }
        for letter in &batch.dead_letters {
            sqlx::query(
                "insert into projection_dead_letters (stream_id, version, event_type, \
                 schema_version, payload, error) values ($1, $2, $3, $4, $5, $6) \
                 on conflict (stream_id, version) do nothing",
            )
            .bind(&letter.stream_id)
            .bind(d::db_version(letter.version)?)
            .bind(&letter.event_type)
            .bind(i64::from(letter.schema_version))
            .bind(&letter.payload)
            .bind(&letter.error)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((name, position)) = &batch.checkpoint {
            sqlx::query(
                "insert into projection_checkpoint (name, transaction_id, position) \
                 values ($1, $2, $3) on conflict (name) do update set \
                 transaction_id = excluded.transaction_id, position = excluded.position",
            )
            .bind(name)
            .bind(position.transaction_id)
            .bind(position.position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn clear(&self) -> Result<(), ReadModelError> {
        let mut tx = self.pool.begin().await?;
        for table in d::TABLES {
            sqlx::query(&format!("delete from {table}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<GlobalPosition>, ReadModelError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "select transaction_id, position from projection_checkpoint where name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(transaction_id, position)| GlobalPosition {
            transaction_id,
            position,
        }))
    }

    async fn section_availability(
        &self,
        show_id: ShowId,
        now: Timestamp,
    ) -> Result<Vec<SectionAvailability>, ReadModelError> {
        let rows = sqlx::query(&format!(
            "select {SECTION_COLUMNS} where a.show_id = $1 order by a.section"
        ))
        .bind(show_id.0.to_string())
        .fetch_all(&self.pool)
        .await?;
        let views = rows
            .iter()
            .map(section_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(d::sections_availability(&views, now))
    }

    async fn show_sales(&self, show_id: ShowId) -> Result<Option<ShowSales>, ReadModelError> {
        let show = show_id.0.to_string();
        let sections = sqlx::query(
            "select section, currency, tickets_sold, gross_minor, refunds_count, refunds_minor \
             from read_section_sales where show_id = $1 order by section",
        )
        .bind(&show)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            d::section_sales(
                row.try_get("section")?,
                row.try_get("currency")?,
                sales(row)?,
            )
        })
        .collect::<Result<Vec<_>, ReadModelError>>()?;
        let hours = sqlx::query(
            "select hour, sum(tickets_sold)::bigint as tickets_sold, sum(gross_minor)::bigint as gross_minor, \
             sum(refunds_count)::bigint as refunds_count, \
             sum(refunds_minor)::bigint as refunds_minor \
             from read_sales_by_hour where show_id = $1 group by hour order by hour",
        )
        .bind(&show)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("hour")?, sales(row)?)))
        .collect::<Result<Vec<_>, ReadModelError>>()?;
        Ok(ShowSales::assemble(show_id, sections, hours))
    }

    async fn customer_reservations(
        &self,
        customer_id: &CustomerId,
        limit: usize,
        cursor: Option<ReservationCursor>,
    ) -> Result<ReservationPage, ReadModelError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match cursor {
            None => {
                sqlx::query(&format!(
                    "select {RESERVATION_COLUMNS} where customer_id = $1 \
                     order by placed_at desc, reservation_id desc limit $2"
                ))
                .bind(customer_id.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Some(cursor) => {
                let placed_at = cursor.placed_at;
                sqlx::query(&format!(
                    "select {RESERVATION_COLUMNS} where customer_id = $1 \
                     and (placed_at < $2 or (placed_at = $3 and reservation_id < $4)) \
                     order by placed_at desc, reservation_id desc limit $5"
                ))
                .bind(customer_id.as_str())
                .bind(placed_at)
                .bind(placed_at)
                .bind(cursor.reservation_id.0.to_string())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let reservations = rows
            .iter()
            .map(reservation_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(d::page(reservations, limit))
    }

    async fn revoked_tickets(
        &self,
        show_id: ShowId,
        since: Option<Timestamp>,
    ) -> Result<Vec<RevokedTicket>, ReadModelError> {
        let show = show_id.0.to_string();
        let revocations = sqlx::query(&format!(
            "select {REVOCATION_COLUMNS} where show_id = $1 \
             and ($2::timestamptz is null or revoked_at > $2)"
        ))
        .bind(&show)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let transferred = sqlx::query(&format!(
            "select {TICKET_COLUMNS} from read_tickets t where t.show_id = $1 \
             and t.generation > 0 and ($2::timestamptz is null or t.held_since > $2)"
        ))
        .bind(&show)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(d::revoked_list(
            rows(&revocations, revocation_row)?,
            rows(&transferred, ticket_row)?,
            since,
        ))
    }

    async fn show_admissions(
        &self,
        show_id: ShowId,
    ) -> Result<Vec<SectionAdmissions>, ReadModelError> {
        let counts: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "select t.section, count(*), count(t.admitted_at), \
             count(r.ticket_id) filter (where t.admitted_at is null) \
             from read_tickets t left join read_ticket_revocations r on r.ticket_id = t.ticket_id \
             where t.show_id = $1 group by t.section order by t.section",
        )
        .bind(show_id.0.to_string())
        .fetch_all(&self.pool)
        .await?;
        counts.into_iter().map(d::section_admissions).collect()
    }

    async fn holder_tickets(
        &self,
        holder: &CustomerId,
        limit: usize,
        cursor: Option<TicketCursor>,
    ) -> Result<TicketPage, ReadModelError> {
        let rows = sqlx::query(&format!(
            "select {TICKET_COLUMNS}, r.reason from read_tickets t \
             left join read_ticket_revocations r on r.ticket_id = t.ticket_id \
             where t.holder = $1 and ($2::timestamptz is null or t.held_since < $2 \
             or (t.held_since = $2 and t.ticket_id < $3)) \
             order by t.held_since desc, t.ticket_id desc limit $4"
        ))
        .bind(holder.as_str())
        .bind(cursor.map(|c| c.held_since))
        .bind(cursor.map(|c| c.ticket_id.0.to_string()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let tickets = rows
            .iter()
            .map(|row| d::held_ticket(ticket_row(row)?, row.try_get("reason")?))
            .collect::<Result<Vec<_>, ReadModelError>>()?;
        Ok(d::ticket_page(tickets, limit))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, ReadModelError> {
        let rows = sqlx::query(
            "select id, stream_id, version, event_type, schema_version, payload, error, \
             recorded_at from projection_dead_letters order by id limit $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredDeadLetter {
                    id: row.try_get("id")?,
                    recorded_at: row.try_get("recorded_at")?,
                    letter: DeadLetter {
                        stream_id: row.try_get("stream_id")?,
                        version: d::version(row.try_get("version")?)?,
                        event_type: row.try_get("event_type")?,
                        schema_version: d::schema_version(row.try_get("schema_version")?)?,
                        payload: row.try_get("payload")?,
                        error: row.try_get("error")?,
                    },
                })
            })
            .collect()
    }

    async fn dump(&self) -> Result<ReadModelDump, ReadModelError> {
        let sections = sqlx::query(&format!("select {SECTION_COLUMNS} order by a.stream_id"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(section_row)
            .collect::<Result<Vec<_>, _>>()?;
        let hours = sqlx::query(
            "select show_id, section, hour, tickets_sold, gross_minor, refunds_count, \
             refunds_minor from read_sales_by_hour order by show_id, section, hour",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                HourKey {
                    show_id: row.try_get("show_id")?,
                    section: row.try_get("section")?,
                    hour: row.try_get("hour")?,
                },
                sales(row)?,
            ))
        })
        .collect::<Result<Vec<_>, ReadModelError>>()?;
        let reservations = sqlx::query(&format!("select {RESERVATION_COLUMNS} order by stream_id"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(reservation_row)
            .collect::<Result<Vec<_>, _>>()?;
        let applied = sqlx::query_as::<_, (String, i64)>(
            "select stream_id, version from projection_applied order by stream_id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(stream, version)| Ok((stream, d::version(version)?)))
        .collect::<Result<Vec<_>, ReadModelError>>()?;
        let tickets = sqlx::query(&format!("select {TICKET_COLUMNS} from read_tickets t"))
            .fetch_all(&self.pool)
            .await?;
        let revocations = sqlx::query(&format!("select {REVOCATION_COLUMNS}"))
            .fetch_all(&self.pool)
            .await?;
        let letters = self.dead_letters(usize::MAX >> 1).await?;
        Ok(d::dump(
            sections,
            hours,
            reservations,
            (
                rows(&tickets, ticket_row)?,
                rows(&revocations, revocation_row)?,
            ),
            applied,
            letters,
        ))
    }
}
