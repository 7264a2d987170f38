//! The read models in DynamoDB (feature `dynamodb`): what the query function reads on
//! AWS without a database connection from inside a VPC, and what the projector
//! function writes. The table design is docs/adr/0011-dynamodb-read-models.md.
//!
//! - `config.rs`: [`DynamoDbConfig`] (table prefix, endpoint) and [`TableNames`].
//! - `error.rs`: the SDK's failures as [`ReadModelError`]s.
//! - `mod.rs`: [`DynamoDbReadModels`], the [`ReadModelStore`]; items to rows and back.
//!
//! "One transaction per batch" becomes one `TransactWriteItems` per stream: the
//! stream's row, its hourly sales deltas, the ticket revocations of a purchase's
//! stream and the conditional move of its applied version. Every row belongs to one
//! stream (ADR 9), so a batch whose streams commit one by one still ends where one
//! transaction would have: a stream that committed is skipped as a duplicate when the
//! batch is applied again. Dead letters are written first, each once (a conditional
//! put), and the checkpoint last.

mod config;
mod error;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, DeleteRequest,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    Put, ScalarAttributeType, TableStatus, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use ticketing_domain::ticket::Revocation;
use ticketing_domain::{
    CustomerId, ReservationId, SectionAvailability, ShowId, TicketId, Timestamp,
};
use ticketing_store::{GlobalPosition, StreamVersion};
use uuid::Uuid;

pub use config::{
    DynamoDbConfig, TableNames, BY_CUSTOMER, BY_HOLDER, BY_SHOW, DEFAULT_TABLE_PREFIX,
};

use crate::model::{BatchWrite, DeadLetter, HoldView, HourKey, ReservationView, SalesTotals};
use crate::model::{
    HourDelta, LoadedRows, SectionHolds, SectionView, TicketRevocationView, TicketView,
};
use crate::rows::{self as d, instant, parse_instant};
use crate::{
    unique, HeldTicket, ReadModelDump, ReadModelError, ReadModelStore, ReservationCursor,
    ReservationPage, RevokedTicket, SectionAdmissions, ShowSales, StoredDeadLetter, TicketCursor,
    TicketPage,
};

type Item = HashMap<String, AttributeValue>;

/// Most operations one `TransactWriteItems` may hold.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// Most keys one `BatchGetItem` may ask for.
const MAX_BATCH_GET: usize = 100;
/// Most requests one `BatchWriteItem` may hold.
const MAX_BATCH_WRITE: usize = 25;
/// Stream transactions of one batch in flight at once.
const CONCURRENT_TRANSACTIONS: usize = 8;

/// The read models in DynamoDB tables named by [`TableNames`].
#[derive(Debug, Clone)]
pub struct DynamoDbReadModels {
    client: Client,
    tables: TableNames,
}

