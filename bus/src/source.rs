//! The consumer side of the bus: an [`EventSource`] hands the projector batches of
//! delivered messages, takes its word that they are applied ([`EventSource::commit`]),
//! and forwards what cannot be applied to the dead-letter topic.
//!
//! Delivery is at least once: after a crash, or a rebalance, messages that were
//! delivered but not committed are delivered again. The projector deduplicates by
//! stream version.

use std::time::Duration;

use async_trait::async_trait;
use ticketing_store::RecordedEvent;

use crate::message::headers;
use crate::BusError;

/// The topic that receives what the projector cannot apply: messages that are not a
/// recorded event at all (poison) and events it cannot decode.
pub const DEAD_LETTER_TOPIC: &str = "ticketing-dead-letters";

/// Headers a dead letter carries besides the original message's own.
pub mod dead_letter_headers {
    /// Why the message was dead-lettered.
    pub const REASON: &str = "dead-letter-reason";
    /// Where the message was read from, when it came off the bus.
    pub const SOURCE_TOPIC: &str = "dead-letter-source-topic";
    pub const SOURCE_PARTITION: &str = "dead-letter-source-partition";
    pub const SOURCE_OFFSET: &str = "dead-letter-source-offset";
}

/// Where a delivered message was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// A message that is not a recorded event: missing or malformed headers, a payload
/// that is not JSON. Kept byte for byte for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonMessage {
    pub key: Option<Vec<u8>>,
    /// Headers whose value is UTF-8 text; others are dropped.
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
    /// Why it could not be read as an event.
    pub error: String,
}

/// What a delivered message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    Event(RecordedEvent),
    Poison(PoisonMessage),
}

impl Delivered {
    /// What a message of these parts delivers: the event they carry
    /// ([`decode_event`]), or else a poison message that keeps them as they came.
    pub fn decode(
        key: Option<&[u8]>,
        headers: Vec<(String, String)>,
        payload: Option<&[u8]>,
    ) -> Self {
        let decoded = match payload {
            Some(payload) => decode_event(
                key,
                |name| {
                    headers
                        .iter()
                        .find(|(header, _)| header == name)
                        .map(|(_, value)| value.as_str())
                },
                payload,
            ),
            None => Err("the message has no payload".to_owned()),
        };
        match decoded {
            Ok(event) => Self::Event(event),
            Err(error) => Self::Poison(PoisonMessage {
                key: key.map(<[u8]>::to_vec),
                headers,
                payload: payload.unwrap_or_default().to_vec(),
                error,
            }),
        }
    }
}

/// One delivered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub origin: Origin,
    pub content: Delivered,
}

/// A message for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterMessage {
    /// Where it was read from; `None` for an event the store handed over (gap filling,
    /// rebuild).
    pub origin: Option<Origin>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
    pub reason: String,
}

impl DeadLetterMessage {
    /// Every header of the dead letter: the original ones, then the reason and origin.
    pub fn all_headers(&self) -> Vec<(String, String)> {
        let mut all = self.headers.clone();
        all.push((dead_letter_headers::REASON.to_owned(), self.reason.clone()));
        if let Some(origin) = &self.origin {
            all.push((
                dead_letter_headers::SOURCE_TOPIC.to_owned(),
                origin.topic.clone(),
            ));
            all.push((
                dead_letter_headers::SOURCE_PARTITION.to_owned(),
                origin.partition.to_string(),
            ));
            all.push((
                dead_letter_headers::SOURCE_OFFSET.to_owned(),
                origin.offset.to_string(),
            ));
        }
        all
    }
}

/// Consumer lag of one partition: messages on the broker the group has not consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// Batches of delivered messages for the projector.
#[async_trait]
pub trait EventSource: Send {
    /// Waits up to `wait` for the first message, then gathers more until `max`
    /// messages or until `wait` has passed since the first one. An empty batch means
    /// nothing arrived in time.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the bus failed in a way the caller should see
    /// (a fatal consumer error); the caller may call again after a pause.
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError>;

    /// Records that every message returned by `next_batch` so far has been applied:
    /// this consumer group will not receive them again.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the commit failed: the messages may then be
    /// delivered again, which the projector tolerates.
    async fn commit(&mut self) -> Result<(), BusError>;

    /// Publishes `letters` to [`DEAD_LETTER_TOPIC`] and waits for the bus to
    /// acknowledge them.
    ///
    /// # Errors
    /// [`BusError::Unavailable`]; the caller must not commit past them then.
    async fn dead_letter(&mut self, letters: &[DeadLetterMessage]) -> Result<(), BusError>;

    /// The latest known consumer lag of each assigned partition (empty when the
    /// source cannot tell).
    fn lag(&self) -> Vec<PartitionLag> {
        Vec::new()
    }

    /// Whether messages were lost before they could be delivered (an in-memory bus
    /// whose subscriber fell behind), since the last call. The caller must then catch
    /// up from the event store. A durable bus never loses messages: `false`.
    fn take_missed(&mut self) -> bool {
        false
    }
}

