//! Running a command: decide against freshly loaded state, append with the versions it
//! was decided on, and on a version conflict reload and decide again, a bounded number
//! of times with jittered back-off. An idempotency key makes a retried command append
//! nothing and answer as the first one did.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use ticketing_store::{
    AppendOutcome, EventMetadata, IdempotencyRecord, KeyClaim, RecordedEvent, StoreError,
};
use uuid::Uuid;

use crate::repository::{to_json, Change};
use crate::{AppError, Ticketing};

/// Who issues a command, and how to recognise its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The authenticated principal (`sub`), or `system` for the sweeper and tools.
    pub actor: String,
    /// Ties together every event one request causes.
    pub correlation_id: Uuid,
    /// The client's idempotency key, if it sent one.
    pub idempotency_key: Option<String>,
    /// The W3C `traceparent` of the request's span, stored with every event the
    /// command appends so that their publication and projection join its trace.
    pub traceparent: Option<String>,
}

impl CommandContext {
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            correlation_id: Uuid::now_v7(),
            idempotency_key: None,
            traceparent: None,
        }
    }

    /// Commands issued by the system itself (the sweeper, the demo's clean-up).
    pub fn system() -> Self {
        Self::new("system")
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    pub(crate) fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: Some(self.correlation_id),
            causation_id: None,
            actor: Some(self.actor.clone()),
            idempotency_key: self.idempotency_key.clone(),
            traceparent: self.traceparent.clone(),
        }
    }
}

/// The events one attempt decided, per stream, and what the command answers.
pub struct Decision<T> {
    pub changes: Vec<Change>,
    pub outcome: T,
    /// Whether this outcome is the command's answer. A step that leaves work to a
    /// later one (a capture whose refund follows) does not store the idempotency
    /// record: the step that completes the command does.
    pub completes: bool,
}

/// A command's idempotency key, scoped to its actor, and the fingerprint of its request.
#[derive(Debug, Clone)]
pub(crate) struct Idempotency {
    key: String,
    fingerprint: String,
    /// Whether the command's outcome was appended, which also finished its claim.
    recorded: Arc<std::sync::atomic::AtomicBool>,
}

impl Idempotency {
    /// The recorded outcome of this key's first run, as this command's answer.
    ///
    /// # Errors
    /// [`AppError::IdempotencyKeyReused`] when the key was used for another request;
    /// [`AppError::UnreadableOutcome`] when the outcome is not this command's.
    fn answer<T: DeserializeOwned>(&self, record: IdempotencyRecord) -> Result<T, AppError> {
        if record.request_fingerprint != self.fingerprint {
            return Err(AppError::IdempotencyKeyReused);
        }
        serde_json::from_value(record.outcome).map_err(|error| AppError::UnreadableOutcome {
            key: self.key.clone(),
            reason: error.to_string(),
        })
    }

