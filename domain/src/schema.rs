//! How events are stored: a type name, a schema version and a JSON payload, and how
//! old payloads are upcast to today's shape when read.
//!
//! Every reader (the command layer, the projector, the bus consumers) decodes through
//! [`DomainEvent::decode`], so producers and consumers can never disagree on the event
//! types. A payload written under an older schema version is upcast step by step to
//! the current one before it is deserialised; a newer version than this build knows is
//! refused rather than guessed at.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

use crate::{InventoryEvent, PaymentEvent, ReservationEvent, ShowEvent, TicketEvent};

/// An event in its stored form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
}

/// Why a stored event could not be read. Readers that cannot skip (the command
/// layer) fail; readers that can (the projector) dead-letter it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} schema version {version} is newer than this build knows ({current})")]
    UnsupportedVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("{event_type} v{version} payload does not match its schema: {reason}")]
    InvalidPayload {
        event_type: String,
        version: u32,
        reason: String,
    },
}

/// The current schema version of each event type that has had more than one.
/// Every other type is at version 1.
const SCHEMA_VERSIONS: &[(&str, u32)] = &[
    ("SeatsHeld", 3),
    ("SeatsConfirmed", 2),
    ("SeatsReleased", 2),
];

/// The schema version that `event_type` is written with today.
pub fn current_schema_version(event_type: &str) -> u32 {
    SCHEMA_VERSIONS
        .iter()
        .find(|(name, _)| *name == event_type)
        .map_or(1, |(_, version)| *version)
}

/// Rewrites a payload of `event_type` from schema `version` to `version + 1`.
fn upcast_one(event_type: &str, version: u32, data: Value) -> Result<Value, String> {
    match (event_type, version) {
        // v1 stored the number of seats as `seats` and the hold's length as
        // `held_at` + `hold_seconds`; v2 stores `quantity` and the expiry instant, which
        // is what every decision needs.
        ("SeatsHeld", 1) => {
            let reservation_id = data
                .get("reservation_id")
                .cloned()
                .ok_or("missing reservation_id")?;
            let seats = data
                .get("seats")
                .and_then(Value::as_u64)
                .ok_or("missing seats")?;
            let held_at = data
                .get("held_at")
                .and_then(Value::as_str)
                .ok_or("missing held_at")?;
            let held_at = chrono::DateTime::parse_from_rfc3339(held_at)
                .map_err(|e| format!("held_at: {e}"))?
                .with_timezone(&chrono::Utc);
            let hold_seconds = data
                .get("hold_seconds")
                .and_then(Value::as_i64)
                .ok_or("missing hold_seconds")?;
            let expires_at = held_at
                .checked_add_signed(chrono::TimeDelta::seconds(hold_seconds))
                .ok_or("hold_seconds out of range")?;
            Ok(json!({
                "reservation_id": reservation_id,
                "quantity": seats,
                "expires_at": expires_at,
            }))
        }
        // v3 adds `held_at`, v2 of the others the hold's `expires_at`: a payload
        // without them is read as it is, the field absent (an older hold, an ending
        // that names no expiry), and the inventory's state handles both.
        ("SeatsHeld", 2) | ("SeatsConfirmed", 1) | ("SeatsReleased", 1) => {
            if data.is_object() {
                Ok(data)
            } else {
                Err("not an object".into())
            }
        }
        _ => Err(format!("no upcaster from version {version}")),
    }
}

