//! Holds on one bucket decided and committed together (stream: one `inventory-…`
//! bucket, and each hold's new `reservation-…`).
//!
//! At an on-sale a process has many buyers' holds on the same bucket at once, and each
//! would take the bucket's turn, load it, append and commit on its own: the bucket
//! serves one commit at a time, so buyers queue for it. Here the holds that wait for
//! the same bucket in one process join a batch instead: one task takes the turn for
//! all of them, loads the bucket once, decides each hold in arrival order against the
//! bucket as the holds before it left it, and appends every granted hold (its seats,
//! its reservation, its idempotency record) in one transaction, whose events it then
//! publishes at once and marks published in one statement. Holds are decided on the
//! show as the process knew it ([`crate::known`]), and checked in the turn against the
//! show's stream, in one read for the batch. Each buyer is answered as if its hold had
//! run alone: granted, not enough seats in this bucket (the buyer tries the next one),
//! refused by the domain, decide again (the show changed), or no turn within the
//! section wait. A hold that finds nothing of its process in flight on the bucket is a
//! batch of one, run in its own task, as holds ran before batches.
//!
//! A batch commits as a whole or not at all. When its append fails (the database is
//! down, a key was recorded meanwhile), nothing of it is stored and every hold in it is
//! run again on its own, through the ordinary path, which reports its own error. Across
//! processes (each Lambda invocation is one) the turn still orders the writers: a batch
//! is one writer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ticketing_domain::{Aggregate, DomainError, InventoryCommand};
use ticketing_store::{
    AppendOutcome, EventMetadata, EventStore, IdempotencyRecord, StoreError, StreamLock,
    StreamVersion,
};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::clock::Clock;
use crate::known::KnownBuckets;
use crate::publishing::{Publication, Publisher};
use crate::repository::Change;

/// A hold in a batch, with where its verdict goes.
type Queued = (Ticket, oneshot::Sender<Verdict>);

/// One buyer's hold, waiting for its bucket's batch.
pub(crate) struct Ticket {
    /// The hold to decide on the bucket (`InventoryCommand::Hold`).
    pub hold: InventoryCommand,
    /// The reservation the hold places, decided beforehand: it does not depend on the
    /// bucket's state.
    pub reservation: Change,
    /// The show stream the hold was decided on and the version it was decided at
    /// ([`crate::known`]): the batch checks in its turn that the stream has not
    /// moved since.
    pub show: (String, StreamVersion),
    pub metadata: EventMetadata,
    /// The command's outcome, stored with the batch when the client sent a key.
    pub record: Option<IdempotencyRecord>,
    /// Past this instant the buyer has waited its section wait: no turn, no hold.
    pub deadline: Instant,
    /// The buyer's request span: a batch runs in the trace of its first hold and
    /// links the others' (a lone hold's append stays in its own request's trace).
    pub span: tracing::Span,
}

/// What became of a hold in its batch.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Committed: the publishing of the batch's events (to wait for), and the seats
    /// the bucket had left after the hold.
    Held {
        publication: Publication,
        available: u32,
    },
    /// The bucket has fewer free seats than the hold asks for.
    NotHere { available: u32 },
    /// The domain refused the hold (sales not open, show cancelled, ...).
    Refused(DomainError),
    /// The show the hold was decided on has changed since: decide it again on the
    /// show as it is now.
    ShowMoved,
    /// The bucket's turn did not come within the section wait.
    NoTurn,
    /// The batch could not be stored: run the hold on its own.
    Alone,
    /// The batch ended without an answer: whether it stored the hold is unknown.
    Lost,
}

/// What a batch needs of the command layer, shared with the task that runs it.
#[derive(Clone)]
pub(crate) struct BatchContext {
    pub store: Arc<dyn EventStore>,
    /// Where a batch publishes its events, all at once.
    pub publisher: Arc<Publisher>,
    /// The buckets as this process last loaded them ([`crate::known`]).
    pub known_buckets: Arc<KnownBuckets>,
    pub clock: Arc<dyn Clock>,
    /// The most holds decided in one transaction.
    pub max_batch: usize,
    pub snapshot_every: u64,
}

/// The batches of one process, per bucket stream.
#[derive(Default)]
pub(crate) struct HoldBatches {
    lanes: Mutex<HashMap<String, Lane>>,
    /// Holds queued or being decided, not yet answered.
    in_batches: AtomicUsize,
}

/// Hands a bucket served by a buyer's task over when that task is done with it (or
/// went away): to a batch task if holds wait, else the lane is closed.
struct HandOver {
    batches: Arc<HoldBatches>,
    context: BatchContext,
    stream: String,
}