impl DynamoDbReadModels {
    /// Over an existing client (tests build one with fixed credentials).
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// A client from the AWS SDK's default chain (environment, the Lambda role) with
    /// `config`'s endpoint. Nothing is sent until the first request.
    pub async fn connect(config: &DynamoDbConfig) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self::new(Client::from_conf(builder.build()), config.tables.clone())
    }

    /// The tables this store uses.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// Creates the tables (on demand capacity) where they do not exist yet and waits
    /// until they are active: for tests and local servers; on AWS the template owns
    /// them.
    ///
    /// # Errors
    /// The service's refusal, or a table that does not become active within a minute.
    pub async fn create_tables(&self) -> Result<(), ReadModelError> {
        let t = &self.tables;
        let specs: [(&str, &[&str], &[IndexSpec]); 8] = [
            (
                &t.sections,
                &["stream_id"],
                &[(BY_SHOW, "show_id", "section")],
            ),
            (&t.sales_by_hour, &["show_id", "bucket"], &[]),
            (
                &t.reservations,
                &["stream_id"],
                &[(BY_CUSTOMER, "customer_id", "placed_key")],
            ),
            (
                &t.tickets,
                &["stream_id"],
                &[
                    (BY_SHOW, "show_id", "held_key"),
                    (BY_HOLDER, "holder", "held_key"),
                ],
            ),
            (
                &t.ticket_revocations,
                &["ticket_id"],
                &[(BY_SHOW, "show_id", "revoked_at")],
            ),
            (&t.applied, &["stream_id"], &[]),
            (&t.dead_letters, &["stream_id", "version"], &[]),
            (&t.checkpoints, &["name"], &[]),
        ];
        for (table, keys, indexes) in specs {
            let mut attributes: Vec<&str> = keys.to_vec();
            let mut request = self
                .client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest);
            for (key, kind) in keys.iter().zip([KeyType::Hash, KeyType::Range]) {
                request = request.key_schema(key_element(key, kind)?);
            }
            for &(name, hash, range) in indexes {
                for attribute in [hash, range] {
                    if !attributes.contains(&attribute) {
                        attributes.push(attribute);
                    }
                }
                request = request.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(name)
                        .key_schema(key_element(hash, KeyType::Hash)?)
                        .key_schema(key_element(range, KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(error::build)?,
                );
            }
            for attribute in attributes {
                let kind = if attribute == "version" {
                    ScalarAttributeType::N
                } else {
                    ScalarAttributeType::S
                };
                request = request.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(attribute)
                        .attribute_type(kind)
                        .build()
                        .map_err(error::build)?,
                );
            }
            match request.send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(error::classify(e)),
            }
        }
        for table in t.all() {
            self.wait_until_active(table).await?;
        }
        Ok(())
    }

    async fn wait_until_active(&self, table: &str) -> Result<(), ReadModelError> {
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(error::classify)?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(ReadModelError::ServiceUnavailable(
            format!("table {table} did not become active within a minute").into(),
        ))
    }

    /// Every item of `keys` in `table`, in no particular order; read consistently
    /// for the projector, which folds from them (not for the query path, which
    /// trails the projection anyway).
    async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, ReadModelError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(error::build)?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(error::classify)?;
                if let Some(items) = output.responses().and_then(|r| r.get(table)) {
                    found.extend(items.iter().cloned());
                }
                pending = output
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                if pending.is_some() {
                    attempt += 1;
                    backoff(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// Every item a query returns, page after page.
    async fn query_all(
        &self,
        request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, ReadModelError> {
        request
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(error::classify)
    }

    /// The first `limit` items (at least 1) `request` finds, following DynamoDB's
    /// pages: a page of a history.
    async fn query_first(
        &self,
        request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        limit: i32,
    ) -> Result<Vec<Item>, ReadModelError> {
        let mut items: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let wanted = limit - i32::try_from(items.len()).unwrap_or(i32::MAX);
            let output = request
                .clone()
                .limit(wanted)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(error::classify)?;
            items.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() && items.len() < limit as usize => {
                    start = Some(key.clone());
                }
                _ => return Ok(items),
            }
        }
    }

    /// Every item of `table` (for dumps, clearing and the dead-letter list, which
    /// are rare and small; never on the query path).
    async fn scan_all(&self, table: &str) -> Result<Vec<Item>, ReadModelError> {
        self.client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(error::classify)
    }

    /// Every item of `table` as a row.
    async fn scan_rows<T>(
        &self,
        table: &str,
        row: impl Fn(&Item) -> Result<T, ReadModelError>,
    ) -> Result<Vec<T>, ReadModelError> {
        self.scan_all(table).await?.iter().map(row).collect()
    }

    /// Writes a dead letter unless one for its stream and version exists (the first
    /// one recorded stays, as in the SQL stores).
    async fn put_dead_letter(&self, letter: &DeadLetter, id: i64) -> Result<(), ReadModelError> {
        let item = Item::from([
            ("stream_id".into(), s(&letter.stream_id)),
            ("version".into(), n(letter.version)),
            ("event_type".into(), s(&letter.event_type)),
            ("schema_version".into(), n(letter.schema_version)),
            ("payload".into(), s(letter.payload.to_string())),
            ("error".into(), s(&letter.error)),
            ("recorded_at".into(), s(instant(chrono::Utc::now()))),
            ("id".into(), n(id)),
        ]);
        let written = self
            .client
            .put_item()
            .table_name(&self.tables.dead_letters)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(stream_id)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(error::classify(e)),
        }
    }

    /// The transactions of one stream, to send in order. The last moves its applied
    /// version (conditional on the version the batch started from) and writes its
    /// rows and hourly deltas. A purchase's stream revoking more tickets than fit
    /// beside them (a purchase holds up to 100) writes the others first, in
    /// transactions that only check the applied version: a revocation is the same
    /// whenever it is written, and the applied version moves only once all of them
    /// are. Anything else over [`MAX_TRANSACTION_ITEMS`] is [`ReadModelError::TooLarge`].
    fn stream_transactions(
        &self,
        (stream_id, before, after): &(String, StreamVersion, StreamVersion),
        rows: StreamRows<'_>,
    ) -> Result<Vec<Vec<TransactWriteItem>>, ReadModelError> {
        let condition = if *before == 0 {
            "attribute_not_exists(#version)"
        } else {
            "#version = :before"
        };
        let mut applied = Update::builder()
            .table_name(&self.tables.applied)
            .key("stream_id", s(stream_id))
            .update_expression("SET #version = :after")
            .condition_expression(condition)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":after", n(after));
        if *before != 0 {
            applied = applied.expression_attribute_values(":before", n(before));
        }
        let mut items = vec![TransactWriteItem::builder()
            .update(applied.build().map_err(error::build)?)
            .build()];
        let puts = rows
            .section
            .map(|row| (&self.tables.sections, section_item(row)))
            .into_iter()
            .chain(
                rows.reservation
                    .map(|row| (&self.tables.reservations, reservation_item(row))),
            )
            .chain(
                rows.ticket
                    .map(|row| (&self.tables.tickets, ticket_item(row))),
            );
        for (table, item) in puts {
            items.push(put(table, item)?);
        }
        for (key, delta) in rows.hours {
            let t = &delta.totals;
            let update = Update::builder()
                .table_name(&self.tables.sales_by_hour)
                .key("show_id", s(&key.show_id))
                .key("bucket", s(hour_bucket(key)))
                .update_expression(
                    "SET #section = :section, #hour = :hour, #currency = :currency \
                     ADD #tickets :tickets, #gross :gross, #refunds :refunds, \
                     #refunded :refunded",
                )
                .expression_attribute_names("#section", "section")
                .expression_attribute_names("#hour", "hour")
                .expression_attribute_names("#currency", "currency")
                .expression_attribute_names("#tickets", "tickets_sold")
                .expression_attribute_names("#gross", "gross_minor")
                .expression_attribute_names("#refunds", "refunds_count")
                .expression_attribute_names("#refunded", "refunds_minor")
                .expression_attribute_values(":section", s(&key.section))
                .expression_attribute_values(":hour", s(instant(key.hour)))
                .expression_attribute_values(":currency", s(delta.currency.as_str()))
                .expression_attribute_values(":tickets", n(t.tickets_sold))
                .expression_attribute_values(":gross", n(t.gross_minor))
                .expression_attribute_values(":refunds", n(t.refunds_count))
                .expression_attribute_values(":refunded", n(t.refunds_minor))
                .build()
                .map_err(error::build)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        // The revocations that fit go with the rows, the others first.
        let room = MAX_TRANSACTION_ITEMS.saturating_sub(items.len());
        let (early, inline) = rows
            .revocations
            .split_at(rows.revocations.len().saturating_sub(room));
        for row in inline {
            items.push(put(&self.tables.ticket_revocations, revocation_item(row))?);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(ReadModelError::TooLarge {
                stream_id: stream_id.clone(),
                items: items.len() + early.len(),
                limit: MAX_TRANSACTION_ITEMS,
            });
        }
        let mut transactions = Vec::with_capacity(1 + early.len() / MAX_TRANSACTION_ITEMS);
        for chunk in early.chunks(MAX_TRANSACTION_ITEMS - 1) {
            let mut check = ConditionCheck::builder()
                .table_name(&self.tables.applied)
                .key("stream_id", s(stream_id))
                .condition_expression(condition)
                .expression_attribute_names("#version", "version");
            if *before != 0 {
                check = check.expression_attribute_values(":before", n(before));
            }
            let mut early_items = vec![TransactWriteItem::builder()
                .condition_check(check.build().map_err(error::build)?)
                .build()];
            for row in chunk {
                early_items.push(put(&self.tables.ticket_revocations, revocation_item(row))?);
            }
            transactions.push(early_items);
        }
        transactions.push(items);
        Ok(transactions)
    }

    /// Deletes every item of `table`.
    async fn empty(&self, table: &str, keys: &[&str]) -> Result<(), ReadModelError> {
        let items = self.scan_all(table).await?;
        for chunk in items.chunks(MAX_BATCH_WRITE) {
            let mut requests = chunk
                .iter()
                .map(|item| {
                    let key: Item = keys
                        .iter()
                        .filter_map(|k| Some(((*k).to_owned(), item.get(*k)?.clone())))
                        .collect();
                    Ok(WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key))
                                .build()
                                .map_err(error::build)?,
                        )
                        .build())
                })
                .collect::<Result<Vec<_>, ReadModelError>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(error::classify)?;
                requests = output
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .unwrap_or_default();
                if !requests.is_empty() {
                    attempt += 1;
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }

    async fn sections_of(&self, show_id: ShowId) -> Result<Vec<SectionView>, ReadModelError> {
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.tables.sections)
                    .index_name(BY_SHOW)
                    .key_condition_expression("#show = :show")
                    .expression_attribute_names("#show", "show_id")
                    .expression_attribute_values(":show", s(show_id.0.to_string())),
            )
            .await?;
        items.iter().map(section_row).collect()
    }

    /// A show's tickets (`since`: only those held since after it, and maybe some
    /// held at that instant), from `by_show`.
    async fn tickets_of(
        &self,
        show_id: ShowId,
        since: Option<Timestamp>,
        transferred_only: bool,
    ) -> Result<Vec<TicketView>, ReadModelError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.tables.tickets)
            .index_name(BY_SHOW)
            .expression_attribute_names("#show", "show_id")
            .expression_attribute_values(":show", s(show_id.0.to_string()));
        request = match since {
            None => request.key_condition_expression("#show = :show"),
            // `held_since#ticket_id` > `since`: every ticket held since after it
            // (and those held at that very instant, which the caller drops).
            Some(since) => request
                .key_condition_expression("#show = :show AND #held > :since")
                .expression_attribute_names("#held", "held_key")
                .expression_attribute_values(":since", s(instant(since))),
        };
        if transferred_only {
            request = request
                .filter_expression("#generation > :zero")
                .expression_attribute_names("#generation", "generation")
                .expression_attribute_values(":zero", n(0));
        }
        self.query_all(request)
            .await?
            .iter()
            .map(ticket_row)
            .collect()
    }

    /// A show's ticket revocations (`since`: only those revoked after it), from
    /// `by_show`.
    async fn revocations_of(
        &self,
        show_id: ShowId,
        since: Option<Timestamp>,
    ) -> Result<Vec<TicketRevocationView>, ReadModelError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.tables.ticket_revocations)
            .index_name(BY_SHOW)
            .expression_attribute_names("#show", "show_id")
            .expression_attribute_values(":show", s(show_id.0.to_string()));
        request = match since {
            None => request.key_condition_expression("#show = :show"),
            Some(since) => request
                .key_condition_expression("#show = :show AND #revoked > :since")
                .expression_attribute_names("#revoked", "revoked_at")
                .expression_attribute_values(":since", s(instant(since))),
        };
        self.query_all(request)
            .await?
            .iter()
            .map(revocation_row)
            .collect()
    }
}

