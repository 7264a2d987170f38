//! The outbox relay: publishes the events that are still in the store's outbox
//! because the command that appended them could not publish them (broker down,
//! process died between commit and publish), and marks them published once the bus
//! acknowledged them.
//!
//! It runs in every long-running process (the projector, `ticketing serve`) and in the
//! scheduled sweeper. Publishing is at least once: an event the relay publishes while
//! its command is still publishing it goes out twice, and so does a batch whose
//! marking failed. The grace period ([`RelaySettings::grace`]) keeps the first case rare.

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
#[tracing::instrument(skip(store, bus), fields(?older_than, batch))]
pub async fn relay_once(
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
