//! The relay's behaviours, run on both store backends by `on_both_backends!` in
//! `main.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use ticketing_bus::message::headers;
use ticketing_bus::{relay_once, run_relay, EventBus, InProcessBus, RelaySettings};
use ticketing_store::EventStore;

use crate::support::{append_unpublished, outbox};

type Store = Arc<dyn EventStore>;

fn published_ids(bus: &InProcessBus) -> Vec<String> {
    bus.messages()
        .iter()
        .map(|m| m.header(headers::EVENT_ID).unwrap().to_owned())
        .collect()
}

fn ids(events: &[ticketing_store::RecordedEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.to_string()).collect()
}

pub async fn the_relay_publishes_what_a_writer_left_behind_and_never_twice_once_marked(
    store: Store,
) {
    // A command committed these and died before publishing them.
    append_unpublished(store.as_ref(), &["reservation-1", "inventory-1-floor"], 2).await;
    let left = outbox(store.as_ref()).await;
    let bus = InProcessBus::default();

    assert_eq!(
        relay_once(store.as_ref(), &bus, None, 100).await.unwrap(),
        4
    );
    assert_eq!(published_ids(&bus), ids(&left));
    assert!(outbox(store.as_ref()).await.is_empty());

    assert_eq!(
        relay_once(store.as_ref(), &bus, None, 100).await.unwrap(),
        0
    );
    assert_eq!(
        published_ids(&bus),
        ids(&left),
        "nothing is published twice"
    );
}

pub async fn the_relay_leaves_events_younger_than_older_than_to_their_writer(store: Store) {
    append_unpublished(store.as_ref(), &["show-1"], 1).await;
    let bus = InProcessBus::default();
    let recorded_at = outbox(store.as_ref()).await[0].recorded_at;

    let fresh = relay_once(
        store.as_ref(),
        &bus,
        Some(recorded_at - TimeDelta::seconds(10)),
        100,
    )
    .await
    .unwrap();
    assert_eq!(fresh, 0);
    assert!(bus.messages().is_empty());

    let due = relay_once(
        store.as_ref(),
        &bus,
        Some(recorded_at + TimeDelta::seconds(10)),
        100,
    )
    .await
    .unwrap();
    assert_eq!(due, 1);
}

pub async fn a_failed_publish_marks_nothing_and_the_next_pass_publishes_everything(store: Store) {
    append_unpublished(store.as_ref(), &["payment-1", "payment-2"], 2).await;
    let backlog = outbox(store.as_ref()).await;
    let bus = InProcessBus::default();

    bus.pause();
    let error = relay_once(store.as_ref(), &bus, None, 100)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ticketing_bus::RelayError::Bus(e) if e.is_transient()),
        "{error:?}"
    );
    assert_eq!(outbox(store.as_ref()).await, backlog);

    bus.resume();
    assert_eq!(
        relay_once(store.as_ref(), &bus, None, 100).await.unwrap(),
        4
    );
    assert_eq!(published_ids(&bus), ids(&backlog));
    assert!(outbox(store.as_ref()).await.is_empty());
}

pub async fn the_relay_works_through_a_backlog_in_batches_in_global_order(store: Store) {
    append_unpublished(store.as_ref(), &["show-1", "show-2", "show-3"], 3).await;
    let backlog = outbox(store.as_ref()).await;
    let bus = InProcessBus::default();

    let mut passes = Vec::new();
    loop {
        let published = relay_once(store.as_ref(), &bus, None, 4).await.unwrap();
        if published == 0 {
            break;
        }
        passes.push(published);
    }
    assert_eq!(passes, [4, 4, 1]);
    assert_eq!(published_ids(&bus), ids(&backlog), "the global order");
}

pub async fn an_event_without_a_topic_is_left_in_the_outbox_and_the_rest_is_published(
    store: Store,
) {
    append_unpublished(store.as_ref(), &["raw-1", "show-1"], 1).await;
    let bus = InProcessBus::default();

    assert_eq!(
        relay_once(store.as_ref(), &bus, None, 100).await.unwrap(),
        1
    );
    let left: Vec<String> = outbox(store.as_ref())
        .await
        .into_iter()
        .map(|e| e.stream_id)
        .collect();
    assert_eq!(left, ["raw-1"]);
    assert_eq!(bus.messages()[0].key, "show-1");
}

pub async fn run_relay_drains_the_backlog_and_stops_on_shutdown(store: Store) {
    append_unpublished(store.as_ref(), &["inventory-1-a", "inventory-1-b"], 5).await;
    let backlog = outbox(store.as_ref()).await;
    let bus = Arc::new(InProcessBus::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = RelaySettings {
        interval: Duration::from_millis(20),
        grace: Duration::ZERO,
        batch: 3,
        ..RelaySettings::default()
    };

    let relay = {
        let (store, bus) = (store.clone(), bus.clone());
        tokio::spawn(async move {
            run_relay(
                store.as_ref(),
                bus.as_ref() as &dyn EventBus,
                settings,
                stopped,
            )
            .await;
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !outbox(store.as_ref()).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay drains the outbox"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Events committed while it runs are published on a later pass.
    append_unpublished(store.as_ref(), &["inventory-1-c"], 1).await;
    while !outbox(store.as_ref()).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay keeps going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), relay)
        .await
        .expect("the relay stops on shutdown")
        .unwrap();
    assert_eq!(published_ids(&bus).len(), backlog.len() + 1);
    assert_eq!(published_ids(&bus)[..backlog.len()], ids(&backlog));
}

/// The relay's behaviours, each on both backends (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    ticketing_store::trials_on_both_backends![
        the_relay_publishes_what_a_writer_left_behind_and_never_twice_once_marked,
        the_relay_leaves_events_younger_than_older_than_to_their_writer,
        a_failed_publish_marks_nothing_and_the_next_pass_publishes_everything,
        the_relay_works_through_a_backlog_in_batches_in_global_order,
        an_event_without_a_topic_is_left_in_the_outbox_and_the_rest_is_published,
        run_relay_drains_the_backlog_and_stops_on_shutdown,
    ]
}
