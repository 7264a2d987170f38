//! The projection core: folds batches of recorded events into the read models
//! (available seats, sales analytics, customer history), idempotently and gap-safely,
//! and rebuilds them from the event store's global order.
//!
//! Read models are for display only; no decision reads them (docs/architecture.md). Their
//! rows live beside the events, in the same database, created by the store's
//! migrations (`0005_read_models.sql`).
//!
//! Layout:
//! - `lib.rs`: the [`ReadModelStore`] contract, its query types, and [`Projector`]
//!   ([`Projector::apply_batch`], [`Projector::rebuild`], [`Projector::catch_up`]).
//! - [`model`]: the rows and the pure, in-memory fold of a batch ([`BatchFold`]).
//! - `error.rs`: [`ReadModelError`], [`ProjectionError`].
//! - `rows.rs`: turning stored columns back into rows, for both backends.
//! - [`sqlite`], [`postgres`]: the read models beside the events.
//! - `dynamodb` (feature `dynamodb`): the read models in DynamoDB tables
//!   ([ADR 11](../docs/adr/0011-dynamodb-read-models.md)).
//!
//! - [`live`]: the live path ([`run_live`] on an event source, [`follow_store`]).
//! - [`metrics`]: the Prometheus metrics.
//! - `commands` (feature `cli`): what the `projector` binary's commands do (the live
//!   run from the bus or the store, the rebuild with its progress bar, the metrics
//!   endpoint, the dead-letter and bus commands), each stopped by a shutdown future.
//! - `main.rs` (feature `cli`): the `projector` binary, which parses its command line
//!   and calls `commands::execute` with the process's shutdown signal.
//!
//! [`connect_with_read_models`] opens the configured store with its read models on one
//! pool, for the API and `ticketing serve`.
#![forbid(unsafe_code)]

#[cfg(feature = "cli")]
pub mod commands;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod error;
pub mod live;
pub mod metrics;
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
    CustomerId, Money, ReservationId, SectionName, ShowId, TicketId, Timestamp,
};
use ticketing_store::sqlite::SqliteStore;
use ticketing_store::{
    Backend, EventStore, GlobalPosition, RecordedEvent, StoreConfig, StoreError, StreamVersion,
    DEFAULT_SQLITE_PATH,
};

pub use error::{ConnectError, ProjectionError, ReadModelError};
pub use live::{follow_store, run_live, LiveReport, LiveSettings};
pub use metrics::ProjectorMetrics;
pub use model::{
    BatchFold, BatchWrite, DeadLetter, HoldView, HourKey, LoadedRows, ReservationView, SalesTotals,
    SectionHolds, SectionView, TicketRevocationView, TicketView,
};

/// The checkpoint that [`Projector::rebuild`] and [`Projector::catch_up`] keep in
/// `projection_checkpoint`.
pub const CHECKPOINT: &str = "read_models";

/// One section's seats at a reader's instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionAvailability {
    pub section: SectionName,
    pub capacity: u32,
    /// Seats in holds that have not expired at the reader's `now`.
    pub held: u32,
    pub sold: u32,
    pub available: u32,
    pub unit_price: Money,
}

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

/// What the current code makes of a dead letter's event, as
/// [`Projector::check_dead_letters`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum DeadLetterVerdict {
    /// The stored event decodes now: a rebuild applies it.
    Replayable,
    /// The stored event still does not decode.
    StillFailing { error: String },
    /// No such event in the store: a message from the bus that was not an event at
    /// all (`bus:` letters), or an event of another store. Nothing to replay; the
    /// letter is kept on the dead-letter topic.
    NotInStore,
}

/// One dead letter and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterCheck {
    pub id: i64,
    pub stream_id: String,
    pub version: StreamVersion,
    pub event_type: String,
    #[serde(flatten)]
    pub verdict: DeadLetterVerdict,
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
                         ticketing-projector)"
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

