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
//! of all its holds at once, and each buyer waits for that one publication. And a
//! process marks events published in groups ([`Grouped`]): the publications that are
//! acknowledged while a mark is under way wait, and are marked together in the next
//! statement. Under load each command then costs the store a share of a statement
//! instead of one of its own; alone, a command marks at once.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
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

/// A process's publishing: the bus, and the outbox marks it groups.
pub(crate) struct Publisher {
    /// `None`: every event is left to the relay.
    bus: Option<Arc<dyn EventBus>>,
    store: Arc<dyn EventStore>,
    /// The positions of published events, waiting to be marked.
    marks: Grouped<i64>,
}

impl Publisher {
    pub(crate) fn new(bus: Option<Arc<dyn EventBus>>, store: Arc<dyn EventStore>) -> Self {
        Self {
            bus,
            store,
            marks: Grouped::default(),
        }
    }

    /// Starts publishing `events` on the bus (in their global order), then marking
    /// them published in the store's outbox.
    pub(crate) fn start(self: &Arc<Self>, mut events: Vec<RecordedEvent>) -> Publication {
        let Some(bus) = self.bus.clone() else {
            return Publication::nothing();
        };
        if events.is_empty() {
            return Publication::nothing();
        }
        events.sort_by_key(|e| e.global_position);
        let (answer, acknowledged) = watch::channel(None);
        let span = tracing::info_span!("publish", events = events.len());
        let publisher = Arc::clone(self);
        tokio::spawn(
            async move {
                let published = publisher.publish_and_mark(bus.as_ref(), &events).await;
                let _ = answer.send(Some(published));
            }
            .instrument(span),
        );
        Publication {
            acknowledged: Some(acknowledged),
        }
    }

    /// Publishes `events` and marks them published; whether the bus acknowledged them.
    async fn publish_and_mark(&self, bus: &dyn EventBus, events: &[RecordedEvent]) -> bool {
        if let Err(error) = bus.publish(events).await {
            tracing::warn!(
                error.cause_chain = ?error,
                events = events.len(),
                "events not published; the relay will publish them"
            );
            return false;
        }
        let positions = events.iter().map(RecordedEvent::position);
        self.marks
            .run(positions, |positions| async move {
                if let Err(error) = self.store.mark_published(&positions).await {
                    tracing::warn!(
                        error.cause_chain = ?error,
                        events = positions.len(),
                        "published events not marked; the relay will publish them again"
                    );
                }
            })
            .await;
        true
    }
}

impl Publication {
    /// Nothing to publish: no bus, or no events recorded by this append.
    pub(crate) fn nothing() -> Self {
        Self { acknowledged: None }
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

/// Work that many tasks hand in and that is done in groups, one group at a time: what
/// arrives while a group is being done waits, and goes together in the next, the way
/// a database groups the commits that wait for one flush.
pub(crate) struct Grouped<T> {
    /// Handed in, not yet taken by a group.
    waiting: Mutex<Vec<T>>,
    /// Held while a group is being done.
    turn: tokio::sync::Mutex<()>,
}

impl<T> Default for Grouped<T> {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            turn: tokio::sync::Mutex::default(),
        }
    }
}

impl<T> Grouped<T> {
    /// Hands `items` in and returns once they are done: by `work`, in this call's
    /// turn, with whatever waits beside them; or, if a turn before this one took them
    /// along, by that turn's work.
    pub(crate) async fn run<W, Done>(&self, items: impl IntoIterator<Item = T>, work: W)
    where
        W: FnOnce(Vec<T>) -> Done,
        Done: Future<Output = ()>,
    {
        self.lock_waiting().extend(items);
        let _turn = self.turn.lock().await;
        let group = std::mem::take(&mut *self.lock_waiting());
        if !group.is_empty() {
            work(group).await;
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock_waiting().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `item` in `grouped`, keeping each group its work was given.
    async fn run_recorded(
        grouped: &Grouped<u32>,
        groups: &Mutex<Vec<Vec<u32>>>,
        item: u32,
        gate: Option<watch::Receiver<bool>>,
    ) {
        grouped
            .run([item], |group| async move {
                groups.lock().unwrap().push(group);
                if let Some(mut gate) = gate {
                    let _ = gate.wait_for(|open| *open).await;
                }
            })
            .await;
    }

    #[tokio::test]
    async fn alone_an_item_is_done_at_once_in_a_group_of_its_own() {
        let grouped = Grouped::default();
        let groups = Mutex::new(Vec::new());
        run_recorded(&grouped, &groups, 1, None).await;
        run_recorded(&grouped, &groups, 2, None).await;
        assert_eq!(*groups.lock().unwrap(), [vec![1], vec![2]]);
    }

    #[tokio::test]
    async fn what_arrives_while_a_group_is_done_goes_together_in_the_next() {
        let grouped = Arc::new(Grouped::default());
        let groups = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = watch::channel(false);

        let first = tokio::spawn({
            let (grouped, groups) = (Arc::clone(&grouped), Arc::clone(&groups));
            async move { run_recorded(&grouped, &groups, 1, Some(gate)).await }
        });
        while groups.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let others: Vec<_> = (2..=4)
            .map(|item| {
                let (grouped, groups) = (Arc::clone(&grouped), Arc::clone(&groups));
                tokio::spawn(async move { run_recorded(&grouped, &groups, item, None).await })
            })
            .collect();
        while grouped.waiting() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(groups.lock().unwrap().len(), 1, "one group at a time");

        open.send_replace(true);
        first.await.unwrap();
        for other in others {
            other.await.unwrap();
        }
        let mut groups = groups.lock().unwrap().clone();
        groups[1].sort_unstable();
        assert_eq!(groups, [vec![1], vec![2, 3, 4]]);
    }
}
