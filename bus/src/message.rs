//! How a stored event looks on the bus, for every adapter: its topic (by stream type),
//! its key (the stream id), its headers and its payload.

use ticketing_store::RecordedEvent;

use crate::BusError;

/// The topic of `show-<id>` streams.
pub const SHOW_TOPIC: &str = "ticketing-show-events";
/// The topic of `inventory-<show_id>-<section>` streams.
pub const INVENTORY_TOPIC: &str = "ticketing-inventory-events";
/// The topic of `reservation-<id>` streams, and of `ticket-<id>` streams: a ticket is
/// part of its purchase's life, and a topic of its own would need one more trigger and
/// consumer group for nothing.
pub const RESERVATION_TOPIC: &str = "ticketing-reservation-events";
/// The topic of `payment-<id>` streams.
pub const PAYMENT_TOPIC: &str = "ticketing-payment-events";
/// Every topic the system publishes to, for creating them and subscribing to them.
pub const TOPICS: [&str; 4] = [
    SHOW_TOPIC,
    INVENTORY_TOPIC,
    RESERVATION_TOPIC,
    PAYMENT_TOPIC,
];

/// The header names. Values are UTF-8 text: ids hyphenated, numbers in decimal,
/// instants in RFC 3339.
pub mod headers {
    /// The event type, as `DomainEvent::decode` expects it.
    pub const EVENT_TYPE: &str = "event-type";
    /// The payload's schema version, for upcasting.
    pub const SCHEMA_VERSION: &str = "schema-version";
    /// Unique per event: a consumer recognises a duplicate delivery by it.
    pub const EVENT_ID: &str = "event-id";
    /// The stream (also the message key).
    pub const STREAM_ID: &str = "stream-id";
    /// The event's version in its stream: a consumer detects a gap by it.
    pub const STREAM_VERSION: &str = "stream-version";
    /// The first half of the event's global position in the store.
    pub const TRANSACTION_ID: &str = "transaction-id";
    /// The second half of the event's global position in the store.
    pub const POSITION: &str = "position";
    /// Ties together the events of one request; absent when the event has none.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// When the event was committed.
    pub const RECORDED_AT: &str = "recorded-at";
    /// The W3C trace context of the request that caused the event; absent when traces
    /// are not exported.
    pub const TRACEPARENT: &str = "traceparent";
}

/// The topic of a stream, by the type prefix of its id; `None` for a stream that is
/// not one of the system's types.
pub fn topic_for(stream_id: &str) -> Option<&'static str> {
    [
        ("show-", SHOW_TOPIC),
        ("inventory-", INVENTORY_TOPIC),
        ("reservation-", RESERVATION_TOPIC),
        ("ticket-", RESERVATION_TOPIC),
        ("payment-", PAYMENT_TOPIC),
    ]
    .into_iter()
    .find(|(prefix, _)| stream_id.starts_with(prefix))
    .map(|(_, topic)| topic)
}

/// A stored event encoded for the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub topic: &'static str,
    /// The stream id: one stream stays in one partition, in order.
    pub key: String,
    /// See [`headers`].
    pub headers: Vec<(&'static str, String)>,
    /// The event's data, as JSON.
    pub payload: Vec<u8>,
}

