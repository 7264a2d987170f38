//! The read models: what the projector folds the events into and what the API, the
//! queries function and `ticketing serve` read (available seats, sales analytics,
//! customer history, tickets at the door), and where they are kept.
//!
//! Read models are for display only; no decision reads them (docs/architecture.md).
//! The SQL read models live beside the events, in the same database, created by the
//! store's migrations (`0005_read_models.sql`); the DynamoDB ones in tables of their
//! own.
//!
//! Layout:
//! - `lib.rs`: the [`ReadModelStore`] contract and its query types
//!   ([`ShowSales`], [`ReservationPage`], [`TicketPage`], ...; a section's seats are
//!   [`ticketing_domain::SectionAvailability`], which the command layer also answers),
//!   and opening the configured store ([`connect_with_read_models`],
//!   [`ReadModelConfig`], [`connect_configured`]).
//! - [`model`]: the rows, what a store loads for a batch ([`LoadedRows`]) and writes
//!   ([`BatchWrite`]).
//! - `error.rs`: [`ReadModelError`], [`ConnectError`].
//! - `rows.rs`: turning stored columns back into rows and answers, for every backend.
//! - [`sqlite`], [`postgres`]: the read models beside the events.
//! - `dynamodb` (feature `dynamodb`): the read models in DynamoDB tables
//!   ([ADR 11](../docs/adr/0011-dynamodb-read-models.md)).
//! - `testing` (feature `testing`): read models that fail on purpose and, with
//!   `dynamodb`, DynamoDB tables of a test's own, for this and other crates' tests.
//!
//! The fold that writes them, and the live and rebuild paths, are `ticketing-projector`.
#![forbid(unsafe_code)]

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod error;
pub mod model;
pub mod postgres;
mod rows;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use ticketing_domain::ticket::Revocation;
use ticketing_domain::{
    CustomerId, Money, ReservationId, SectionAvailability, SectionName, ShowId, TicketId, Timestamp,
};
use ticketing_store::sqlite::SqliteStore;
use ticketing_store::{
    Backend, EventStore, GlobalPosition, StoreConfig, StoreError, StreamVersion,
    DEFAULT_SQLITE_PATH,
};

pub use error::{ConnectError, ReadModelError};
pub use model::{
    BatchWrite, DeadLetter, HoldView, HourKey, LoadedRows, ReservationView, SalesTotals,
    SectionHolds, SectionView, TicketRevocationView, TicketView,
};

/// A section's (or an hour's) sales in money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesFigures {
    /// Tickets sold and not refunded.
    pub tickets_sold: i64,
    /// Everything ever sold, refunded or not.
    pub gross_revenue: Money,
    pub refunds_count: i64,
    pub refunds_amount: Money,
    /// Gross revenue minus refunds: what the tickets currently sold are worth.
    pub net_revenue: Money,
}

impl SalesFigures {
    fn from_totals(totals: SalesTotals, currency: ticketing_domain::Currency) -> Self {
        let money = |amount_minor| Money {
            amount_minor,
            currency,
        };
        Self {
            tickets_sold: totals.tickets_sold,
            gross_revenue: money(totals.gross_minor),
            refunds_count: totals.refunds_count,
            refunds_amount: money(totals.refunds_minor),
            net_revenue: money(totals.gross_minor - totals.refunds_minor),
        }
    }
}

/// A show's sales, in total, by section and by hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowSales {
    pub show_id: ShowId,
    pub total: SalesFigures,
    /// By section name.
    pub by_section: Vec<(SectionName, SalesFigures)>,
    /// By hour (the events' recording time, truncated), oldest first, every section
    /// together; hours without sales or refunds are absent.
    pub by_hour: Vec<(Timestamp, SalesFigures)>,
}

impl ShowSales {
    /// Adds up per-section and per-hour totals in the show's currency (the first
    /// section's; a show has one currency).
    fn assemble(
        show_id: ShowId,
        sections: Vec<(SectionName, ticketing_domain::Currency, SalesTotals)>,
        hours: Vec<(Timestamp, SalesTotals)>,
    ) -> Option<Self> {
        let currency = sections.first()?.1;
        // A section split into buckets has a row per bucket: one section, added up.
        let mut merged: Vec<(SectionName, ticketing_domain::Currency, SalesTotals)> = Vec::new();
        for (name, currency, totals) in sections {
            match merged.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, _, sum)) => sum.add(totals),
                None => merged.push((name, currency, totals)),
            }
        }
        let sections = merged;
        let mut total = SalesTotals::default();
        for (_, _, t) in &sections {
            total.add(*t);
        }
        Some(Self {
            show_id,
            total: SalesFigures::from_totals(total, currency),
            by_section: sections
                .into_iter()
                .map(|(name, currency, t)| (name, SalesFigures::from_totals(t, currency)))
                .collect(),
            by_hour: hours
                .into_iter()
                .map(|(hour, t)| (hour, SalesFigures::from_totals(t, currency)))
                .collect(),
        })
    }
}

/// Where a page of a customer's history ends: pass it back for the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationCursor {
    pub placed_at: Timestamp,
    pub reservation_id: ReservationId,
}

