use std::sync::Arc;

use ticketing_bus::message::{headers, INVENTORY_TOPIC, SHOW_TOPIC};
use ticketing_bus::{BusError, EventBus, InProcessBus, InProcessConfig};
use ticketing_store::testing::with_sqlite;
use ticketing_store::EventStore;

use crate::support::{append_unpublished, outbox};

pub async fn published_events_reach_the_log_and_every_subscriber_in_order() {
    with_sqlite(|store| async move {
        append_unpublished(&store, &["show-1", "inventory-1-floor"], 2).await;
        let events = outbox(&store).await;
        let bus = InProcessBus::default();
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();

        bus.publish(&events).await.unwrap();

        let logged = bus.messages();
        assert_eq!(logged.len(), 4);
        for (message, event) in logged.iter().zip(&events) {
            assert_eq!(message.key, event.stream_id);
            assert_eq!(
                message.header(headers::EVENT_ID),
                Some(event.event_id.to_string().as_str())
            );
            assert_eq!(first.recv().await.unwrap(), *message);
            assert_eq!(second.recv().await.unwrap(), *message);
        }
        let topics: Vec<&str> = logged.iter().map(|m| m.topic).collect();
        assert_eq!(
            topics,
            [SHOW_TOPIC, SHOW_TOPIC, INVENTORY_TOPIC, INVENTORY_TOPIC]
        );
    })
    .await;
}

pub async fn the_log_keeps_only_the_latest_messages() {
    with_sqlite(|store| async move {
        append_unpublished(&store, &["payment-1"], 5).await;
        let events = outbox(&store).await;
        let bus = InProcessBus::new(InProcessConfig {
            retain: 3,
            ..InProcessConfig::default()
        });
        bus.publish(&events).await.unwrap();
        let kept: Vec<String> = bus
            .messages()
            .iter()
            .map(|m| m.header(headers::STREAM_VERSION).unwrap().to_owned())
            .collect();
        assert_eq!(kept, ["3", "4", "5"]);
    })
    .await;
}

pub async fn a_paused_bus_refuses_like_a_broker_that_is_down_until_resumed() {
    with_sqlite(|store| async move {
        append_unpublished(&store, &["reservation-1"], 1).await;
        let events = outbox(&store).await;
        let bus = Arc::new(InProcessBus::default());

        bus.pause();
        let error = bus.publish(&events).await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        assert!(bus.messages().is_empty());

        bus.resume();
        bus.publish(&events).await.unwrap();
        assert_eq!(bus.messages().len(), 1);
    })
    .await;
}

pub async fn a_batch_with_an_unroutable_event_publishes_nothing() {
    with_sqlite(|store| async move {
        append_unpublished(&store, &["show-1", "raw-1"], 1).await;
        let events = outbox(&store).await;
        let bus = InProcessBus::default();
        let error = bus.publish(&events).await.unwrap_err();
        assert!(
            matches!(&error, BusError::Unroutable { stream_id } if stream_id == "raw-1"),
            "{error:?}"
        );
        assert!(bus.messages().is_empty());
        // The store is untouched by a failed publish.
        assert_eq!(store.unpublished(None, 10).await.unwrap(), events);
    })
    .await;
}

/// This module's tests, as trials (see `main.rs`).
pub fn trials() -> Vec<ticketing_store::testing::Trial> {
    use ticketing_store::testing::async_trial;
    ticketing_store::trials![
        async_trial =>
            published_events_reach_the_log_and_every_subscriber_in_order,
            the_log_keeps_only_the_latest_messages,
            a_paused_bus_refuses_like_a_broker_that_is_down_until_resumed,
            a_batch_with_an_unroutable_event_publishes_nothing,
    ]
}