/// What one applied batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events applied (including dead-lettered ones and those read to fill gaps).
    pub applied: usize,
    /// Events skipped as already applied (or delivered twice in the batch). Events
    /// beyond a gap that the store could not fill are neither applied nor counted here:
    /// they wait for a later batch.
    pub duplicates: usize,
    /// Events read from the store to fill gaps.
    pub gap_filled: usize,
    pub dead_lettered: usize,
}

/// A batch folded in memory by [`Projector::prepare`], not written yet.
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    /// Usually one write; more when a stream's part would exceed the store's
    /// [`ReadModelStore::max_hours_per_stream`]. Written in order: the first holds
    /// every dead letter, the last the checkpoint.
    writes: Vec<BatchWrite>,
    events_dead_lettered: usize,
    outcome: BatchOutcome,
}

impl PreparedBatch {
    /// What writing it will have done.
    pub fn outcome(&self) -> BatchOutcome {
        self.outcome
    }

    /// The events of the batch that could not be decoded (not the poison messages
    /// given to [`Projector::prepare`]).
    pub fn dead_lettered_events(&self) -> &[DeadLetter] {
        &self.writes[0].dead_letters[..self.events_dead_lettered]
    }

    /// How many writes the batch takes (more than one only for a store that bounds
    /// a stream's part of a write).
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }
}

/// How far a rebuild or catch-up has come, after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub batches: u64,
    /// Events read from the global order so far.
    pub events: u64,
    /// The checkpoint stored with the last batch.
    pub position: GlobalPosition,
}

/// Applies events to the read models.
///
/// Rules (docs/adr/0009-read-models-and-projection.md):
/// - a batch's events are grouped by stream and applied in version order, whatever
///   order they came in;
/// - an event at or below its stream's applied version is a duplicate and skipped;
/// - an event beyond the applied version + 1 makes the projector read the missing
///   versions from the event store first;
/// - an undecodable event is dead-lettered and counts as applied;
/// - every touched row is written once, with the new applied versions, in one
///   transaction.
#[derive(Clone)]
pub struct Projector {
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
}

impl Projector {
    /// `store` is read to fill gaps and, by rebuild and catch-up, in the global order.
    pub fn new(store: Arc<dyn EventStore>, read_models: Arc<dyn ReadModelStore>) -> Self {
        Self { store, read_models }
    }

    /// The read models this projector writes.
    pub fn read_models(&self) -> &Arc<dyn ReadModelStore> {
        &self.read_models
    }