/// A global secondary index: its name, hash key and range key.
type IndexSpec = (&'static str, &'static str, &'static str);

/// The rows of one stream in a batch: at most one of section, purchase and ticket;
/// hourly deltas with a section, revocations with a purchase.
#[derive(Default, Clone, Copy)]
struct StreamRows<'a> {
    section: Option<&'a SectionView>,
    reservation: Option<&'a ReservationView>,
    ticket: Option<&'a TicketView>,
    revocations: &'a [&'a TicketRevocationView],
    hours: &'a [&'a (HourKey, HourDelta)],
}

/// A put of `item` into `table`, as one operation of a transaction.
fn put(table: &str, item: Item) -> Result<TransactWriteItem, ReadModelError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(error::build)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Waits a little longer after each partly processed batch request.
async fn backoff(attempt: u32) {
    let millis = 25u64.saturating_mul(1 << attempt.min(6));
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

fn key_element(name: &str, kind: KeyType) -> Result<KeySchemaElement, ReadModelError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(error::build)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn corrupt(what: &str) -> ReadModelError {
    ReadModelError::Corrupt(format!("item attribute `{what}` is missing or malformed"))
}

fn get_s(item: &Item, name: &str) -> Result<String, ReadModelError> {
    opt_s(item, name)?.ok_or_else(|| corrupt(name))
}

fn opt_s(item: &Item, name: &str) -> Result<Option<String>, ReadModelError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
        Some(_) => Err(corrupt(name)),
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, ReadModelError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(name)),
        _ => Err(corrupt(name)),
    }
}

/// The sort key of an hourly bucket: the hour, then the section (one item per
/// section and hour, so a popular show's sales spread over many items).
fn hour_bucket(key: &HourKey) -> String {
    format!("{}#{}", instant(key.hour), key.section)
}

/// The sort key of the customer history: newest first is descending text order.
fn placed_key(placed_at: Timestamp, reservation_id: ReservationId) -> String {
    format!("{}#{}", instant(placed_at), reservation_id.0)
}

/// The sort key of a holder's tickets (and of a show's): newest first is descending
/// text order, by `held_since` then ticket id, as on SQL.
fn held_key(held_since: Timestamp, ticket_id: TicketId) -> String {
    format!("{}#{}", instant(held_since), ticket_id.0)
}

/// Holds as a compact binary attribute, 28 bytes each (reservation id, quantity,
/// expiry in microseconds, big-endian), to keep a large section's item far below
/// DynamoDB's 400 KB.
fn encode_holds(holds: &[HoldView]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(holds.len() * 28);
    for hold in holds {
        bytes.extend_from_slice(hold.reservation_id.0.as_bytes());
        bytes.extend_from_slice(&hold.quantity.to_be_bytes());
        bytes.extend_from_slice(&hold.expires_at.timestamp_micros().to_be_bytes());
    }
    bytes
}

fn decode_holds(bytes: &[u8]) -> Result<Vec<HoldView>, ReadModelError> {
    if bytes.len() % 28 != 0 {
        return Err(corrupt("holds"));
    }
    bytes
        .chunks_exact(28)
        .map(|chunk| {
            let id: [u8; 16] = chunk[..16].try_into().map_err(|_| corrupt("holds"))?;
            let quantity: [u8; 4] = chunk[16..20].try_into().map_err(|_| corrupt("holds"))?;
            let micros: [u8; 8] = chunk[20..].try_into().map_err(|_| corrupt("holds"))?;
            Ok(HoldView {
                reservation_id: ReservationId(Uuid::from_bytes(id)),
                quantity: u32::from_be_bytes(quantity),
                expires_at: chrono::DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
                    .ok_or_else(|| corrupt("holds"))?,
            })
        })
        .collect()
}

