use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::json;
use ticketing_app::{Clock, Settings};
use ticketing_domain::*;
use ticketing_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, Snapshot, StreamAppend,
};
use uuid::Uuid;

use crate::support::*;

/// The state a stream folds to from its first event, without any snapshot.
async fn replayed(store: &dyn EventStore, stream: &str, up_to: u64) -> Inventory {
    let events = store.read_stream(stream, 0).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.version <= up_to)
        .map(|e| InventoryEvent::decode(&e.event_type, e.schema_version, e.data).unwrap())
        .fold(Inventory::default(), |state, event| state.evolve(&event))
}

pub async fn loading_from_snapshots_gives_the_same_state_as_replaying(store: Arc<dyn EventStore>) {
    let settings = Settings {
        snapshot_every: 3,
        ..Settings::default()
    };
    let h = harness_with(store, settings);
    let show_id = show_on_sale(&h, 100).await;
    for n in 0..7 {
        hold(&h, show_id, n, 2).await;
    }
    let stream = inventory_stream(show_id, &floor());
    let snapshot = h
        .store
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("a snapshot was taken");
    assert_eq!(
        snapshot.version, 6,
        "taken when the stream crossed 6 events"
    );
    assert_eq!(snapshot.schema_version, Inventory::SNAPSHOT_VERSION);
    let snapshot_state: Inventory = serde_json::from_value(snapshot.state).unwrap();
    assert_eq!(snapshot_state, replayed(h.store.as_ref(), &stream, 6).await);

    // The command layer loads the snapshot plus the two newer events.
    let everything = replayed(h.store.as_ref(), &stream, u64::MAX)
        .await
        .0
        .unwrap();
    let now = h.clock.now();
    let expected = (
        everything.held_count(now),
        everything.sold_count(),
        everything.available(now),
    );
    assert_eq!(expected, (14, 0, 86));
    assert_eq!(seats(&h, show_id).await, expected);
}

pub async fn an_unusable_snapshot_is_ignored(store: Arc<dyn EventStore>) {
    let h = harness_with(
        store,
        Settings {
            snapshot_every: 0,
            ..Settings::default()
        },
    );
    let show_id = show_on_sale(&h, 100).await;
    hold(&h, show_id, 1, 2).await;
    let stream = inventory_stream(show_id, &floor());
    let wrong_schema = Snapshot {
        stream_id: stream.clone(),
        version: 2,
        schema_version: Inventory::SNAPSHOT_VERSION + 1,
        state: json!({"anything": true}),
    };
    h.store.save_snapshot(wrong_schema).await.unwrap();
    assert_eq!(seats(&h, show_id).await, (2, 0, 98));
    let unreadable = Snapshot {
        stream_id: stream,
        version: 3,
        schema_version: Inventory::SNAPSHOT_VERSION,
        state: json!({"not": "an inventory"}),
    };
    h.store.save_snapshot(unreadable).await.unwrap();
    assert_eq!(seats(&h, show_id).await, (2, 0, 98));
}

pub async fn a_version_one_event_in_the_store_is_read_in_the_current_shape(
    store: Arc<dyn EventStore>,
) {
    let h = harness(store);
    let show_id = show_on_sale(&h, 100).await;
    let stream = inventory_stream(show_id, &floor());
    // A hold as an early release stored it: `seats`, `held_at` and `hold_seconds`.
    let old = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "SeatsHeld".into(),
        schema_version: 1,
        data: json!({
            "reservation_id": ReservationId::new(),
            "seats": 5,
            "held_at": h.clock.now(),
            "hold_seconds": 300,
        }),
        metadata: EventMetadata::default(),
    };
    let append = StreamAppend {
        stream_id: stream,
        expected_version: ExpectedVersion::Exact(1),
        events: vec![old],
    };
    h.store.append(vec![append], None).await.unwrap();
    assert_eq!(seats(&h, show_id).await, (5, 0, 95));
    h.clock.advance(TimeDelta::seconds(300));
    assert_eq!(
        seats(&h, show_id).await,
        (0, 0, 100),
        "the upcast expiry is held_at + hold_seconds"
    );
    // New decisions work on top of the upcast state.
    hold(&h, show_id, 1, 2).await;
    assert_eq!(seats(&h, show_id).await, (2, 0, 98));
}
