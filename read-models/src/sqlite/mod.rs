//! The read models in the embedded SQLite file, beside the events (the store's
//! `migrations/sqlite/0005_read_models.sql`).
//!
//! Writes run in a `BEGIN IMMEDIATE` transaction, like the store's appends, so that a
//! batch waits for the file's write lock up front instead of failing half-way.
//! Instants are RFC 3339 UTC text with six fractional digits (text order is time
//! order), JSON is text, ids are hyphenated text.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::sqlite::{SqlitePool, SqliteRow};
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
use crate::rows::{instant, opt_instant, parse_instant};

/// The read models in an SQLite database whose schema the store's migrations made
/// (open it with `ticketing_store::sqlite::SqliteStore` and pass its pool).
#[derive(Debug, Clone)]
pub struct SqliteReadModels {
    pool: SqlitePool,
}

impl SqliteReadModels {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

const SECTION_COLUMNS: &str = "a.stream_id, a.show_id, a.section, a.capacity, a.sold, \
     a.unit_price_minor, a.currency, a.holds, s.tickets_sold, s.gross_minor, \
     s.refunds_count, s.refunds_minor \
     from read_section_availability a join read_section_sales s on s.stream_id = a.stream_id";

const RESERVATION_COLUMNS: &str = "stream_id, reservation_id, customer_id, show_id, section, \
     quantity, amount_minor, currency, state, placed_at, expires_at, paid_at, refunded_at, \
     updated_at, ticket_ids from read_customer_reservations";

const TICKET_COLUMNS: &str = "t.stream_id, t.ticket_id, t.reservation_id, t.show_id, \
     t.section, t.holder, t.generation, t.held_since, t.admitted_at, t.gate, t.updated_at";

const REVOCATION_COLUMNS: &str = "stream_id, ticket_id, reservation_id, show_id, section, \
     reason, revoked_at from read_ticket_revocations";

fn section_row(row: &SqliteRow) -> Result<SectionView, ReadModelError> {
    let holds: String = row.try_get("holds")?;
    d::section(
        d::SectionColumns {
            stream_id: row.try_get("stream_id")?,
            show_id: row.try_get("show_id")?,
            section: row.try_get("section")?,
            capacity: row.try_get("capacity")?,
            sold: row.try_get("sold")?,
            unit_price_minor: row.try_get("unit_price_minor")?,
            currency: row.try_get("currency")?,
            holds: serde_json::from_str(&holds)
                .map_err(|e| ReadModelError::Corrupt(format!("holds: {e}")))?,
        },
        sales(row)?,
    )
}

fn sales(row: &SqliteRow) -> Result<SalesTotals, ReadModelError> {
    Ok(SalesTotals {
        tickets_sold: row.try_get("tickets_sold")?,
        gross_minor: row.try_get("gross_minor")?,
        refunds_count: row.try_get("refunds_count")?,
        refunds_minor: row.try_get("refunds_minor")?,
    })
}

fn reservation_row(row: &SqliteRow) -> Result<ReservationView, ReadModelError> {
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
        placed_at: parse_instant(row.try_get("placed_at")?)?,
        expires_at: parse_instant(row.try_get("expires_at")?)?,
        paid_at: opt_instant(row.try_get("paid_at")?)?,
        refunded_at: opt_instant(row.try_get("refunded_at")?)?,
        updated_at: parse_instant(row.try_get("updated_at")?)?,
        ticket_ids: row.try_get("ticket_ids")?,
    })
}

fn ticket_row(row: &SqliteRow) -> Result<TicketView, ReadModelError> {
    d::ticket(d::TicketColumns {
        stream_id: row.try_get("stream_id")?,
        ticket_id: row.try_get("ticket_id")?,
        reservation_id: row.try_get("reservation_id")?,
        show_id: row.try_get("show_id")?,
        section: row.try_get("section")?,
        holder: row.try_get("holder")?,
        generation: row.try_get("generation")?,
        held_since: parse_instant(row.try_get("held_since")?)?,
        admitted_at: opt_instant(row.try_get("admitted_at")?)?,
        gate: row.try_get("gate")?,
        updated_at: parse_instant(row.try_get("updated_at")?)?,
    })
}

