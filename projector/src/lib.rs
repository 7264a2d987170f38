//! The projection engine: folds batches of recorded events into the read models
//! (`ticketing-read-models`), idempotently and gap-safely, live from the bus or the
//! store, and rebuilds them from the event store's global order.
//!
//! Layout:
//! - `lib.rs`: [`Projector`] ([`Projector::apply_batch`], [`Projector::rebuild`],
//!   [`Projector::catch_up`], [`Projector::check_dead_letters`]).
//! - [`fold`]: the pure, in-memory fold of a batch ([`BatchFold`]).
//! - `error.rs`: [`ProjectionError`].
//! - [`live`]: the live path ([`run_live`] on an event source, [`follow_store`]).
//! - [`metrics`]: the Prometheus metrics.
//! - [`commands`]: what the `projector` binary's commands do (the live run from the
//!   bus or the store, the rebuild with its progress bar, the metrics endpoint, the
//!   dead-letter and bus commands), each stopped by a shutdown future.
//! - `main.rs`: the `projector` binary, which parses its command line and calls
//!   `commands::execute` with the process's shutdown signal.
//!
//! Features: `msk` (the bus on Amazon MSK with IAM authentication) and `dynamodb`
//! (`READ_MODEL_STORE=dynamodb`), both on by default: the binary as deployed beside
//! AWS.
#![forbid(unsafe_code)]

pub mod commands;
mod error;
pub mod fold;
pub mod live;
pub mod metrics;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ticketing_read_models::model::hour_of;
use ticketing_read_models::{BatchWrite, DeadLetter, ReadModelStore};
use ticketing_store::{EventStore, GlobalPosition, RecordedEvent, StreamVersion};

pub use error::ProjectionError;
pub use fold::BatchFold;
pub use live::{follow_store, run_live, LiveReport, LiveSettings};
pub use metrics::ProjectorMetrics;

/// The checkpoint that [`Projector::rebuild`] and [`Projector::catch_up`] keep in
/// `projection_checkpoint`.
pub const CHECKPOINT: &str = "read_models";

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
    ///
    /// [`ReadModelError::Conflict`]: ticketing_read_models::ReadModelError::Conflict
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
    ///
    /// [`ReadModelError::Conflict`]: ticketing_read_models::ReadModelError::Conflict
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
            let hour = hour_of(event.recorded_at);
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
