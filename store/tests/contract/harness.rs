//! Builders shared by the behaviours. Fresh databases come from
//! [`ticketing_store::testing`], which the command layer's tests use too.

use std::sync::Arc;

use serde_json::json;
use ticketing_store::{
    testing, EventMetadata, EventStore, ExpectedVersion, GlobalPosition, NewEvent, RecordedEvent,
    StreamAppend,
};
use uuid::Uuid;

pub use ticketing_store::testing::with_postgres;

/// The store under test, as the command layer sees it.
pub type Store = Arc<dyn EventStore>;

/// An event with a recognisable payload and every metadata field set, so that a test
/// can tell whether all of it survived the round trip.
pub fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 2,
        data: json!({ "n": n, "nested": { "seats": [1, 2, 3], "note": "é ✓" } }),
        metadata: EventMetadata {
            correlation_id: Some(Uuid::new_v4()),
            causation_id: Some(Uuid::new_v4()),
            actor: Some("customer-42".to_owned()),
            idempotency_key: Some(format!("key-{n}")),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        },
    }
}

/// `count` events numbered from 1.
pub fn events(event_type: &str, count: u64) -> Vec<NewEvent> {
    (1..=count).map(|n| event(event_type, n)).collect()
}

/// The streams' new versions of a successful append.
pub fn stream_versions(outcome: &ticketing_store::AppendOutcome) -> Vec<(String, u64)> {
    match outcome {
        ticketing_store::AppendOutcome::Appended {
            stream_versions, ..
        } => stream_versions.clone(),
        other => panic!("expected an append, got {other:?}"),
    }
}

/// One stream's append.
pub fn to_stream(
    stream_id: &str,
    expected_version: ExpectedVersion,
    events: Vec<NewEvent>,
) -> StreamAppend {
    StreamAppend {
        stream_id: stream_id.to_owned(),
        expected_version,
        events,
    }
}

/// Appends to one stream and expects it to succeed.
pub async fn append_ok(
    store: &Store,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) {
    store
        .append(vec![to_stream(stream_id, expected, events)], None)
        .await
        .unwrap_or_else(|e| panic!("appending to {stream_id} fails: {e}"));
}

/// Reads the global order until `expected` events are visible; see
/// [`ticketing_store::testing::read_all_settled`].
pub async fn read_all_settled(
    store: &Store,
    after: GlobalPosition,
    limit: usize,
    expected: usize,
) -> Vec<RecordedEvent> {
    testing::read_all_settled(store.as_ref(), after, limit, expected).await
}