impl Drop for HandOver {
    fn drop(&mut self) {
        let mut lanes = self
            .batches
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let waiting = lanes
            .get(&self.stream)
            .is_some_and(|lane| !lane.waiting.is_empty());
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if waiting => {
                drop(lanes);
                let (batches, context, stream) = (
                    Arc::clone(&self.batches),
                    self.context.clone(),
                    self.stream.clone(),
                );
                runtime.spawn(async move { batches.serve(&context, &stream).await });
            }
            // Nothing waits, or no runtime to serve them (shutting down: the waiting
            // buyers are answered `Lost`).
            _ => {
                lanes.remove(&self.stream);
            }
        }
    }
}

/// One more hold in the batches for as long as it lives (a buyer who goes away drops it).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The holds waiting for a bucket that is being served. A lane exists while a buyer's
/// task or a batch task serves the bucket, and only one of them does at a time.
#[derive(Default)]
struct Lane {
    waiting: Vec<Queued>,
}

impl HoldBatches {
    /// Decides `ticket` on `bucket_stream` and answers with its verdict.
    ///
    /// When nothing of this process is in flight on the bucket, the hold is a batch of
    /// one, run in the buyer's own task: a lone hold (every hold on Lambda) costs what
    /// it did before batches. The holds that arrive meanwhile queue, and a task of its
    /// own then serves them in batches until none waits, so that a buyer who goes away
    /// takes no other buyer's hold with it (its own may still be granted: it is then
    /// found under its idempotency key, or expires).
    pub(crate) async fn hold(
        self: &Arc<Self>,
        context: &BatchContext,
        bucket_stream: &str,
        ticket: Ticket,
    ) -> Verdict {
        let _counted = Counted::new(&self.in_batches);
        let (reply, verdict) = oneshot::channel();
        let alone = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            match lanes.get_mut(bucket_stream) {
                Some(lane) => {
                    lane.waiting.push((ticket, reply));
                    None
                }
                None => {
                    lanes.insert(bucket_stream.to_owned(), Lane::default());
                    Some((ticket, reply))
                }
            }
        };
        if let Some(own) = alone {
            let _hand_over = HandOver {
                batches: Arc::clone(self),
                context: context.clone(),
                stream: bucket_stream.to_owned(),
            };
            crate::metrics::hold_batch(1);
            run_batch(context, bucket_stream, vec![own]).await;
        }
        // No answer: the task deciding it ended (a panic) without one. Whether the
        // hold was stored is unknown, so it is not run again: the buyer retries.
        verdict.await.unwrap_or(Verdict::Lost)
    }

    /// How many holds are queued for a batch or being decided in one.
    pub(crate) fn in_batches(&self) -> usize {
        self.in_batches.load(Ordering::SeqCst)
    }

    /// The next batch of `stream`'s lane, or `None` (the lane no longer served) when
    /// nothing waits.
    fn next_batch(&self, stream: &str, max: usize) -> Option<Vec<Queued>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lane = lanes.get_mut(stream)?;
        if lane.waiting.is_empty() {
            lanes.remove(stream);
            return None;
        }
        let take = lane.waiting.len().min(max.max(1));
        Some(lane.waiting.drain(..take).collect())
    }

    /// Serves `stream`'s lane until nothing waits.
    async fn serve(&self, context: &BatchContext, stream: &str) {
        // Should this task panic, the lane must not stay open with nobody serving it.
        struct Unserve<'a>(&'a HoldBatches, &'a str);
        impl Drop for Unserve<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut lanes = self.0.lanes.lock().unwrap_or_else(PoisonError::into_inner);
                    lanes.remove(self.1);
                }
            }
        }
        let _unserve = Unserve(self, stream);
        while let Some(batch) = self.next_batch(stream, context.max_batch) {
            crate::metrics::hold_batch(batch.len());
            let span = tracing::info_span!(
                parent: &batch[0].0.span,
                "hold_batch",
                holds = batch.len()
            );
            for (ticket, _) in &batch[1..] {
                span.follows_from(&ticket.span);
            }
            run_batch(context, stream, batch).instrument(span).await;
        }
    }
}