/// Held seats by expiry second, 12 bytes a slot (the second in microseconds, the
/// seats, big-endian): a section's item holds at most one slot per second of
/// `HOLD_DURATION_SECONDS`, whatever the number of holds.
fn encode_slots(slots: &BTreeMap<Timestamp, u32>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(slots.len() * 12);
    for (slot, seats) in slots {
        bytes.extend_from_slice(&slot.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(&seats.to_be_bytes());
    }
    bytes
}

fn decode_slots(bytes: &[u8]) -> Result<BTreeMap<Timestamp, u32>, ReadModelError> {
    if bytes.len() % 12 != 0 {
        return Err(corrupt("held_until"));
    }
    bytes
        .chunks_exact(12)
        .map(|chunk| {
            let micros: [u8; 8] = chunk[..8].try_into().map_err(|_| corrupt("held_until"))?;
            let seats: [u8; 4] = chunk[8..].try_into().map_err(|_| corrupt("held_until"))?;
            let slot = chrono::DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
                .ok_or_else(|| corrupt("held_until"))?;
            Ok((slot, u32::from_be_bytes(seats)))
        })
        .collect()
}

fn section_item(row: &SectionView) -> Item {
    let mut item = Item::from([
        ("stream_id".into(), s(&row.stream_id)),
        ("show_id".into(), s(row.show_id.0.to_string())),
        ("section".into(), s(row.section.as_str())),
        ("capacity".into(), n(row.capacity)),
        ("sold".into(), n(row.sold)),
        ("unit_price_minor".into(), n(row.unit_price.amount_minor)),
        ("currency".into(), s(row.unit_price.currency.as_str())),
    ]);
    item.extend(sales_attributes(&row.sales));
    if !row.holds.held_until.is_empty() {
        item.insert(
            "held_until".into(),
            AttributeValue::B(Blob::new(encode_slots(&row.holds.held_until))),
        );
    }
    // The holds recorded before `SeatsHeld` v3, one by one (see `SectionHolds`).
    if !row.holds.legacy.is_empty() {
        item.insert(
            "holds".into(),
            AttributeValue::B(Blob::new(encode_holds(&row.holds.legacy))),
        );
    }
    item
}

fn sales_attributes(totals: &SalesTotals) -> [(String, AttributeValue); 4] {
    [
        ("tickets_sold".into(), n(totals.tickets_sold)),
        ("gross_minor".into(), n(totals.gross_minor)),
        ("refunds_count".into(), n(totals.refunds_count)),
        ("refunds_minor".into(), n(totals.refunds_minor)),
    ]
}

fn sales(item: &Item) -> Result<SalesTotals, ReadModelError> {
    Ok(SalesTotals {
        tickets_sold: get_n(item, "tickets_sold")?,
        gross_minor: get_n(item, "gross_minor")?,
        refunds_count: get_n(item, "refunds_count")?,
        refunds_minor: get_n(item, "refunds_minor")?,
    })
}

fn section_row(item: &Item) -> Result<SectionView, ReadModelError> {
    let legacy = match item.get("holds") {
        None => Vec::new(),
        Some(AttributeValue::B(bytes)) => decode_holds(bytes.as_ref())?,
        Some(_) => return Err(corrupt("holds")),
    };
    let holds = match item.get("held_until") {
        Some(AttributeValue::B(bytes)) => SectionHolds {
            held_until: decode_slots(bytes.as_ref())?,
            legacy,
        },
        Some(_) => return Err(corrupt("held_until")),
        // An item written before the slots: its holds are all it has.
        None => SectionHolds::from_holds(legacy),
    };
    d::section(
        d::SectionColumns {
            stream_id: get_s(item, "stream_id")?,
            show_id: get_s(item, "show_id")?,
            section: get_s(item, "section")?,
            capacity: get_n(item, "capacity")?,
            sold: get_n(item, "sold")?,
            unit_price_minor: get_n(item, "unit_price_minor")?,
            currency: get_s(item, "currency")?,
            holds,
        },
        sales(item)?,
    )
}

fn reservation_item(row: &ReservationView) -> Item {
    let mut item = Item::from([
        ("stream_id".into(), s(&row.stream_id)),
        ("reservation_id".into(), s(row.reservation_id.0.to_string())),
        ("customer_id".into(), s(row.customer_id.as_str())),
        ("show_id".into(), s(row.show_id.0.to_string())),
        ("section".into(), s(row.section.as_str())),
        ("quantity".into(), n(row.quantity)),
        ("amount_minor".into(), n(row.amount.amount_minor)),
        ("currency".into(), s(row.amount.currency.as_str())),
        ("state".into(), s(d::state_name(row.state))),
        ("placed_at".into(), s(instant(row.placed_at))),
        ("expires_at".into(), s(instant(row.expires_at))),
        ("updated_at".into(), s(instant(row.updated_at))),
        (
            "placed_key".into(),
            s(placed_key(row.placed_at, row.reservation_id)),
        ),
    ]);
    if let Some(at) = row.paid_at {
        item.insert("paid_at".into(), s(instant(at)));
    }
    if let Some(at) = row.refunded_at {
        item.insert("refunded_at".into(), s(instant(at)));
    }
    if !row.ticket_ids.is_empty() {
        item.insert("ticket_ids".into(), s(d::ticket_ids(row)));
    }
    item
}

fn reservation_row(item: &Item) -> Result<ReservationView, ReadModelError> {
    let at = |name| get_s(item, name).and_then(|text| parse_instant(&text));
    d::reservation(d::ReservationColumns {
        stream_id: get_s(item, "stream_id")?,
        reservation_id: get_s(item, "reservation_id")?,
        customer_id: get_s(item, "customer_id")?,
        show_id: get_s(item, "show_id")?,
        section: get_s(item, "section")?,
        quantity: get_n(item, "quantity")?,
        amount_minor: get_n(item, "amount_minor")?,
        currency: get_s(item, "currency")?,
        state: get_s(item, "state")?,
        placed_at: at("placed_at")?,
        expires_at: at("expires_at")?,
        paid_at: d::opt_instant(opt_s(item, "paid_at")?)?,
        refunded_at: d::opt_instant(opt_s(item, "refunded_at")?)?,
        updated_at: at("updated_at")?,
        // Absent before tickets, and while none are issued.
        ticket_ids: opt_s(item, "ticket_ids")?.unwrap_or_else(|| "[]".into()),
    })
}

fn ticket_item(row: &TicketView) -> Item {
    let mut item = Item::from([
        ("stream_id".into(), s(&row.stream_id)),
        ("ticket_id".into(), s(row.ticket_id.0.to_string())),
        ("reservation_id".into(), s(row.reservation_id.0.to_string())),
        ("show_id".into(), s(row.show_id.0.to_string())),
        ("section".into(), s(row.section.as_str())),
        ("holder".into(), s(row.holder.as_str())),
        ("generation".into(), n(row.generation)),
        ("held_since".into(), s(instant(row.held_since))),
        ("updated_at".into(), s(instant(row.updated_at))),
        (
            "held_key".into(),
            s(held_key(row.held_since, row.ticket_id)),
        ),
    ]);
    if let Some(at) = row.admitted_at {
        item.insert("admitted_at".into(), s(instant(at)));
    }
    if let Some(gate) = &row.gate {
        item.insert("gate".into(), s(gate));
    }
    item
}

fn ticket_row(item: &Item) -> Result<TicketView, ReadModelError> {
    let at = |name| get_s(item, name).and_then(|text| parse_instant(&text));
    d::ticket(d::TicketColumns {
        stream_id: get_s(item, "stream_id")?,
        ticket_id: get_s(item, "ticket_id")?,
        reservation_id: get_s(item, "reservation_id")?,
        show_id: get_s(item, "show_id")?,
        section: get_s(item, "section")?,
        holder: get_s(item, "holder")?,
        generation: get_n(item, "generation")?,
        held_since: at("held_since")?,
        admitted_at: d::opt_instant(opt_s(item, "admitted_at")?)?,
        gate: opt_s(item, "gate")?,
        updated_at: at("updated_at")?,
    })
}

fn revocation_item(row: &TicketRevocationView) -> Item {
    Item::from([
        ("ticket_id".into(), s(row.ticket_id.0.to_string())),
        ("stream_id".into(), s(&row.stream_id)),
        ("reservation_id".into(), s(row.reservation_id.0.to_string())),
        ("show_id".into(), s(row.show_id.0.to_string())),
        ("section".into(), s(row.section.as_str())),
        ("reason".into(), s(d::reason_name(row.reason))),
        ("revoked_at".into(), s(instant(row.revoked_at))),
    ])
}

fn revocation_row(item: &Item) -> Result<TicketRevocationView, ReadModelError> {
    d::revocation(d::RevocationColumns {
        stream_id: get_s(item, "stream_id")?,
        ticket_id: get_s(item, "ticket_id")?,
        reservation_id: get_s(item, "reservation_id")?,
        show_id: get_s(item, "show_id")?,
        section: get_s(item, "section")?,
        reason: get_s(item, "reason")?,
        revoked_at: parse_instant(&get_s(item, "revoked_at")?)?,
    })
}

fn applied_row(item: &Item) -> Result<(String, StreamVersion), ReadModelError> {
    Ok((get_s(item, "stream_id")?, get_n(item, "version")?))
}

fn dead_letter_row(item: &Item) -> Result<StoredDeadLetter, ReadModelError> {
    let payload = get_s(item, "payload")?;
    Ok(StoredDeadLetter {
        id: get_n(item, "id")?,
        recorded_at: parse_instant(&get_s(item, "recorded_at")?)?,
        letter: DeadLetter {
            stream_id: get_s(item, "stream_id")?,
            version: get_n(item, "version")?,
            event_type: get_s(item, "event_type")?,
            schema_version: get_n(item, "schema_version")?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| ReadModelError::Corrupt(format!("payload: {e}")))?,
            error: get_s(item, "error")?,
        },
    })
}