/// A page of a customer's purchases, newest first (by `placed_at`, then id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationPage {
    pub reservations: Vec<ReservationView>,
    /// Present when there may be more.
    pub next: Option<ReservationCursor>,
}

/// A ticket that scanners must refuse, as an offline scanner downloads the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedTicket {
    pub ticket_id: TicketId,
    pub reason: Revocation,
    /// When its purchase was refunded or cancelled, or when it was last transferred.
    pub revoked_at: Timestamp,
    /// For a transferred ticket, the generation of its one valid code: a code of any
    /// other generation is refused. `None`: every code of the ticket is refused.
    pub valid_generation: Option<u32>,
}

/// A section's tickets at the door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionAdmissions {
    pub section: SectionName,
    /// Every ticket issued.
    pub issued: u64,
    /// Let in (an admission stays counted if its purchase is refunded afterwards).
    pub admitted: u64,
    /// Revoked by a refund or a cancellation before they were used.
    pub revoked: u64,
    /// Valid and not let in yet: who is still to come.
    pub remaining: u64,
}

/// A ticket in its holder's history, with whether its purchase revoked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTicket {
    pub ticket: TicketView,
    pub revoked: Option<Revocation>,
}

/// Where a page of a holder's tickets ends: pass it back for the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCursor {
    pub held_since: Timestamp,
    pub ticket_id: TicketId,
}

/// A page of a holder's tickets, newest first (by `held_since`, then id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketPage {
    pub tickets: Vec<HeldTicket>,
    /// Present when there may be more.
    pub next: Option<TicketCursor>,
}

/// A dead letter as stored, with its id and when it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub recorded_at: Timestamp,
    pub letter: DeadLetter,
}

/// Every row of every read-model table, in key order: what tests and operators
/// compare (two dumps of the same events are equal). Dead letters without their id
/// and recording time, which say when, not what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadModelDump {
    pub sections: Vec<SectionView>,
    pub hours: Vec<(HourKey, SalesTotals)>,
    pub reservations: Vec<ReservationView>,
    pub tickets: Vec<TicketView>,
    pub revocations: Vec<TicketRevocationView>,
    pub applied: Vec<(String, StreamVersion)>,
    pub dead_letters: Vec<DeadLetter>,
}

/// Where the read models are kept: the contract both backends implement and one test
/// suite checks.
#[async_trait]
pub trait ReadModelStore: Send + Sync {
    /// The last applied version of each of `stream_ids` that has one.
    ///
    /// # Errors
    /// Infrastructure failures.
    async fn applied_versions(
        &self,
        stream_ids: &[String],
    ) -> Result<BTreeMap<String, StreamVersion>, ReadModelError>;