    /// Applies a batch of events, delivered in any order and possibly more than once.
    ///
    /// # Errors
    /// Store or read-model failures; nothing of the batch is written then, and
    /// applying it again is safe. [`ReadModelError::Conflict`] if another projector
    /// applied the same streams meanwhile.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply_batch(
        &self,
        events: Vec<RecordedEvent>,
    ) -> Result<BatchOutcome, ProjectionError> {
        self.apply(events, None).await
    }

    /// Folds a batch as [`Projector::apply_batch`] does, without writing it: the
    /// caller gets to act on its dead letters first (the live loop puts them on the
    /// dead-letter topic), then writes it with [`Projector::write_prepared`]. `poison`
    /// (messages that were not events at all) is written as dead letters with it.
    ///
    /// # Errors
    /// Store or read-model failures while reading; nothing is written.
    pub async fn prepare(
        &self,
        events: Vec<RecordedEvent>,
        poison: Vec<DeadLetter>,
    ) -> Result<PreparedBatch, ProjectionError> {
        self.prepare_with_checkpoint(events, poison, None).await
    }

    /// Writes a batch from [`Projector::prepare`]: in one transaction, or, for a
    /// store that bounds a stream's part of a write, in several, in order. Each
    /// moves its streams' applied versions, so a failure between two leaves a state
    /// that applying the batch again completes.
    ///
    /// # Errors
    /// As [`Projector::apply_batch`]; on [`ReadModelError::Conflict`] prepare the
    /// batch again.
    pub async fn write_prepared(&self, batch: &PreparedBatch) -> Result<(), ProjectionError> {
        for write in &batch.writes {
            if !write.applied.is_empty()
                || write.checkpoint.is_some()
                || !write.dead_letters.is_empty()
            {
                self.read_models.write(write).await?;
            }
        }
        Ok(())
    }

    async fn apply(
        &self,
        events: Vec<RecordedEvent>,
        checkpoint: Option<(String, GlobalPosition)>,
    ) -> Result<BatchOutcome, ProjectionError> {
        let batch = self
            .prepare_with_checkpoint(events, Vec::new(), checkpoint)
            .await?;
        self.write_prepared(&batch).await?;
        Ok(batch.outcome)
    }

    async fn prepare_with_checkpoint(
        &self,
        events: Vec<RecordedEvent>,
        poison: Vec<DeadLetter>,
        checkpoint: Option<(String, GlobalPosition)>,
    ) -> Result<PreparedBatch, ProjectionError> {
        let received = events.len();
        let mut by_stream: BTreeMap<String, BTreeMap<StreamVersion, RecordedEvent>> =
            BTreeMap::new();
        for event in events {
            by_stream
                .entry(event.stream_id.clone())
                .or_default()
                .insert(event.version, event);
        }
        let stream_ids: Vec<String> = by_stream.keys().cloned().collect();
        let applied = self.read_models.applied_versions(&stream_ids).await?;

        let mut outcome = BatchOutcome {
            // Versions delivered more than once within the batch.
            duplicates: received - by_stream.values().map(BTreeMap::len).sum::<usize>(),
            ..BatchOutcome::default()
        };
        let mut ordered: Vec<(String, Vec<RecordedEvent>)> = Vec::new();
        for (stream_id, mut versions) in by_stream {
            let done = applied.get(&stream_id).copied().unwrap_or(0);
            let delivered = versions.len();
            versions.retain(|&version, _| version > done);
            outcome.duplicates += delivered - versions.len();
            if versions.is_empty() {
                continue;
            }
            if !is_contiguous_after(done, versions.keys()) {
                let missing = self.store.read_stream(&stream_id, done).await?;
                for event in missing {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        versions.entry(event.version)
                    {
                        outcome.gap_filled += 1;
                        slot.insert(event);
                    }
                }
            }
            // Only the unbroken run after the applied version: anything beyond a gap
            // the store could not fill waits for a later batch.
            let mut run = Vec::with_capacity(versions.len());
            for (expected, (version, event)) in (done + 1..).zip(versions) {
                if version != expected {
                    break;
                }
                run.push(event);
            }
            ordered.push((stream_id, run));
        }

        let touched: Vec<String> = ordered.iter().map(|(s, _)| s.clone()).collect();
        let rows = self.read_models.load(&touched).await?;
        let mut fold = BatchFold::new(rows, applied);
        let mut applied_events = 0;
        let mut rounds = rounds(ordered, self.read_models.max_hours_per_stream())
            .into_iter()
            .peekable();
        let mut writes = Vec::with_capacity(1);
        while let Some(events) = rounds.next() {
            for event in &events {
                // An event that carries its request's trace context is projected in
                // a span of that trace: one trace from the request to the read model.
                let _projecting = event
                    .metadata
                    .traceparent
                    .as_deref()
                    .map(|traceparent| projecting(event, traceparent).entered());
                if fold.apply(event) {
                    applied_events += 1;
                }
            }
            if rounds.peek().is_some() {
                writes.push(fold.take_write(None));
            }
        }
        // The last part (usually the only one) takes the rows as they are.
        writes.push(fold.finish(checkpoint));
        // Every dead letter with the first write: a letter is the same whenever it
        // is written, and written again changes nothing.
        let mut letters: Vec<DeadLetter> = writes
            .iter_mut()
            .flat_map(|write| std::mem::take(&mut write.dead_letters))
            .collect();
        let events_dead_lettered = letters.len();
        letters.extend(poison);
        writes[0].dead_letters = letters;
        let write = &writes[0];
        outcome.applied = applied_events;
        outcome.dead_lettered = write.dead_letters.len();
        for letter in &write.dead_letters {
            tracing::warn!(
                stream_id = %letter.stream_id,
                version = letter.version,
                event_type = %letter.event_type,
                error = %letter.error,
                "dead-lettered"
            );
        }
        Ok(PreparedBatch {
            writes,
            events_dead_lettered,
            outcome,
        })
    }

    /// Reads the event of each of the first `limit` dead letters from the store again
    /// and decodes it with the current code: after a fix (an upcaster, a new event
    /// type) this says which letters a rebuild would now apply, without changing
    /// anything. The replay itself is [`Projector::rebuild`]: a dead-lettered event
    /// counts as applied, so the events after it in its stream were applied on top of
    /// state that missed it; only a replay of the whole order puts them right.
    ///
    /// # Errors
    /// Store or read-model failures.
    pub async fn check_dead_letters(
        &self,
        limit: usize,
    ) -> Result<Vec<DeadLetterCheck>, ProjectionError> {
        let letters = self.read_models.dead_letters(limit).await?;
        let mut checks = Vec::with_capacity(letters.len());
        for stored in letters {
            let letter = stored.letter;
            let event = if letter.version == 0 {
                None
            } else {
                self.store
                    .read_stream(&letter.stream_id, letter.version - 1)
                    .await?
                    .into_iter()
                    .find(|event| event.version == letter.version)
            };
            let verdict = match event {
                None => DeadLetterVerdict::NotInStore,
                Some(event) => match ticketing_domain::DomainEvent::decode(
                    &event.event_type,
                    event.schema_version,
                    event.data,
                ) {
                    Ok(_) => DeadLetterVerdict::Replayable,
                    Err(error) => DeadLetterVerdict::StillFailing {
                        error: error.to_string(),
                    },
                },
            };
            checks.push(DeadLetterCheck {
                id: stored.id,
                stream_id: letter.stream_id,
                version: letter.version,
                event_type: letter.event_type,
                verdict,
            });
        }
        Ok(checks)
    }

    /// Empties the read models and replays the whole global order into them, in
    /// batches of `batch_size`, storing the checkpoint with every batch and calling
    /// `progress` after it. Run it with the live path stopped.
    ///
    /// # Errors
    /// As [`Projector::apply_batch`]; a failed rebuild can be resumed with
    /// [`Projector::catch_up`] or started again.
    #[tracing::instrument(skip_all, fields(batch_size = batch_size))]
    pub async fn rebuild(
        &self,
        batch_size: usize,
        progress: impl FnMut(Progress),
    ) -> Result<Progress, ProjectionError> {
        self.read_models.clear().await?;
        self.follow(GlobalPosition::START, batch_size, progress)
            .await
    }

    /// Applies the global order from the stored checkpoint (the start if there is
    /// none) up to what the store returns now: what the live path runs after a
    /// rebuild, and what resumes an interrupted one.
    ///
    /// # Errors
    /// As [`Projector::apply_batch`].
    #[tracing::instrument(skip_all, fields(batch_size = batch_size))]
    pub async fn catch_up(
        &self,
        batch_size: usize,
        progress: impl FnMut(Progress),
    ) -> Result<Progress, ProjectionError> {
        let from = self
            .read_models
            .checkpoint(CHECKPOINT)
            .await?
            .unwrap_or(GlobalPosition::START);
        self.follow(from, batch_size, progress).await
    }

    async fn follow(
        &self,
        from: GlobalPosition,
        batch_size: usize,
        mut progress: impl FnMut(Progress),
    ) -> Result<Progress, ProjectionError> {
        let batch_size = batch_size.max(1);
        let mut state = Progress {
            batches: 0,
            events: 0,
            position: from,
        };
        loop {
            let events = self.store.read_all(state.position, batch_size).await?;
            let Some(last) = events.last() else {
                return Ok(state);
            };
            let position = last.global_position;
            let read = events.len();
            self.apply(events, Some((CHECKPOINT.to_owned(), position)))
                .await?;
            state.batches += 1;
            state.events += read as u64;
            state.position = position;
            progress(state);
            if read < batch_size {
                return Ok(state);
            }
        }
    }
}