fn revocation_row(row: &SqliteRow) -> Result<TicketRevocationView, ReadModelError> {
    d::revocation(d::RevocationColumns {
        stream_id: row.try_get("stream_id")?,
        ticket_id: row.try_get("ticket_id")?,
        reservation_id: row.try_get("reservation_id")?,
        show_id: row.try_get("show_id")?,
        section: row.try_get("section")?,
        reason: row.try_get("reason")?,
        revoked_at: parse_instant(row.try_get("revoked_at")?)?,
    })
}

fn rows<T>(
    rows: &[SqliteRow],
    row: fn(&SqliteRow) -> Result<T, ReadModelError>,
) -> Result<Vec<T>, ReadModelError> {
    rows.iter().map(row).collect()
}

#[async_trait]
impl ReadModelStore for SqliteReadModels {
    async fn applied_versions(
        &self,
        stream_ids: &[String],
    ) -> Result<BTreeMap<String, StreamVersion>, ReadModelError> {
        let mut applied = BTreeMap::new();
        let mut conn = self.pool.acquire().await?;
        for stream_id in unique(stream_ids) {
            let version: Option<i64> =
                sqlx::query_scalar("select version from projection_applied where stream_id = ?")
                    .bind(&stream_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(version) = version {
                applied.insert(stream_id, d::version(version)?);
            }
        }
        Ok(applied)
    }

    async fn load(&self, stream_ids: &[String]) -> Result<LoadedRows, ReadModelError> {
        let mut loaded = LoadedRows::default();
        let mut conn = self.pool.acquire().await?;
        for stream_id in unique(stream_ids) {
            let section = sqlx::query(&format!("select {SECTION_COLUMNS} where a.stream_id = ?"))
                .bind(&stream_id)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = section {
                loaded.sections.push(section_row(&row)?);
                continue;
            }
            let ticket = sqlx::query(&format!(
                "select {TICKET_COLUMNS} from read_tickets t where t.stream_id = ?"
            ))
            .bind(&stream_id)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = ticket {
                loaded.tickets.push(ticket_row(&row)?);
                continue;
            }
            let reservation =
                sqlx::query(&format!("select {RESERVATION_COLUMNS} where stream_id = ?"))
                    .bind(&stream_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(row) = reservation {
                loaded.reservations.push(reservation_row(&row)?);
            }
        }
        Ok(loaded)
    }

    #[tracing::instrument(skip_all, fields(streams = batch.applied.len()))]
    async fn write(&self, batch: &BatchWrite) -> Result<(), ReadModelError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (stream_id, before, after) in &batch.applied {
            let moved = if *before == 0 {
                sqlx::query(
                    "insert into projection_applied (stream_id, version) values (?, ?) \
                     on conflict (stream_id) do nothing",
                )
                .bind(stream_id)
                .bind(d::db_version(*after)?)
                .execute(&mut *tx)
                .await?
            } else {
                sqlx::query(
                    "update projection_applied set version = ? \
                     where stream_id = ? and version = ?",
                )
                .bind(d::db_version(*after)?)
                .bind(stream_id)
                .bind(d::db_version(*before)?)
                .execute(&mut *tx)
                .await?
            };
            if moved.rows_affected() != 1 {
                return Err(ReadModelError::Conflict {
                    stream_id: stream_id.clone(),
                });
            }
        }
        for s in &batch.sections {
            let holds = serde_json::to_string(&s.holds)
                .map_err(|e| ReadModelError::Corrupt(format!("holds: {e}")))?;
            sqlx::query(
                "insert into read_section_availability (stream_id, show_id, section, capacity, \
                 sold, unit_price_minor, currency, holds) values (?, ?, ?, ?, ?, ?, ?, ?) \
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
            .bind(holds)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into read_section_sales (stream_id, show_id, section, currency, \
                 tickets_sold, gross_minor, refunds_count, refunds_minor) \
                 values (?, ?, ?, ?, ?, ?, ?, ?) \
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
                 gross_minor, refunds_count, refunds_minor) values (?, ?, ?, ?, ?, ?, ?, ?) \
                 on conflict (show_id, section, hour) do update set \
                 tickets_sold = read_sales_by_hour.tickets_sold + excluded.tickets_sold, \
                 gross_minor = read_sales_by_hour.gross_minor + excluded.gross_minor, \
                 refunds_count = read_sales_by_hour.refunds_count + excluded.refunds_count, \
                 refunds_minor = read_sales_by_hour.refunds_minor + excluded.refunds_minor",
            )
            .bind(&key.show_id)
            .bind(&key.section)
            .bind(instant(key.hour))
            .bind(delta.currency.as_str())
            .bind(delta.totals.tickets_sold)
            .bind(delta.totals.gross_minor)
            .bind(delta.totals.refunds_count)
            .bind(delta.totals.refunds_minor)
            .execute(&mut *tx)
            .await?;
        }
        for r in &batch.reservations {
            sqlx::query(
                "insert into read_customer_reservations (stream_id, reservation_id, customer_id, \
                 show_id, section, quantity, amount_minor, currency, state, placed_at, \
                 expires_at, paid_at, refunded_at, updated_at, ticket_ids) \
                 values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 on conflict (stream_id) do update set state = excluded.state, \
                 paid_at = excluded.paid_at, refunded_at = excluded.refunded_at, \
                 updated_at = excluded.updated_at, ticket_ids = excluded.ticket_ids",
            )
            .bind(&r.stream_id)
            .bind(r.reservation_id.0.to_string())
            .bind(r.customer_id.as_str())
            .bind(r.show_id.0.to_string())
            .bind(r.section.as_str())
            .bind(i64::from(r.quantity))
            .bind(r.amount.amount_minor)
            .bind(r.amount.currency.as_str())
            .bind(d::state_name(r.state))
            .bind(instant(r.placed_at))
            .bind(instant(r.expires_at))
            .bind(r.paid_at.map(instant))
            .bind(r.refunded_at.map(instant))
            .bind(instant(r.updated_at))
            .bind(d::ticket_ids(r))
            .execute(&mut *tx)
            .await?;
        }
        for t in &batch.tickets {
            sqlx::query(
                "insert into read_tickets (stream_id, ticket_id, reservation_id, show_id, \
                 section, holder, generation, held_since, admitted_at, gate, updated_at) \
                 values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 on conflict (stream_id) do update set holder = excluded.holder, \
                 generation = excluded.generation, held_since = excluded.held_since, \
                 admitted_at = excluded.admitted_at, gate = excluded.gate, \
                 updated_at = excluded.updated_at",
            )
            .bind(&t.stream_id)
            .bind(t.ticket_id.0.to_string())
            .bind(t.reservation_id.0.to_string())
            .bind(t.show_id.0.to_string())
            .bind(t.section.as_str())
            .bind(t.holder.as_str())
            .bind(i64::from(t.generation))
            .bind(instant(t.held_since))
            .bind(t.admitted_at.map(instant))
            .bind(t.gate.as_deref())
            .bind(instant(t.updated_at))
            .execute(&mut *tx)
            .await?;
        }
        for r in &batch.revocations {
            sqlx::query(
                "insert into read_ticket_revocations (ticket_id, stream_id, reservation_id, \
                 show_id, section, reason, revoked_at) values (?, ?, ?, ?, ?, ?, ?) \
                 on conflict (ticket_id) do update set reason = excluded.reason, \
                 revoked_at = excluded.revoked_at",
            )
            .bind(r.ticket_id.0.to_string())
            .bind(&r.stream_id)
            .bind(r.reservation_id.0.to_string())
            .bind(r.show_id.0.to_string())
            .bind(r.section.as_str())
            .bind(d::reason_name(r.reason))
            .bind(instant(r.revoked_at))
            .execute(&mut *tx)
            .await?;
        }
        for letter in &batch.dead_letters {
            sqlx::query(
                "insert into projection_dead_letters (stream_id, version, event_type, \
                 schema_version, payload, error) values (?, ?, ?, ?, ?, ?) \
                 on conflict (stream_id, version) do nothing",
            )
            .bind(&letter.stream_id)
            .bind(d::db_version(letter.version)?)
            .bind(&letter.event_type)
            .bind(i64::from(letter.schema_version))
            .bind(letter.payload.to_string())
            .bind(&letter.error)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((name, position)) = &batch.checkpoint {
            sqlx::query(
                "insert into projection_checkpoint (name, transaction_id, position) \
                 values (?, ?, ?) on conflict (name) do update set \
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
            "select transaction_id, position from projection_checkpoint where name = ?",
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
            "select {SECTION_COLUMNS} where a.show_id = ? order by a.section"
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
             from read_section_sales where show_id = ? order by section",
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
            "select hour, sum(tickets_sold) as tickets_sold, sum(gross_minor) as gross_minor, \
             sum(refunds_count) as refunds_count, sum(refunds_minor) as refunds_minor \
             from read_sales_by_hour where show_id = ? group by hour order by hour",
        )
        .bind(&show)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((parse_instant(row.try_get("hour")?)?, sales(row)?)))
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
                    "select {RESERVATION_COLUMNS} where customer_id = ? \
                     order by placed_at desc, reservation_id desc limit ?"
                ))
                .bind(customer_id.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Some(cursor) => {
                let placed_at = instant(cursor.placed_at);
                sqlx::query(&format!(
                    "select {RESERVATION_COLUMNS} where customer_id = ? \
                     and (placed_at < ? or (placed_at = ? and reservation_id < ?)) \
                     order by placed_at desc, reservation_id desc limit ?"
                ))
                .bind(customer_id.as_str())
                .bind(&placed_at)
                .bind(&placed_at)
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
        let since_text = since.map(instant);
        let revocations = sqlx::query(&format!(
            "select {REVOCATION_COLUMNS} where show_id = ? and (? is null or revoked_at > ?)"
        ))
        .bind(&show)
        .bind(&since_text)
        .bind(&since_text)
        .fetch_all(&self.pool)
        .await?;
        let transferred = sqlx::query(&format!(
            "select {TICKET_COLUMNS} from read_tickets t where t.show_id = ? \
             and t.generation > 0 and (? is null or t.held_since > ?)"
        ))
        .bind(&show)
        .bind(&since_text)
        .bind(&since_text)
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
             sum(case when t.admitted_at is null and r.ticket_id is not null then 1 else 0 end) \
             from read_tickets t left join read_ticket_revocations r on r.ticket_id = t.ticket_id \
             where t.show_id = ? group by t.section order by t.section",
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
        let held_since = cursor.map(|c| instant(c.held_since));
        let rows = sqlx::query(&format!(
            "select {TICKET_COLUMNS}, r.reason from read_tickets t \
             left join read_ticket_revocations r on r.ticket_id = t.ticket_id \
             where t.holder = ? and (? is null or t.held_since < ? \
             or (t.held_since = ? and t.ticket_id < ?)) \
             order by t.held_since desc, t.ticket_id desc limit ?"
        ))
        .bind(holder.as_str())
        .bind(&held_since)
        .bind(&held_since)
        .bind(&held_since)
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
             recorded_at from projection_dead_letters order by id limit ?",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let payload: String = row.try_get("payload")?;
                Ok(StoredDeadLetter {
                    id: row.try_get("id")?,
                    recorded_at: parse_instant(row.try_get("recorded_at")?)?,
                    letter: DeadLetter {
                        stream_id: row.try_get("stream_id")?,
                        version: d::version(row.try_get("version")?)?,
                        event_type: row.try_get("event_type")?,
                        schema_version: d::schema_version(row.try_get("schema_version")?)?,
                        payload: serde_json::from_str(&payload)
                            .map_err(|e| ReadModelError::Corrupt(format!("payload: {e}")))?,
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
                    hour: parse_instant(row.try_get("hour")?)?,
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