fn stream_keys(stream_ids: &[String]) -> Vec<Item> {
    unique(stream_ids)
        .into_iter()
        .map(|id| Item::from([("stream_id".to_owned(), s(id))]))
        .collect()
}

#[async_trait]
impl ReadModelStore for DynamoDbReadModels {
    /// A stream's transaction holds its applied version and its row besides one
    /// update per bucket (buckets are a section's; a purchase's revocations that do
    /// not fit are written before, see `stream_transactions`).
    fn max_hours_per_stream(&self) -> Option<usize> {
        Some(MAX_TRANSACTION_ITEMS - 2)
    }

    async fn applied_versions(
        &self,
        stream_ids: &[String],
    ) -> Result<BTreeMap<String, StreamVersion>, ReadModelError> {
        let items = self
            .batch_get(&self.tables.applied, stream_keys(stream_ids), true)
            .await?;
        items.iter().map(applied_row).collect()
    }

    async fn load(&self, stream_ids: &[String]) -> Result<LoadedRows, ReadModelError> {
        let keys = stream_keys(stream_ids);
        let mut sections = self
            .batch_get(&self.tables.sections, keys.clone(), true)
            .await?
            .iter()
            .map(section_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut reservations = self
            .batch_get(&self.tables.reservations, keys.clone(), true)
            .await?
            .iter()
            .map(reservation_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut tickets = self
            .batch_get(&self.tables.tickets, keys, true)
            .await?
            .iter()
            .map(ticket_row)
            .collect::<Result<Vec<_>, _>>()?;
        sections.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        reservations.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        tickets.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        Ok(LoadedRows {
            sections,
            reservations,
            tickets,
        })
    }

    #[tracing::instrument(skip_all, fields(streams = batch.applied.len()))]
    async fn write(&self, batch: &BatchWrite) -> Result<(), ReadModelError> {
        // Dead letters first: each is written once whatever happens next, and a
        // poison message belongs to no stream's transaction.
        let base = chrono::Utc::now().timestamp_micros().saturating_mul(1_000);
        for (i, letter) in batch.dead_letters.iter().enumerate() {
            let id = base.saturating_add(i64::try_from(i).unwrap_or(999));
            self.put_dead_letter(letter, id).await?;
        }

        let sections: HashMap<&str, &SectionView> = batch
            .sections
            .iter()
            .map(|row| (row.stream_id.as_str(), row))
            .collect();
        // An hourly bucket's stream is its section's: the section is in the batch,
        // since the events that added to the bucket touched it.
        let section_streams: HashMap<(String, &str), &str> = batch
            .sections
            .iter()
            .map(|row| {
                let key = (row.show_id.0.to_string(), row.section.as_str());
                (key, row.stream_id.as_str())
            })
            .collect();
        let reservations: HashMap<&str, &ReservationView> = batch
            .reservations
            .iter()
            .map(|row| (row.stream_id.as_str(), row))
            .collect();
        let tickets: HashMap<&str, &TicketView> = batch
            .tickets
            .iter()
            .map(|row| (row.stream_id.as_str(), row))
            .collect();
        // A revocation is a row of its purchase's stream, which moved on in this
        // batch: the revocations come from its events.
        let mut revocations: HashMap<&str, Vec<&TicketRevocationView>> = HashMap::new();
        for row in &batch.revocations {
            if !batch
                .applied
                .iter()
                .any(|(stream, ..)| *stream == row.stream_id)
            {
                return Err(ReadModelError::Corrupt(format!(
                    "revocation of ticket {} without its stream {} in the batch",
                    row.ticket_id, row.stream_id
                )));
            }
            revocations
                .entry(row.stream_id.as_str())
                .or_default()
                .push(row);
        }
        let mut hours: HashMap<&str, Vec<&(HourKey, HourDelta)>> = HashMap::new();
        for hour in &batch.hours {
            let key = (hour.0.show_id.clone(), hour.0.section.as_str());
            let Some(stream) = section_streams.get(&key) else {
                return Err(ReadModelError::Corrupt(format!(
                    "hourly sales of {}/{} without their section in the batch",
                    key.0, key.1
                )));
            };
            hours.entry(stream).or_default().push(hour);
        }
        let mut transactions = Vec::with_capacity(batch.applied.len());
        for applied in &batch.applied {
            let stream = applied.0.as_str();
            let rows = StreamRows {
                section: sections.get(stream).copied(),
                reservation: reservations.get(stream).copied(),
                ticket: tickets.get(stream).copied(),
                revocations: revocations
                    .get(stream)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                hours: hours.get(stream).map(Vec::as_slice).unwrap_or_default(),
            };
            let items = self.stream_transactions(applied, rows)?;
            transactions.push((applied.0.clone(), items));
        }

        let mut running = tokio::task::JoinSet::new();
        let mut failure: Option<ReadModelError> = None;
        let mut keep = |outcome: Result<Result<(), ReadModelError>, tokio::task::JoinError>| {
            let error = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(e) => ReadModelError::Service(Box::new(e)),
            };
            // A conflict says the most: apply again.
            if failure.is_none() || matches!(error, ReadModelError::Conflict { .. }) {
                failure = Some(error);
            }
        };
        for (stream_id, stream_transactions) in transactions {
            let client = self.client.clone();
            running.spawn(async move {
                for items in stream_transactions {
                    client
                        .transact_write_items()
                        .set_transact_items(Some(items))
                        .send()
                        .await
                        .map_err(|e| error::transaction(&stream_id, e))?;
                }
                Ok(())
            });
            while running.len() >= CONCURRENT_TRANSACTIONS {
                if let Some(outcome) = running.join_next().await {
                    keep(outcome);
                }
            }
        }
        while let Some(outcome) = running.join_next().await {
            keep(outcome);
        }
        if let Some(error) = failure {
            return Err(error);
        }

        // Only once every stream is written: a checkpoint never passes an event
        // that is not applied.
        if let Some((name, position)) = &batch.checkpoint {
            self.client
                .put_item()
                .table_name(&self.tables.checkpoints)
                .item("name", s(name))
                .item("transaction_id", n(position.transaction_id))
                .item("position", n(position.position))
                .send()
                .await
                .map_err(error::classify)?;
        }
        Ok(())
    }

    async fn clear(&self) -> Result<(), ReadModelError> {
        let t = &self.tables;
        self.empty(&t.sections, &["stream_id"]).await?;
        self.empty(&t.sales_by_hour, &["show_id", "bucket"]).await?;
        self.empty(&t.reservations, &["stream_id"]).await?;
        self.empty(&t.tickets, &["stream_id"]).await?;
        self.empty(&t.ticket_revocations, &["ticket_id"]).await?;
        self.empty(&t.dead_letters, &["stream_id", "version"])
            .await?;
        self.empty(&t.checkpoints, &["name"]).await?;
        // Last: until here a failed clear leaves streams applied, so nothing is
        // applied twice on top of rows that survived.
        self.empty(&t.applied, &["stream_id"]).await
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<GlobalPosition>, ReadModelError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.checkpoints)
            .key("name", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(error::classify)?;
        output
            .item()
            .map(|item| {
                Ok(GlobalPosition {
                    transaction_id: get_n(item, "transaction_id")?,
                    position: get_n(item, "position")?,
                })
            })
            .transpose()
    }

    async fn section_availability(
        &self,
        show_id: ShowId,
        now: Timestamp,
    ) -> Result<Vec<SectionAvailability>, ReadModelError> {
        Ok(d::sections_availability(
            &self.sections_of(show_id).await?,
            now,
        ))
    }

    async fn show_sales(&self, show_id: ShowId) -> Result<Option<ShowSales>, ReadModelError> {
        let sections = self
            .sections_of(show_id)
            .await?
            .into_iter()
            .map(|row| (row.section, row.unit_price.currency, row.sales))
            .collect();
        let items = self
            .query_all(
                self.client
                    .query()
                    .table_name(&self.tables.sales_by_hour)
                    .key_condition_expression("#show = :show")
                    .expression_attribute_names("#show", "show_id")
                    .expression_attribute_values(":show", s(show_id.0.to_string())),
            )
            .await?;
        let mut hours: BTreeMap<Timestamp, SalesTotals> = BTreeMap::new();
        for item in &items {
            let hour = parse_instant(&get_s(item, "hour")?)?;
            hours.entry(hour).or_default().add(sales(item)?);
        }
        Ok(ShowSales::assemble(
            show_id,
            sections,
            hours.into_iter().collect(),
        ))
    }

    async fn customer_reservations(
        &self,
        customer_id: &CustomerId,
        limit: usize,
        cursor: Option<ReservationCursor>,
    ) -> Result<ReservationPage, ReadModelError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        if limit == 0 {
            return Ok(d::page(Vec::new(), 0));
        }
        let mut request = self
            .client
            .query()
            .table_name(&self.tables.reservations)
            .index_name(BY_CUSTOMER)
            .scan_index_forward(false)
            .expression_attribute_names("#customer", "customer_id")
            .expression_attribute_values(":customer", s(customer_id.as_str()));
        request = match cursor {
            None => request.key_condition_expression("#customer = :customer"),
            Some(cursor) => request
                .key_condition_expression("#customer = :customer AND #placed < :after")
                .expression_attribute_names("#placed", "placed_key")
                .expression_attribute_values(
                    ":after",
                    s(placed_key(cursor.placed_at, cursor.reservation_id)),
                ),
        };
        let reservations = self
            .query_first(request, limit)
            .await?
            .iter()
            .map(reservation_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(d::page(reservations, i64::from(limit)))
    }

    async fn revoked_tickets(
        &self,
        show_id: ShowId,
        since: Option<Timestamp>,
    ) -> Result<Vec<RevokedTicket>, ReadModelError> {
        let revocations = self.revocations_of(show_id, since).await?;
        let transferred = self.tickets_of(show_id, since, true).await?;
        Ok(d::revoked_list(revocations, transferred, since))
    }

    async fn show_admissions(
        &self,
        show_id: ShowId,
    ) -> Result<Vec<SectionAdmissions>, ReadModelError> {
        let tickets = self.tickets_of(show_id, None, false).await?;
        let revoked: BTreeSet<Uuid> = self
            .revocations_of(show_id, None)
            .await?
            .into_iter()
            .map(|r| r.ticket_id.0)
            .collect();
        let mut sections = Vec::new();
        for ticket in &tickets {
            d::count_admission(
                &mut sections,
                &ticket.section,
                ticket.admitted_at.is_some(),
                revoked.contains(&ticket.ticket_id.0),
            );
        }
        sections.sort_by(|a, b| a.section.as_str().cmp(b.section.as_str()));
        Ok(sections)
    }

    async fn holder_tickets(
        &self,
        holder: &CustomerId,
        limit: usize,
        cursor: Option<TicketCursor>,
    ) -> Result<TicketPage, ReadModelError> {
        let wanted_total = i32::try_from(limit).unwrap_or(i32::MAX);
        if wanted_total == 0 {
            return Ok(d::ticket_page(Vec::new(), 0));
        }
        let mut request = self
            .client
            .query()
            .table_name(&self.tables.tickets)
            .index_name(BY_HOLDER)
            .scan_index_forward(false)
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":holder", s(holder.as_str()));
        request = match cursor {
            None => request.key_condition_expression("#holder = :holder"),
            Some(cursor) => request
                .key_condition_expression("#holder = :holder AND #held < :after")
                .expression_attribute_names("#held", "held_key")
                .expression_attribute_values(
                    ":after",
                    s(held_key(cursor.held_since, cursor.ticket_id)),
                ),
        };
        let tickets = self
            .query_first(request, wanted_total)
            .await?
            .iter()
            .map(ticket_row)
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<Item> = tickets
            .iter()
            .map(|t| t.ticket_id.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|id| Item::from([("ticket_id".to_owned(), s(id.to_string()))]))
            .collect();
        let revoked: HashMap<Uuid, Revocation> = self
            .batch_get(&self.tables.ticket_revocations, keys, false)
            .await?
            .iter()
            .map(|item| revocation_row(item).map(|r| (r.ticket_id.0, r.reason)))
            .collect::<Result<_, _>>()?;
        let tickets = tickets
            .into_iter()
            .map(|ticket| HeldTicket {
                revoked: revoked.get(&ticket.ticket_id.0).copied(),
                ticket,
            })
            .collect();
        Ok(d::ticket_page(tickets, limit))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, ReadModelError> {
        let mut letters = self
            .scan_rows(&self.tables.dead_letters, dead_letter_row)
            .await?;
        letters.sort_by(|a, b| {
            (a.id, &a.letter.stream_id, a.letter.version).cmp(&(
                b.id,
                &b.letter.stream_id,
                b.letter.version,
            ))
        });
        letters.truncate(limit);
        Ok(letters)
    }

    async fn dump(&self) -> Result<ReadModelDump, ReadModelError> {
        let t = &self.tables;
        let sections = self.scan_rows(&t.sections, section_row).await?;
        let hours = self
            .scan_rows(&t.sales_by_hour, |item| {
                let key = HourKey {
                    show_id: get_s(item, "show_id")?,
                    section: get_s(item, "section")?,
                    hour: parse_instant(&get_s(item, "hour")?)?,
                };
                Ok((key, sales(item)?))
            })
            .await?;
        let reservations = self.scan_rows(&t.reservations, reservation_row).await?;
        let tickets = self.scan_rows(&t.tickets, ticket_row).await?;
        let revocations = self
            .scan_rows(&t.ticket_revocations, revocation_row)
            .await?;
        let applied = self.scan_rows(&t.applied, applied_row).await?;
        let letters = self.dead_letters(usize::MAX).await?;
        Ok(d::dump(
            sections,
            hours,
            reservations,
            (tickets, revocations),
            applied,
            letters,
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn holds_survive_their_binary_encoding() {
        let holds = vec![
            HoldView {
                reservation_id: ReservationId(Uuid::from_u128(7)),
                quantity: 3,
                expires_at: chrono::Utc.with_ymd_and_hms(2026, 6, 1, 12, 10, 0).unwrap(),
            },
            HoldView {
                reservation_id: ReservationId(Uuid::from_u128(u128::MAX)),
                quantity: u32::MAX,
                expires_at: chrono::DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
            },
        ];
        let bytes = encode_holds(&holds);
        assert_eq!(bytes.len(), 56);
        assert_eq!(decode_holds(&bytes).unwrap(), holds);
        assert!(matches!(
            decode_holds(&bytes[..55]),
            Err(ReadModelError::Corrupt(_))
        ));
    }

    #[test]
    fn held_seats_by_expiry_second_survive_their_binary_encoding() {
        let slots = BTreeMap::from([
            (
                chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap(),
                4_999,
            ),
            (
                chrono::DateTime::from_timestamp(1_780_000_001, 0).unwrap(),
                1,
            ),
        ]);
        let bytes = encode_slots(&slots);
        assert_eq!(bytes.len(), 24);
        assert_eq!(decode_slots(&bytes).unwrap(), slots);
        assert!(matches!(
            decode_slots(&bytes[..23]),
            Err(ReadModelError::Corrupt(_))
        ));
    }

    fn at(micros: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_micros(micros).unwrap()
    }

    fn ticket(n: u128, held_since: Timestamp) -> TicketView {
        TicketView {
            stream_id: format!("ticket-{}", Uuid::from_u128(n)),
            ticket_id: TicketId(Uuid::from_u128(n)),
            reservation_id: ReservationId(Uuid::from_u128(100 + n)),
            show_id: ShowId(Uuid::from_u128(7)),
            section: ticketing_domain::SectionName::parse("Floor").unwrap(),
            holder: CustomerId::parse("alice").unwrap(),
            generation: 0,
            held_since,
            admitted_at: None,
            gate: None,
            updated_at: held_since,
        }
    }

    fn revocation(n: u128) -> TicketRevocationView {
        TicketRevocationView {
            stream_id: "reservation-1".into(),
            ticket_id: TicketId(Uuid::from_u128(n)),
            reservation_id: ReservationId(Uuid::from_u128(1)),
            show_id: ShowId(Uuid::from_u128(7)),
            section: ticketing_domain::SectionName::parse("Floor").unwrap(),
            reason: Revocation::Refunded,
            revoked_at: at(1_780_000_000_000_001),
        }
    }

    /// A store whose requests are only built, never sent.
    fn offline_store() -> DynamoDbReadModels {
        let config = aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .build();
        DynamoDbReadModels::new(
            Client::from_conf(config),
            TableNames::with_prefix("unit-").unwrap(),
        )
    }

    #[test]
    fn a_holders_newest_tickets_sort_last_in_the_holder_key() {
        let earlier = at(1_780_000_000_000_000);
        let later = at(1_780_000_000_000_001);
        let (low, high) = (TicketId(Uuid::from_u128(1)), TicketId(Uuid::from_u128(2)));
        // Descending text order (`ScanIndexForward=false`) is newest first, then the
        // higher id first, as SQL's `order by held_since desc, ticket_id desc`.
        let mut keys = vec![
            held_key(later, low),
            held_key(earlier, high),
            held_key(later, high),
            held_key(at(999_999_999_999), high),
        ];
        keys.sort_by(|a, b| b.cmp(a));
        assert_eq!(
            keys,
            vec![
                held_key(later, high),
                held_key(later, low),
                held_key(earlier, high),
                held_key(at(999_999_999_999), high),
            ]
        );
        // A key condition `> since` keeps every ticket held after `since`.
        assert!(held_key(later, low) > instant(earlier));
        assert!(held_key(at(999_999_999_999), high) < instant(earlier));
    }

    #[test]
    fn tickets_and_revocations_survive_their_items() {
        let mut admitted = ticket(3, at(1_780_000_000_123_456));
        admitted.generation = 2;
        admitted.admitted_at = Some(at(1_780_000_100_000_000));
        admitted.gate = Some("North 2".into());
        for row in [ticket(4, at(1_780_000_000_000_000)), admitted] {
            let item = ticket_item(&row);
            assert_eq!(
                item.get("held_key"),
                Some(&s(held_key(row.held_since, row.ticket_id)))
            );
            assert_eq!(ticket_row(&item).unwrap(), row);
        }
        for reason in [Revocation::Refunded, Revocation::Cancelled] {
            let row = TicketRevocationView {
                reason,
                ..revocation(5)
            };
            assert_eq!(revocation_row(&revocation_item(&row)).unwrap(), row);
        }
    }

    #[test]
    fn a_purchases_ticket_ids_survive_its_item_and_are_none_without_the_attribute() {
        let row = ReservationView {
            stream_id: "reservation-1".into(),
            reservation_id: ReservationId(Uuid::from_u128(1)),
            customer_id: CustomerId::parse("alice").unwrap(),
            show_id: ShowId(Uuid::from_u128(7)),
            section: ticketing_domain::SectionName::parse("Floor").unwrap(),
            quantity: 2,
            amount: ticketing_domain::Money {
                amount_minor: 4_000,
                currency: ticketing_domain::Currency::parse("EUR").unwrap(),
            },
            state: ticketing_domain::ReservationStatus::Confirmed,
            placed_at: at(1_780_000_000_000_000),
            expires_at: at(1_780_000_600_000_000),
            paid_at: Some(at(1_780_000_060_000_000)),
            refunded_at: None,
            updated_at: at(1_780_000_060_000_000),
            ticket_ids: vec![TicketId(Uuid::from_u128(8)), TicketId(Uuid::from_u128(9))],
        };
        assert_eq!(reservation_row(&reservation_item(&row)).unwrap(), row);
        let before_tickets = ReservationView {
            ticket_ids: Vec::new(),
            ..row
        };
        let item = reservation_item(&before_tickets);
        assert!(!item.contains_key("ticket_ids"));
        assert_eq!(reservation_row(&item).unwrap(), before_tickets);
    }

    #[test]
    fn revocations_beyond_one_transaction_are_written_before_the_version_moves() {
        let store = offline_store();
        let revocations: Vec<TicketRevocationView> = (0..100).map(revocation).collect();
        let refs: Vec<&TicketRevocationView> = revocations.iter().collect();
        let applied = ("reservation-1".to_owned(), 6, 7);
        let transactions = store
            .stream_transactions(
                &applied,
                StreamRows {
                    revocations: &refs,
                    ..StreamRows::default()
                },
            )
            .unwrap();
        let sizes: Vec<usize> = transactions.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![2, 100],
            "1 check + 1 put, then 1 update + 99 puts"
        );
        assert!(transactions[0][0].condition_check().is_some());
        assert!(transactions[0][1..].iter().all(|op| op.put().is_some()));
        let last = &transactions[1];
        assert!(last[0].update().is_some(), "the version moves last");
        assert_eq!(last[1..].iter().filter(|op| op.put().is_some()).count(), 99);

        let few = store
            .stream_transactions(
                &applied,
                StreamRows {
                    revocations: &refs[..10],
                    ..StreamRows::default()
                },
            )
            .unwrap();
        assert_eq!(few.len(), 1, "what fits is one transaction");
        assert_eq!(few[0].len(), 11);
    }

    #[test]
    fn newer_purchases_sort_after_older_ones_in_the_history_key() {
        let id = ReservationId(Uuid::from_u128(1));
        let earlier = chrono::Utc.with_ymd_and_hms(2026, 6, 1, 9, 59, 59).unwrap();
        let later = earlier + chrono::TimeDelta::microseconds(1);
        assert!(placed_key(earlier, id) < placed_key(later, id));
    }
}