/// The batch's events in the order the fold applies them, cut into rounds that
/// each become one write: one round, unless a stream's run spans more than
/// `max_hours` distinct hours. Then the run is cut into pieces of at most
/// `max_hours` hours, its first piece in the first round, its second in the second,
/// and so on. An event adds to at most one hourly bucket, that of the hour it was
/// recorded in (within its stream's show and section), so a piece never touches
/// more buckets than it spans hours.
fn rounds(
    ordered: Vec<(String, Vec<RecordedEvent>)>,
    max_hours: Option<usize>,
) -> Vec<Vec<RecordedEvent>> {
    let mut rounds: Vec<Vec<RecordedEvent>> = Vec::new();
    for (_, run) in ordered {
        let mut round = 0;
        let mut hours = BTreeSet::new();
        for event in run {
            let hour = model::hour_of(event.recorded_at);
            if let Some(max) = max_hours {
                if !hours.contains(&hour) && hours.len() >= max.max(1) {
                    round += 1;
                    hours.clear();
                }
            }
            hours.insert(hour);
            if rounds.len() <= round {
                rounds.push(Vec::new());
            }
            rounds[round].push(event);
        }
    }
    rounds
}

/// The span of one event's projection, a child of the request that caused it.
fn projecting(event: &RecordedEvent, traceparent: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "project",
        stream_id = %event.stream_id,
        version = event.version,
        event_type = %event.event_type,
    );
    ticketing_telemetry::continue_trace(&span, traceparent);
    span
}

