//! The outbox relay: publishes the events that are still in the store's outbox
//! because the command that appended them could not publish them (broker down,
//! process died between commit and publish), and marks them published once the bus
//! acknowledged them.
//!
//! It runs in `ticketing serve` and, on Lambda, in the scheduled sweeper. Publishing
//! is at least once: an event the relay publishes while its command is still
//! publishing it goes out twice, and so does a batch whose marking failed. The grace
//! period ([`RelaySettings::grace`]) keeps the first case rare.
//!
//! Metrics: `relay_published_total`, `relay_failures_total`, `relay_lag_seconds`,
//! `outbox_depth`, `outbox_oldest_age_seconds` ([`register`]).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;
use ticketing_store::{EventStore, RecordedEvent, StoreError};

use crate::{topic_for, BusError, EventBus};

/// Why a relay pass stopped. Nothing is lost either way: what was not marked published
/// is still in the outbox for the next pass.
#[derive(Debug, Error)]
pub enum RelayError {
    /// Reading or marking the outbox failed. If marking failed, the batch was published
    /// and will be published again.
    #[error("the outbox could not be read or marked")]
    Store(#[from] StoreError),
    /// The bus did not take the batch.
    #[error("the batch could not be published")]
    Bus(#[from] BusError),
}

/// Registers the relay's and the breaker's metrics with the installed recorder: their
/// descriptions, and every series at zero.
pub fn register() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("relay_published_total", "Events the outbox relay published");
    describe_counter!(
        "relay_failures_total",
        "Relay passes that failed (retried with back-off)"
    );
    describe_histogram!(
        "relay_lag_seconds",
        Unit::Seconds,
        "From an event's commit to the relay's publish of it"
    );
    describe_gauge!("outbox_depth", "Committed events not yet published");
    describe_gauge!(
        "outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest event not yet published (0 when none)"
    );
    describe_gauge!(
        crate::breaker::OPEN_GAUGE,
        "1 from a failed publish on the command path until one succeeds, else 0"
    );
    metrics::counter!("relay_published_total").absolute(0);
    metrics::counter!("relay_failures_total").absolute(0);
    let _ = metrics::histogram!("relay_lag_seconds");
    metrics::gauge!(crate::breaker::OPEN_GAUGE).set(0.0);
}

/// How the long-running relay paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    /// The pause between passes once the outbox is drained, and after a first failed
    /// pass.
    pub interval: Duration,
    /// The longest pause after failed passes, which double the pause each time.
    pub max_pause: Duration,
    /// Events younger than this are left to the command that wrote them, which
    /// publishes them right after its commit.
    pub grace: Duration,
    /// How many events one pass publishes at most.
    pub batch: usize,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_pause: Duration::from_secs(60),
            grace: Duration::from_secs(10),
            batch: 100,
        }
    }
}

/// One pass: publishes up to `batch` unpublished events recorded before `older_than`
/// (all of them when `None`), in the global order, and marks them published once the
/// bus acknowledged them. Returns how many were published.
///
/// An event whose stream has no topic is left in the outbox and logged: it needs a
/// person, not a retry.
///
/// # Errors
/// [`RelayError::Store`] when the outbox cannot be read or marked;
/// [`RelayError::Bus`] when the bus does not acknowledge the batch. Nothing of the
/// batch is marked published then.
///
/// Counted in `relay_published_total`, `relay_failures_total` and `relay_lag_seconds`
/// (from each event's commit to its publish); the outbox's backlog is looked at after
/// each pass (`outbox_depth`, `outbox_oldest_age_seconds`).
#[tracing::instrument(skip(store, bus), fields(?older_than, batch))]
pub async fn relay_once(
    store: &dyn EventStore,
    bus: &dyn EventBus,
    older_than: Option<DateTime<Utc>>,
    batch: usize,
) -> Result<usize, RelayError> {
    let relayed = publish_outbox(store, bus, older_than, batch).await;
    match &relayed {
        Ok(published) => metrics::counter!("relay_published_total").increment(*published as u64),
        Err(_) => metrics::counter!("relay_failures_total").increment(1),
    }
    observe_outbox(store).await;
    relayed
}

/// Sets the outbox gauges from the store; a store that cannot answer leaves them as
/// they were (the relay's failure says why).
async fn observe_outbox(store: &dyn EventStore) {
    if let Ok(status) = store.outbox_status().await {
        metrics::gauge!("outbox_depth").set(status.depth as f64);
        let now = Utc::now();
        let age = status
            .oldest
            .map_or(0.0, |oldest| seconds_between(oldest, now));
        metrics::gauge!("outbox_oldest_age_seconds").set(age);
    }
}

/// Seconds from `earlier` to `later`, never negative (clocks of two machines).
fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> f64 {
    (later - earlier).num_milliseconds().max(0) as f64 / 1_000.0
}

async fn publish_outbox(
    store: &dyn EventStore,
    bus: &dyn EventBus,
    older_than: Option<DateTime<Utc>>,
    batch: usize,
) -> Result<usize, RelayError> {
    let (routable, unroutable): (Vec<RecordedEvent>, Vec<RecordedEvent>) = store
        .unpublished(older_than, batch)
        .await?
        .into_iter()
        .partition(|event| topic_for(&event.stream_id).is_some());
    for event in &unroutable {
        tracing::error!(
            stream_id = %event.stream_id,
            event_id = %event.event_id,
            position = event.position(),
            "event has no topic; left in the outbox"
        );
    }
    if routable.is_empty() {
        return Ok(0);
    }
    bus.publish(&routable).await?;
    let now = Utc::now();
    for event in &routable {
        let lag = seconds_between(event.recorded_at, now);
        metrics::histogram!("relay_lag_seconds").record(lag);
    }
    let positions: Vec<i64> = routable.iter().map(RecordedEvent::position).collect();
    store.mark_published(&positions).await?;
    tracing::debug!(published = routable.len(), "relayed");
    Ok(routable.len())
}

/// Relays until `shutdown` completes: passes back to back while they come back full,
/// then one pass every [`RelaySettings::interval`]. A failed pass is logged and tried
/// again after a pause that doubles with each failure in a row, up to
/// [`RelaySettings::max_pause`].
///
/// Shutdown is looked at between passes, never inside one: a batch that is being
/// published is finished and marked before the relay returns (as mini-redis drains its
/// connections), so a stop never leaves published events unmarked.
pub async fn run_relay(
    store: &dyn EventStore,
    bus: &dyn EventBus,
    settings: RelaySettings,
    shutdown: impl Future,
) {
    let grace = TimeDelta::from_std(settings.grace).unwrap_or(TimeDelta::MAX);
    let batch = settings.batch.max(1);
    let mut backoff = crate::Backoff::new(settings.interval, settings.max_pause);
    tokio::pin!(shutdown);
    loop {
        let older_than = (!grace.is_zero()).then(|| {
            Utc::now()
                .checked_sub_signed(grace)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        });
        let pause = match relay_once(store, bus, older_than, batch).await {
            Ok(published) => {
                backoff.succeeded();
                if published == batch {
                    Duration::ZERO
                } else {
                    settings.interval
                }
            }
            Err(error) => {
                let pause = backoff.failed();
                tracing::warn!(
                    error.cause_chain = ?error,
                    failures = backoff.failures(),
                    retry_in = ?pause,
                    "relay pass failed"
                );
                pause
            }
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!("relay stopped");
}