/// Reads a message as the recorded event it carries: the identity and position from
/// the headers ([`headers`]), the data from the JSON payload, the stream from the
/// `stream-id` header (the key must agree when present).
///
/// # Errors
/// A message for the dead-letter topic's reason: a missing or malformed header, a
/// payload that is not JSON, a key that disagrees with the stream.
pub fn decode_event<'a>(
    key: Option<&[u8]>,
    header: impl Fn(&str) -> Option<&'a str>,
    payload: &[u8],
) -> Result<RecordedEvent, String> {
    fn required<'a>(
        header: &impl Fn(&str) -> Option<&'a str>,
        name: &str,
    ) -> Result<&'a str, String> {
        header(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("missing header `{name}`"))
    }
    fn number<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, String> {
        value
            .parse()
            .map_err(|_| format!("header `{name}` is not a number: `{value}`"))
    }

    let stream_id = required(&header, headers::STREAM_ID)?.to_owned();
    if let Some(key) = key {
        if key != stream_id.as_bytes() {
            return Err(format!(
                "the key `{}` is not the stream `{stream_id}`",
                String::from_utf8_lossy(key)
            ));
        }
    }
    let event_type = required(&header, headers::EVENT_TYPE)?.to_owned();
    let schema_version = number(
        required(&header, headers::SCHEMA_VERSION)?,
        headers::SCHEMA_VERSION,
    )?;
    let event_id = required(&header, headers::EVENT_ID)?;
    let event_id = uuid::Uuid::parse_str(event_id)
        .map_err(|_| format!("header `{}` is not a UUID: `{event_id}`", headers::EVENT_ID))?;
    let version: ticketing_store::StreamVersion = number(
        required(&header, headers::STREAM_VERSION)?,
        headers::STREAM_VERSION,
    )?;
    if version < 1 {
        return Err(format!("stream version {version} is below 1"));
    }
    let transaction_id = number(
        required(&header, headers::TRANSACTION_ID)?,
        headers::TRANSACTION_ID,
    )?;
    let position = number(required(&header, headers::POSITION)?, headers::POSITION)?;
    let recorded_at = required(&header, headers::RECORDED_AT)?;
    let recorded_at = chrono::DateTime::parse_from_rfc3339(recorded_at)
        .map_err(|_| {
            format!(
                "header `{}` is not an RFC 3339 instant: `{recorded_at}`",
                headers::RECORDED_AT
            )
        })?
        .with_timezone(&chrono::Utc);
    let correlation_id = match header(headers::CORRELATION_ID) {
        Some(value) => Some(uuid::Uuid::parse_str(value).map_err(|_| {
            format!(
                "header `{}` is not a UUID: `{value}`",
                headers::CORRELATION_ID
            )
        })?),
        None => None,
    };
    let data: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|error| format!("the payload is not JSON: {error}"))?;
    Ok(RecordedEvent {
        global_position: ticketing_store::GlobalPosition {
            transaction_id,
            position,
        },
        stream_id,
        version,
        event_id,
        event_type,
        schema_version,
        data,
        metadata: ticketing_store::EventMetadata {
            correlation_id,
            traceparent: header(headers::TRACEPARENT).map(str::to_owned),
            ..ticketing_store::EventMetadata::default()
        },
        recorded_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BusMessage;
    use ticketing_store::{EventMetadata, GlobalPosition};
    use uuid::Uuid;

    fn recorded() -> RecordedEvent {
        RecordedEvent {
            global_position: GlobalPosition {
                transaction_id: 912,
                position: 40_001,
            },
            stream_id: "inventory-7-floor".to_owned(),
            version: 12,
            event_id: Uuid::now_v7(),
            event_type: "SeatsHeld".to_owned(),
            schema_version: 2,
            data: serde_json::json!({ "quantity": 2, "reservation_id": "r-1" }),
            metadata: EventMetadata {
                correlation_id: Some(Uuid::new_v4()),
                ..EventMetadata::default()
            },
            recorded_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
        }
    }

    fn decode(message: &BusMessage) -> Result<RecordedEvent, String> {
        decode_event(
            Some(message.key.as_bytes()),
            |name| message.header(name),
            &message.payload,
        )
    }

    #[test]
    fn a_published_event_decodes_back_to_itself() {
        let event = recorded();
        let message = BusMessage::from_event(&event).unwrap();
        assert_eq!(decode(&message).unwrap(), event);
    }

    #[test]
    fn a_message_without_identity_or_with_a_bad_payload_is_poison() {
        let event = recorded();
        let good = BusMessage::from_event(&event).unwrap();

        let mut no_version = good.clone();
        no_version
            .headers
            .retain(|(name, _)| *name != headers::STREAM_VERSION);
        assert_eq!(
            decode(&no_version).unwrap_err(),
            "missing header `stream-version`"
        );

        let mut zero_version = good.clone();
        for (name, value) in &mut zero_version.headers {
            if *name == headers::STREAM_VERSION {
                *value = "0".to_owned();
            }
        }
        assert_eq!(
            decode(&zero_version).unwrap_err(),
            "stream version 0 is below 1"
        );

        let mut bad_id = good.clone();
        for (name, value) in &mut bad_id.headers {
            if *name == headers::EVENT_ID {
                *value = "not-a-uuid".to_owned();
            }
        }
        assert!(decode(&bad_id).unwrap_err().contains("is not a UUID"));

        let mut not_json = good.clone();
        not_json.payload = b"{oops".to_vec();
        assert!(decode(&not_json)
            .unwrap_err()
            .starts_with("the payload is not JSON"));

        let mut other_key = good;
        other_key.key = "inventory-7-balcony".to_owned();
        assert!(decode(&other_key)
            .unwrap_err()
            .contains("is not the stream `inventory-7-floor`"));
    }
}