/// Whether `versions` (ascending) are exactly `after + 1, after + 2, ...`.
fn is_contiguous_after<'a>(
    after: StreamVersion,
    versions: impl Iterator<Item = &'a StreamVersion>,
) -> bool {
    versions
        .zip(after + 1..)
        .all(|(&version, expected)| version == expected)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};

    /// Version `version` of `stream`, recorded `minutes` after 12:00.
    fn event(stream: &str, version: StreamVersion, minutes: i64) -> RecordedEvent {
        RecordedEvent {
            global_position: GlobalPosition::default(),
            stream_id: stream.to_owned(),
            version,
            event_id: uuid::Uuid::new_v4(),
            event_type: "SeatsConfirmed".to_owned(),
            schema_version: 1,
            data: serde_json::Value::Null,
            metadata: ticketing_store::EventMetadata::default(),
            recorded_at: Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
                + TimeDelta::minutes(minutes),
        }
    }

    fn versions(rounds: &[Vec<RecordedEvent>]) -> Vec<Vec<(&str, StreamVersion)>> {
        rounds
            .iter()
            .map(|round| {
                round
                    .iter()
                    .map(|e| (e.stream_id.as_str(), e.version))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn without_a_bound_a_batch_is_one_round_in_stream_order() {
        let ordered = vec![
            (
                "a".to_owned(),
                (1..=3).map(|v| event("a", v, v as i64 * 60)).collect(),
            ),
            ("b".to_owned(), vec![event("b", 1, 0)]),
        ];
        let rounds = rounds(ordered, None);
        assert_eq!(
            versions(&rounds),
            vec![vec![("a", 1), ("a", 2), ("a", 3), ("b", 1)]]
        );
        assert!(super::rounds(Vec::new(), None).is_empty());
    }

    #[test]
    fn a_run_spanning_more_hours_than_the_bound_is_cut_into_rounds_of_that_many_hours() {
        // Stream a: versions 1 and 2 in the 12:00 hour, 3 at 13:00, 4 at 14:00, 5 at
        // 15:00. Stream b: one hour only.
        let a = vec![
            event("a", 1, 0),
            event("a", 2, 30),
            event("a", 3, 60),
            event("a", 4, 120),
            event("a", 5, 180),
        ];
        let b = vec![event("b", 1, 0), event("b", 2, 300)];
        let rounds = rounds(vec![("a".into(), a), ("b".into(), b)], Some(2));
        assert_eq!(
            versions(&rounds),
            vec![
                vec![("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)],
                vec![("a", 4), ("a", 5)],
            ]
        );
    }
}
