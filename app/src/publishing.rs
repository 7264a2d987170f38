//! Publishing what an append committed: handed to the bus in a task of its own, then
//! marked published in the store's outbox.
//!
//! A command waits for the bus's acknowledgement at most its publish budget, so a slow
//! or absent broker costs a buyer that much and no more. Whatever goes wrong (the bus
//! is down, the process dies) never fails the command: its events are committed and in
//! the outbox, and the relay publishes them after its grace period. Past the budget the
//! publishing goes on in the background and marks what the bus acknowledges.
//!
//! One publication can answer several commands: a batch of holds publishes the events
//! of all its holds at once and marks them in one statement, and each buyer waits for
//! that one publication.

use std::sync::Arc;
use std::time::Duration;

use ticketing_bus::EventBus;
use ticketing_store::{EventStore, RecordedEvent};
use tokio::sync::watch;
use tracing::Instrument;

/// The publishing of the events of one append, under way in its own task. Clones wait
/// for the same publishing.
#[derive(Clone, Debug)]
pub(crate) struct Publication {
    /// `None` while the bus has not answered; then whether it acknowledged the events.
    /// Absent when there was nothing to publish.
    acknowledged: Option<watch::Receiver<Option<bool>>>,
}

impl Publication {
    /// Nothing to publish: no bus, or no events recorded by this append.
    pub(crate) fn nothing() -> Self {
        Self { acknowledged: None }
    }

    /// Starts publishing `events` on `bus` (in their global order), then marking them
    /// published in `store`'s outbox.
    pub(crate) fn start(
        bus: Option<Arc<dyn EventBus>>,
        store: Arc<dyn EventStore>,
        mut events: Vec<RecordedEvent>,
    ) -> Self {
        let Some(bus) = bus else {
            return Self::nothing();
        };
        if events.is_empty() {
            return Self::nothing();
        }
        events.sort_by_key(|e| e.global_position);
        let (answer, acknowledged) = watch::channel(None);
        let span = tracing::info_span!("publish", events = events.len());
        tokio::spawn(
            async move {
                let published = publish_and_mark(bus.as_ref(), store.as_ref(), &events).await;
                let _ = answer.send(Some(published));
            }
            .instrument(span),
        );
        Self {
            acknowledged: Some(acknowledged),
        }
    }

    /// Waits at most `budget` for the bus to acknowledge the events.
    pub(crate) async fn wait(self, budget: Duration) {
        let Some(mut acknowledged) = self.acknowledged else {
            return;
        };
        let within_budget = tokio::time::timeout(budget, async {
            // The task ended without an answer (a panic): not published by the command.
            acknowledged
                .wait_for(Option::is_some)
                .await
                .is_ok_and(|answer| *answer == Some(true))
        })
        .await;
        crate::metrics::published(within_budget == Ok(true));
        if within_budget.is_err() {
            tracing::debug!(
                ?budget,
                "the bus has not acknowledged within the publish budget; publishing on in the background"
            );
        }
    }
}

/// Publishes `events` and marks them published; whether the bus acknowledged them.
async fn publish_and_mark(
    bus: &dyn EventBus,
    store: &dyn EventStore,
    events: &[RecordedEvent],
) -> bool {
    if let Err(error) = bus.publish(events).await {
        tracing::warn!(
            error.cause_chain = ?error,
            events = events.len(),
            "events not published; the relay will publish them"
        );
        return false;
    }
    let positions: Vec<i64> = events.iter().map(RecordedEvent::position).collect();
    if let Err(error) = store.mark_published(&positions).await {
        tracing::warn!(
            error.cause_chain = ?error,
            events = events.len(),
            "published events not marked; the relay will publish them again"
        );
    }
    true
}