    /// The record that stores `outcome` as this key's answer.
    pub(crate) fn record<T: Serialize>(&self, outcome: &T) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            request_fingerprint: self.fingerprint.clone(),
            outcome: to_json(outcome),
        }
    }

    pub(crate) fn mark_recorded(&self) {
        self.recorded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn is_recorded(&self) -> bool {
        self.recorded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// `None` when the client sent no key.
    pub(crate) fn of(
        ctx: &CommandContext,
        command: &str,
        request: &impl Serialize,
    ) -> Option<Self> {
        let key = ctx.idempotency_key.as_ref()?;
        let mut hasher = Sha256::new();
        hasher.update(command.as_bytes());
        hasher.update(b"\n");
        hasher.update(to_json(request).to_string().as_bytes());
        let fingerprint = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(Self {
            // Keys are the client's: two actors may pick the same one.
            key: format!("{}/{}", ctx.actor, key),
            fingerprint,
            recorded: Arc::default(),
        })
    }
}

/// How long a command may hold its idempotency key: longer than any command takes
/// (a payment provider call included), short enough that a command whose process died
/// blocks its retries only briefly.
pub const CLAIM_DURATION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How hard to try before reporting contention.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// The first back-off's upper bound; it doubles with each attempt.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1 << attempt.min(8));
        let millis = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

impl Ticketing {
    /// The first outcome of a command retried with the same idempotency key, if any.
    ///
    /// # Errors
    /// [`AppError::IdempotencyKeyReused`] when the key was used for another request.
    pub(crate) async fn replay<T: DeserializeOwned>(
        &self,
        idempotency: Option<&Idempotency>,
    ) -> Result<Option<T>, AppError> {
        let Some(idempotency) = idempotency else {
            return Ok(None);
        };
        match self.store.idempotency_record(&idempotency.key).await? {
            None => Ok(None),
            Some(record) => idempotency.answer(record).map(Some),
        }
    }

    /// Runs a command at most once per idempotency key: a retry after it finished gets
    /// its recorded outcome; a duplicate that arrives while it is still running gets
    /// [`AppError::RequestInProgress`]; the same key with another request gets
    /// [`AppError::IdempotencyKeyReused`]. Without a key, the command just runs.
    ///
    /// The key is claimed for the command's duration (at most [`CLAIM_DURATION`], so that
    /// a command whose process died does not block its retries for long), in the same
    /// round trip that looks for a recorded outcome. The append that records the
    /// outcome finishes the claim; a command that ends without one releases it.
    pub(crate) async fn once<T, Fut>(
        &self,
        idempotency: Option<&Idempotency>,
        command: Fut,
    ) -> Result<T, AppError>
    where
        T: DeserializeOwned,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let Some(key) = idempotency else {
            return command.await;
        };
        let now = self.clock.now();
        match self
            .store
            .claim_idempotency_key(&key.key, &key.fingerprint, now, now + CLAIM_DURATION)
            .await?
        {
            KeyClaim::Claimed => {}
            KeyClaim::Done(record) => return key.answer(record),
            KeyClaim::Busy {
                request_fingerprint,
            } if request_fingerprint != key.fingerprint => {
                return Err(AppError::IdempotencyKeyReused)
            }
            KeyClaim::Busy { .. } => return Err(AppError::RequestInProgress),
        }
        let result = command.await;
        if key.is_recorded() {
            return result;
        }
        if let Err(error) = self.store.release_idempotency_key(&key.key).await {
            // The claim expires by itself; until then duplicates are told to wait.
            tracing::warn!(error.cause_chain = ?error, "idempotency key not released");
        }
        result
    }

    /// Runs `attempt` until its events are appended, retrying on version conflicts.
    ///
    /// `attempt` must load what it decides on afresh each time it is called. With an
    /// `idempotency` key, its outcome is stored with the events in one transaction.
    pub(crate) async fn execute<T, F, Fut>(
        &self,
        ctx: &CommandContext,
        idempotency: Option<&Idempotency>,
        mut attempt: F,
    ) -> Result<T, AppError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Decision<T>, AppError>>,
    {
        let metadata = ctx.metadata();
        let mut tries = 0;
        loop {
            tries += 1;
            let Decision {
                changes,
                outcome,
                completes,
            } = attempt().await?;
            if changes.iter().all(|c| c.events.is_empty()) {
                return Ok(outcome);
            }
            let record = idempotency
                .filter(|_| completes)
                .map(|i| i.record(&outcome));
            let appends = changes
                .iter()
                .filter(|c| c.is_appended())
                .map(|c| c.clone().into_append(&metadata))
                .collect();
            // A change made in a turn on its stream is appended in that turn.
            let turn = changes
                .iter()
                .filter_map(|c| c.turn.as_ref())
                .find_map(|slot| slot.take());
            let records_outcome = record.is_some();
            let appended = match turn {
                Some(turn) => turn.append(appends, record.into_iter().collect()).await,
                None => self.store.append(appends, record).await,
            };
            // Any other turn the decision held is given up before a retry waits.
            for slot in changes.iter().filter_map(|c| c.turn.as_ref()) {
                drop(slot.take());
            }
            if let (Ok(_), Some(idempotency), true) = (&appended, idempotency, records_outcome) {
                idempotency.mark_recorded();
            }
            match appended {
                Ok(AppendOutcome::Appended { recorded, .. }) => {
                    self.publish(recorded).await;
                    self.save_snapshots(&changes).await;
                    return Ok(outcome);
                }
                Ok(AppendOutcome::AlreadyAppended) => {
                    // The events committed on an earlier try inside the store; if
                    // they were not published then, the relay publishes them.
                    self.save_snapshots(&changes).await;
                    return Ok(outcome);
                }
                Err(StoreError::VersionConflict { stream_id, .. }) => {
                    if tries >= self.settings.retry.max_attempts {
                        return Err(AppError::Contention {
                            stream_id,
                            attempts: tries,
                        });
                    }
                    crate::metrics::version_conflict();
                    // Whatever the process knew of the stream is not to be trusted.
                    self.known_buckets.forget_all(&stream_id);
                    tracing::debug!(stream_id, tries, "version conflict; deciding again");
                    tokio::time::sleep(self.settings.retry.backoff(tries)).await;
                }
                Err(StoreError::IdempotencyKeyTaken(_)) => {
                    // A concurrent duplicate committed first: answer as it did.
                    return self
                        .replay(idempotency)
                        .await?
                        .ok_or(AppError::IdempotencyKeyReused);
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Publishes the events an append just committed, as the store recorded them, and
    /// marks them published, waiting for the bus at most the publish budget
    /// ([`crate::publishing`]). Never fails the command: what is not published here the
    /// relay publishes. A bus failure opens its breaker, so that later commands do not
    /// wait at all.
    pub(crate) async fn publish(&self, events: Vec<RecordedEvent>) {
        self.publisher
            .start(events)
            .wait(self.settings.publish_budget)
            .await;
    }

    /// Snapshots are an optimisation: failing to save one is logged, not reported.
    async fn save_snapshots(&self, changes: &[Change]) {
        for snapshot in changes
            .iter()
            .filter_map(|c| c.due_snapshot(self.settings.snapshot_every))
        {
            if let Err(error) = self.store.save_snapshot(snapshot).await {
                tracing::warn!(error.cause_chain = ?error, "snapshot not saved");
            }
        }
    }
}