impl BusMessage {
    /// Encodes a stored event.
    ///
    /// # Errors
    /// [`BusError::Unroutable`] when the stream has no topic.
    pub fn from_event(event: &RecordedEvent) -> Result<Self, BusError> {
        let topic = topic_for(&event.stream_id).ok_or_else(|| BusError::Unroutable {
            stream_id: event.stream_id.clone(),
        })?;
        let mut headers = vec![
            (headers::EVENT_TYPE, event.event_type.clone()),
            (headers::SCHEMA_VERSION, event.schema_version.to_string()),
            (headers::EVENT_ID, event.event_id.hyphenated().to_string()),
            (headers::STREAM_ID, event.stream_id.clone()),
            (headers::STREAM_VERSION, event.version.to_string()),
            (
                headers::TRANSACTION_ID,
                event.global_position.transaction_id.to_string(),
            ),
            (
                headers::POSITION,
                event.global_position.position.to_string(),
            ),
            (
                headers::RECORDED_AT,
                event
                    .recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        ];
        if let Some(correlation_id) = event.metadata.correlation_id {
            headers.push((
                headers::CORRELATION_ID,
                correlation_id.hyphenated().to_string(),
            ));
        }
        if let Some(traceparent) = &event.metadata.traceparent {
            headers.push((headers::TRACEPARENT, traceparent.clone()));
        }
        Ok(BusMessage {
            topic,
            key: event.stream_id.clone(),
            headers,
            payload: event.data.to_string().into_bytes(),
        })
    }

    /// The value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_store::{EventMetadata, GlobalPosition};
    use uuid::Uuid;

    fn recorded(stream_id: &str, correlation_id: Option<Uuid>) -> RecordedEvent {
        RecordedEvent {
            global_position: GlobalPosition {
                transaction_id: 7,
                position: 42,
            },
            stream_id: stream_id.to_owned(),
            version: 3,
            event_id: Uuid::now_v7(),
            event_type: "SeatsHeld".to_owned(),
            schema_version: 2,
            data: serde_json::json!({ "quantity": 2 }),
            metadata: EventMetadata {
                correlation_id,
                ..EventMetadata::default()
            },
            recorded_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
        }
    }

    #[test]
    fn streams_are_routed_by_their_type_prefix() {
        assert_eq!(topic_for("show-1"), Some(SHOW_TOPIC));
        assert_eq!(topic_for("inventory-1-floor"), Some(INVENTORY_TOPIC));
        assert_eq!(topic_for("reservation-9"), Some(RESERVATION_TOPIC));
        assert_eq!(topic_for("payment-9"), Some(PAYMENT_TOPIC));
        assert_eq!(topic_for("ticket-9"), Some(RESERVATION_TOPIC));
        assert_eq!(topic_for("shows-1"), None);
        assert_eq!(topic_for("raw-1"), None);
        assert_eq!(topic_for(""), None);
    }

    #[test]
    fn a_message_is_keyed_by_stream_and_carries_identity_and_position_in_headers() {
        let correlation_id = Uuid::new_v4();
        let event = recorded("inventory-1-floor", Some(correlation_id));
        let message = BusMessage::from_event(&event).unwrap();

        assert_eq!(message.topic, INVENTORY_TOPIC);
        assert_eq!(message.key, "inventory-1-floor");
        let payload: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(payload, event.data);
        assert_eq!(message.header(headers::EVENT_TYPE), Some("SeatsHeld"));
        assert_eq!(message.header(headers::SCHEMA_VERSION), Some("2"));
        let event_id = event.event_id.to_string();
        assert_eq!(message.header(headers::EVENT_ID), Some(event_id.as_str()));
        assert_eq!(
            message.header(headers::STREAM_ID),
            Some("inventory-1-floor")
        );
        assert_eq!(message.header(headers::STREAM_VERSION), Some("3"));
        assert_eq!(message.header(headers::TRANSACTION_ID), Some("7"));
        assert_eq!(message.header(headers::POSITION), Some("42"));
        let correlation = correlation_id.to_string();
        assert_eq!(
            message.header(headers::CORRELATION_ID),
            Some(correlation.as_str())
        );
        assert_eq!(
            message.header(headers::RECORDED_AT),
            Some("2023-11-14T22:13:20.123456Z")
        );
    }

    #[test]
    fn an_event_without_correlation_id_or_trace_has_no_such_header() {
        let message = BusMessage::from_event(&recorded("show-1", None)).unwrap();
        assert_eq!(message.header(headers::CORRELATION_ID), None);
        assert_eq!(message.header(headers::TRACEPARENT), None);
    }

    #[test]
    fn an_event_s_trace_context_travels_in_the_traceparent_header() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut event = recorded("show-1", None);
        event.metadata.traceparent = Some(traceparent.to_owned());
        let message = BusMessage::from_event(&event).unwrap();
        assert_eq!(message.header(headers::TRACEPARENT), Some(traceparent));
    }

    #[test]
    fn an_event_of_an_unknown_stream_type_is_unroutable() {
        let error = BusMessage::from_event(&recorded("raw-1", None)).unwrap_err();
        assert!(
            matches!(&error, BusError::Unroutable { stream_id } if stream_id == "raw-1"),
            "{error:?}"
        );
        assert!(!error.is_transient());
    }
}