/// Takes the bucket's turn, decides every hold of `batch` in order, appends the granted
/// ones together, and answers each.
async fn run_batch(context: &BatchContext, stream: &str, batch: Vec<Queued>) {
    let started = Instant::now();
    let (batch, late): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|(ticket, _)| ticket.deadline > started);
    for (_, reply) in late {
        let _ = reply.send(Verdict::NoTurn);
    }
    let Some(latest) = batch.iter().map(|(ticket, _)| ticket.deadline).max() else {
        return;
    };
    let wait = latest
        .saturating_duration_since(started)
        .max(Duration::from_millis(1));
    let mut turn = match context.store.lock_stream(stream, wait).await {
        Ok(turn) => turn,
        Err(StoreError::Busy { .. }) => return answer_all(batch, || Verdict::NoTurn),
        Err(error) => {
            tracing::debug!(error.cause_chain = ?error, "no turn for a batch of holds");
            return answer_all(batch, || Verdict::Alone);
        }
    };
    crate::metrics::turn_waited(started.elapsed());
    let bucket = match context
        .known_buckets
        .load_in_turn(turn.as_mut(), stream)
        .await
    {
        Ok(bucket) => bucket,
        Err(error) => {
            tracing::debug!(error.cause_chain = ?error, "bucket not loaded for a batch of holds");
            return answer_all(batch, || Verdict::Alone);
        }
    };

    let batch = match without_moved_shows(turn.as_mut(), batch).await {
        Ok(batch) => batch,
        Err(batch) => return answer_all(batch, || Verdict::Alone),
    };

    let now = context.clock.now();
    let mut state = bucket.state.clone();
    let mut granted = Vec::with_capacity(batch.len());
    let mut bucket_events = Vec::new();
    for (ticket, reply) in batch {
        match state.decide(ticket.hold.clone(), now) {
            Ok(events) => {
                state = state.fold(&events);
                let available = state.0.as_ref().map_or(0, |s| s.available(now));
                granted.push(Granted {
                    events: events.len(),
                    available,
                    ticket,
                    reply,
                });
                bucket_events.extend(events);
            }
            Err(DomainError::SoldOut { available, .. }) => {
                let _ = reply.send(Verdict::NotHere { available });
            }
            Err(refusal) => {
                let _ = reply.send(Verdict::Refused(refusal));
            }
        }
    }
    if granted.is_empty() {
        return;
    }

    let change = bucket.change(bucket_events);
    let metadata: Vec<&EventMetadata> = granted
        .iter()
        .flat_map(|g| std::iter::repeat_n(&g.ticket.metadata, g.events))
        .collect();
    let bucket_append = change.clone().into_append_each(|index| {
        metadata
            .get(index)
            .map(|m| (*m).clone())
            .unwrap_or_default()
    });
    let mut appends = vec![bucket_append];
    appends.extend(
        granted
            .iter()
            .map(|g| g.ticket.reservation.clone().into_append(&g.ticket.metadata)),
    );
    let records = granted
        .iter()
        .filter_map(|g| g.ticket.record.clone())
        .collect();
    match turn.append(appends, records).await {
        Ok(AppendOutcome::Appended { recorded, .. }) => {
            let publication = context.publisher.start(recorded);
            answer_granted(granted, &publication);
            if let Some(snapshot) = change.due_snapshot(context.snapshot_every) {
                if let Err(error) = context.store.save_snapshot(snapshot).await {
                    tracing::warn!(error.cause_chain = ?error, "snapshot not saved");
                }
            }
        }
        // Fresh event ids cannot have been stored before; were they, the relay
        // publishes them.
        Ok(AppendOutcome::AlreadyAppended) => answer_granted(granted, &Publication::nothing()),
        Err(error) => {
            if let StoreError::VersionConflict { stream_id, .. } = &error {
                context.known_buckets.forget_all(stream_id);
            }
            tracing::debug!(
                error.cause_chain = ?error,
                holds = granted.len(),
                "a batch of holds was not stored; each runs alone"
            );
            for g in granted {
                let _ = g.reply.send(Verdict::Alone);
            }
        }
    }
}

/// Answers [`Verdict::ShowMoved`] to the holds decided on a show whose stream has
/// moved past the version they knew, and returns the others; or, when a show could not
/// be read, the whole batch.
async fn without_moved_shows(
    turn: &mut dyn StreamLock,
    batch: Vec<Queued>,
) -> Result<Vec<Queued>, Vec<Queued>> {
    // Each show stream's head, read from the oldest version a hold knew it at.
    let mut heads: HashMap<String, StreamVersion> = HashMap::new();
    for (ticket, _) in &batch {
        let (stream, version) = &ticket.show;
        let head = heads.entry(stream.clone()).or_insert(*version);
        *head = (*head).min(*version);
    }
    for (stream, head) in &mut heads {
        match turn.read_stream(stream, *head).await {
            Ok(events) => *head = events.last().map_or(*head, |event| event.version),
            Err(error) => {
                tracing::debug!(error.cause_chain = ?error, "show not read for a batch of holds");
                return Err(batch);
            }
        }
    }
    let (current, moved): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(ticket, _)| {
        let (stream, version) = &ticket.show;
        heads.get(stream).is_none_or(|head| head <= version)
    });
    for (_, reply) in moved {
        let _ = reply.send(Verdict::ShowMoved);
    }
    Ok(current)
}

/// A hold the batch granted: how many bucket events it decided, and what its bucket
/// had left after it.
struct Granted {
    events: usize,
    available: u32,
    ticket: Ticket,
    reply: oneshot::Sender<Verdict>,
}

fn answer_all(batch: Vec<Queued>, verdict: impl Fn() -> Verdict) {
    for (_, reply) in batch {
        let _ = reply.send(verdict());
    }
}

/// Answers each granted hold: held, with the batch's publication to wait for.
fn answer_granted(granted: Vec<Granted>, publication: &Publication) {
    for g in granted {
        let _ = g.reply.send(Verdict::Held {
            publication: publication.clone(),
            available: g.available,
        });
    }
}