    /// The stored section, purchase and ticket rows of `stream_ids` (streams without
    /// a row are left out).
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`] for an unreadable row.
    async fn load(&self, stream_ids: &[String]) -> Result<LoadedRows, ReadModelError>;

    /// Writes a batch in ONE transaction: the rows, the hourly deltas, the dead
    /// letters, the checkpoint, and the new applied versions, each checked against
    /// the version the batch started from.
    ///
    /// # Errors
    /// [`ReadModelError::Conflict`] when a stream's applied version is no longer the
    /// one the batch started from (nothing is written); infrastructure failures.
    async fn write(&self, batch: &BatchWrite) -> Result<(), ReadModelError>;

    /// How many hourly sales buckets one stream's part of a [`BatchWrite`] may
    /// touch, for a store whose writes are bounded per stream (one DynamoDB
    /// transaction per stream); `None`: any number. The projector splits a batch
    /// into several writes, in version order, to stay within it.
    fn max_hours_per_stream(&self) -> Option<usize> {
        None
    }

    /// Empties every read model, the applied versions, the dead letters and the
    /// checkpoints, in one transaction.
    ///
    /// # Errors
    /// Infrastructure failures.
    async fn clear(&self) -> Result<(), ReadModelError>;

    /// The stored checkpoint `name`, if any.
    ///
    /// # Errors
    /// Infrastructure failures.
    async fn checkpoint(&self, name: &str) -> Result<Option<GlobalPosition>, ReadModelError>;

    /// Every section of a show with its seats at `now`, by section name. Empty for
    /// a show the read models do not know (yet).
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn section_availability(
        &self,
        show_id: ShowId,
        now: Timestamp,
    ) -> Result<Vec<SectionAvailability>, ReadModelError>;

    /// A show's sales, or `None` for a show the read models do not know (yet).
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn show_sales(&self, show_id: ShowId) -> Result<Option<ShowSales>, ReadModelError>;

    /// Up to `limit` of a customer's purchases, newest first, after `cursor`.
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn customer_reservations(
        &self,
        customer_id: &CustomerId,
        limit: usize,
        cursor: Option<ReservationCursor>,
    ) -> Result<ReservationPage, ReadModelError>;

    /// The tickets of a show that scanners must refuse, revoked after `since` (all
    /// of them without it), oldest revocation first: those of refunded or cancelled
    /// purchases, and the old codes of transferred tickets.
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn revoked_tickets(
        &self,
        show_id: ShowId,
        since: Option<Timestamp>,
    ) -> Result<Vec<RevokedTicket>, ReadModelError>;

    /// A show's tickets at the door, by section name (sections without tickets are
    /// absent).
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn show_admissions(
        &self,
        show_id: ShowId,
    ) -> Result<Vec<SectionAdmissions>, ReadModelError>;

    /// Up to `limit` of the tickets `holder` holds now (bought or received), newest
    /// first, after `cursor`.
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn holder_tickets(
        &self,
        holder: &CustomerId,
        limit: usize,
        cursor: Option<TicketCursor>,
    ) -> Result<TicketPage, ReadModelError>;

    /// The dead letters, oldest first.
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, ReadModelError>;

    /// Every row of every table; see [`ReadModelDump`]. For tests and checks, not
    /// for serving.
    ///
    /// # Errors
    /// Infrastructure failures; [`ReadModelError::Corrupt`].
    async fn dump(&self) -> Result<ReadModelDump, ReadModelError>;
}

/// The configured event store and its read models, sharing ONE connection pool (the
/// read-model tables live in the same database): connects as
/// [`ticketing_store::connect`] does, SQLite migrated on open, PostgreSQL lazily.
///
/// # Errors
/// As [`ticketing_store::connect`].
pub async fn connect_with_read_models(
    config: &StoreConfig,
) -> Result<(Arc<dyn EventStore>, Arc<dyn ReadModelStore>), StoreError> {
    if config.max_connections == 0 {
        return Err(StoreError::Invalid(
            "the connection pool needs at least one connection".into(),
        ));
    }
    match (config.backend()?, config.database_url.as_deref()) {
        (Backend::Postgres, Some(url)) => {
            let store = ticketing_store::open_postgres(url, config.max_connections).await?;
            let read_models = Arc::new(postgres::PostgresReadModels::new(store.pool().clone()));
            Ok((Arc::new(store), read_models))
        }
        (_, url) => {
            let location = url.unwrap_or(DEFAULT_SQLITE_PATH);
            let store = SqliteStore::open_with(location, config.max_connections).await?;
            let read_models = Arc::new(sqlite::SqliteReadModels::new(store.pool().clone()));
            Ok((Arc::new(store), read_models))
        }
    }
}

/// Where the read models are kept, from `READ_MODEL_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
// Read once at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ReadModelConfig {
    /// `sql` (the default): beside the events, in the event store's database.
    SameDatabase,
    /// `dynamodb`: in DynamoDB tables (feature `dynamodb`), so that the query
    /// function reads them without a database connection.
    #[cfg(feature = "dynamodb")]
    DynamoDb(dynamodb::DynamoDbConfig),
}

impl ReadModelConfig {
    /// `READ_MODEL_STORE` (`sql` or `dynamodb`) and, for DynamoDB, its settings
    /// ([`dynamodb::DynamoDbConfig::from_env`]).
    ///
    /// # Errors
    /// [`ConnectError::Invalid`] for another value, for `dynamodb` in a build without
    /// the `dynamodb` feature, or for malformed DynamoDB settings.
    pub fn from_env() -> Result<Self, ConnectError> {
        let value = std::env::var("READ_MODEL_STORE").unwrap_or_default();
        match value.trim() {
            "" | "sql" => Ok(Self::SameDatabase),
            #[cfg(feature = "dynamodb")]
            "dynamodb" => Ok(Self::DynamoDb(dynamodb::DynamoDbConfig::from_env()?)),
            #[cfg(not(feature = "dynamodb"))]
            "dynamodb" => Err(ConnectError::Invalid {
                name: "READ_MODEL_STORE",
                reason: "this build has no DynamoDB read models (feature `dynamodb` of \
                         ticketing-read-models)"
                    .into(),
            }),
            other => Err(ConnectError::Invalid {
                name: "READ_MODEL_STORE",
                reason: format!("{other:?} is neither `sql` nor `dynamodb`"),
            }),
        }
    }
}

/// The configured event store and read models: [`connect_with_read_models`] for
/// [`ReadModelConfig::SameDatabase`]; else the event store alone and the read models
/// where `read_models` says.
///
/// # Errors
/// As [`ticketing_store::connect`].
pub async fn connect_configured(
    store: &StoreConfig,
    read_models: &ReadModelConfig,
) -> Result<(Arc<dyn EventStore>, Arc<dyn ReadModelStore>), ConnectError> {
    match read_models {
        ReadModelConfig::SameDatabase => Ok(connect_with_read_models(store).await?),
        #[cfg(feature = "dynamodb")]
        ReadModelConfig::DynamoDb(config) => {
            let events = ticketing_store::connect(store).await?;
            let read_models = dynamodb::DynamoDbReadModels::connect(config).await;
            Ok((events, Arc::new(read_models)))
        }
    }
}

/// Deduplicated stream ids, for the backends' `IN` lists.
pub(crate) fn unique(stream_ids: &[String]) -> Vec<String> {
    stream_ids
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