/// Brings a stored payload up to the current schema version of its type.
///
/// # Errors
/// [`DecodeError::UnsupportedVersion`] for a version from the future or 0, and
/// [`DecodeError::InvalidPayload`] when an upcaster cannot read the old shape.
pub fn upcast(event_type: &str, version: u32, mut data: Value) -> Result<Value, DecodeError> {
    let current = current_schema_version(event_type);
    if version == 0 || version > current {
        return Err(DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    for from in version..current {
        data =
            upcast_one(event_type, from, data).map_err(|reason| DecodeError::InvalidPayload {
                event_type: event_type.to_owned(),
                version: from,
                reason,
            })?;
    }
    Ok(data)
}

/// An aggregate's event enum in its stored form. Implemented for every event enum of
/// the domain; the variant name is the stored type.
pub trait EventPayload: Sized + Serialize + DeserializeOwned {
    /// The stored event types of this enum.
    const EVENT_TYPES: &'static [&'static str];

    /// Encodes the event at the current schema version of its type.
    fn encode(&self) -> EncodedEvent {
        // Adjacently tagged enums of plain structs always serialise to
        // {"type": .., "data": {..}}.
        let tagged = serde_json::to_value(self).unwrap_or(Value::Null);
        let event_type = tagged
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let data = tagged.get("data").cloned().unwrap_or(Value::Null);
        EncodedEvent {
            schema_version: current_schema_version(&event_type),
            event_type,
            data,
        }
    }

    /// Decodes a stored event of this enum, upcasting older payloads.
    ///
    /// # Errors
    /// A [`DecodeError`] when the type is not one of this enum's, the version is
    /// unknown, or the payload does not match.
    fn decode(event_type: &str, schema_version: u32, data: Value) -> Result<Self, DecodeError> {
        if !Self::EVENT_TYPES.contains(&event_type) {
            return Err(DecodeError::UnknownType(event_type.to_owned()));
        }
        let data = upcast(event_type, schema_version, data)?;
        serde_json::from_value(json!({ "type": event_type, "data": data })).map_err(|e| {
            DecodeError::InvalidPayload {
                event_type: event_type.to_owned(),
                version: schema_version,
                reason: e.to_string(),
            }
        })
    }
}

impl EventPayload for ShowEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "ShowCreated",
        "SalesOpened",
        "SalesClosed",
        "ShowCancelled",
        "SectionSplit",
    ];
}

impl EventPayload for InventoryEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "SectionInitialized",
        "SeatsHeld",
        "SeatsConfirmed",
        "SeatsReleased",
        "SeatsReturned",
        "SeatsMovedOut",
        "SeatsMovedIn",
    ];
}

impl EventPayload for ReservationEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "ReservationPlaced",
        "PaymentRequested",
        "PaymentActionRequired",
        "ReservationPaid",
        "ReservationConfirmed",
        "ReservationExpired",
        "ReservationCancelled",
        "ReservationPaymentDeclined",
        "ReservationRefunded",
        "TicketsIssued",
    ];
}

impl EventPayload for TicketEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "TicketIssued",
        "TicketAdmitted",
        "TicketAdmissionBackdated",
        "TicketTransferred",
    ];
}

impl EventPayload for PaymentEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "PaymentCaptured",
        "PaymentDeclined",
        "PaymentRefunded",
        "PaymentPartiallyRefunded",
        "PaymentDisputed",
    ];
}

/// Any event of the domain: what the bus carries and the projector reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    Show(ShowEvent),
    Inventory(InventoryEvent),
    Reservation(ReservationEvent),
    Payment(PaymentEvent),
    Ticket(TicketEvent),
}

impl DomainEvent {
    /// Decodes any stored event by its type name.
    ///
    /// # Errors
    /// [`DecodeError::UnknownType`] for a type no aggregate has, or the errors of
    /// [`EventPayload::decode`].
    pub fn decode(event_type: &str, schema_version: u32, data: Value) -> Result<Self, DecodeError> {
        if ShowEvent::EVENT_TYPES.contains(&event_type) {
            ShowEvent::decode(event_type, schema_version, data).map(Self::Show)
        } else if InventoryEvent::EVENT_TYPES.contains(&event_type) {
            InventoryEvent::decode(event_type, schema_version, data).map(Self::Inventory)
        } else if ReservationEvent::EVENT_TYPES.contains(&event_type) {
            ReservationEvent::decode(event_type, schema_version, data).map(Self::Reservation)
        } else if PaymentEvent::EVENT_TYPES.contains(&event_type) {
            PaymentEvent::decode(event_type, schema_version, data).map(Self::Payment)
        } else if TicketEvent::EVENT_TYPES.contains(&event_type) {
            TicketEvent::decode(event_type, schema_version, data).map(Self::Ticket)
        } else {
            Err(DecodeError::UnknownType(event_type.to_owned()))
        }
    }

    pub fn encode(&self) -> EncodedEvent {
        match self {
            Self::Show(e) => e.encode(),
            Self::Inventory(e) => e.encode(),
            Self::Reservation(e) => e.encode(),
            Self::Payment(e) => e.encode(),
            Self::Ticket(e) => e.encode(),
        }
    }
}
