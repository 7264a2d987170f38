//! Loading aggregates from the event store and turning decisions into appends.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use ticketing_domain::{Aggregate, EventPayload};
use ticketing_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, RecordedEvent, Snapshot, StoreError,
    StreamAppend, StreamLock, StreamVersion,
};
use uuid::Uuid;

use crate::known::Versioned;
use crate::AppError;

/// An aggregate's state and the stream version it was folded up to.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub stream_id: String,
    pub state: A,
    pub version: u64,
    /// The writer's turn on the stream, when it was loaded in one: its change is
    /// appended in that turn.
    pub(crate) turn: Option<TurnSlot>,
}

/// A turn on a stream ([`ticketing_store::StreamLock`]), shared by the loaded state and
/// the changes made from it until the append takes it. Dropping the last holder gives
/// the turn up.
#[derive(Clone)]
pub(crate) struct TurnSlot(Arc<Mutex<Option<Box<dyn StreamLock>>>>);

impl TurnSlot {
    /// The turn, if no append has taken it yet.
    pub(crate) fn take(&self) -> Option<Box<dyn StreamLock>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl fmt::Debug for TurnSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSlot")
    }
}

impl<A> Loaded<A> {
    /// The same state, loaded in `turn`.
    pub(crate) fn in_turn(mut self, turn: Box<dyn StreamLock>) -> Self {
        self.turn = Some(TurnSlot(Arc::new(Mutex::new(Some(turn)))));
        self
    }
}

impl<A: Aggregate + 'static> Loaded<A> {
    /// The new events for this stream, expecting it to be still at the loaded version.
    pub fn change(&self, events: Vec<A::Event>) -> Change {
        let state_after = self.state.clone().fold(&events);
        let snapshot = PendingSnapshot {
            schema_version: A::SNAPSHOT_VERSION,
            encode: Arc::new(move || serde_json::to_value(&state_after).ok()),
        };
        Change {
            stream_id: self.stream_id.clone(),
            expected_version: if self.version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(self.version)
            },
            version_after: self.version + events.len() as u64,
            events: events.iter().map(EventPayload::encode).collect(),
            snapshot,
            turn: self.turn.clone(),
            condition: false,
        }
    }
}

/// Events decided for one stream, with what is needed to snapshot it afterwards.
#[derive(Debug, Clone)]
pub struct Change {
    pub stream_id: String,
    pub expected_version: ExpectedVersion,
    pub version_after: u64,
    pub events: Vec<ticketing_domain::EncodedEvent>,
    snapshot: PendingSnapshot,
    pub(crate) turn: Option<TurnSlot>,
    /// No events to append, only the expectation that the stream is still at
    /// `expected_version` when the other changes are appended.
    condition: bool,
}

/// The state a change leaves its stream in, serialised only when a snapshot is due:
/// most changes are not snapshotted, and encoding a state on every command would make
/// each command pay for it.
#[derive(Clone)]
struct PendingSnapshot {
    schema_version: u32,
    encode: Arc<dyn Fn() -> Option<serde_json::Value> + Send + Sync>,
}

impl fmt::Debug for PendingSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSnapshot")
            .field("schema_version", &self.schema_version)
            .finish_non_exhaustive()
    }
}

impl Change {
    /// A stream the command decided on without changing it: its changes are appended
    /// only if this stream is still at `version` ([`ticketing_store::StreamAppend::condition`]).
    pub(crate) fn condition(stream_id: String, version: u64) -> Self {
        Change {
            stream_id,
            expected_version: ExpectedVersion::Exact(version),
            version_after: version,
            events: Vec::new(),
            snapshot: PendingSnapshot {
                schema_version: 0,
                encode: Arc::new(|| None),
            },
            turn: None,
            condition: true,
        }
    }

    /// Whether the change goes into the append: it has events, or is a condition.
    pub(crate) fn is_appended(&self) -> bool {
        self.condition || !self.events.is_empty()
    }

    pub(crate) fn into_append(self, metadata: &EventMetadata) -> StreamAppend {
        self.into_append_each(|_| metadata.clone())
    }

    /// [`Change::into_append`] with each event's own metadata (`metadata` of its index):
    /// the events of several commands decided together.
    pub(crate) fn into_append_each(
        self,
        mut metadata: impl FnMut(usize) -> EventMetadata,
    ) -> StreamAppend {
        StreamAppend {
            stream_id: self.stream_id,
            expected_version: self.expected_version,
            events: self
                .events
                .into_iter()
                .enumerate()
                .map(|(index, e)| NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    data: e.data,
                    metadata: metadata(index),
                })
                .collect(),
        }
    }

    /// The snapshot to save if this change crossed a multiple of `every` events.
    pub(crate) fn due_snapshot(&self, every: u64) -> Option<Snapshot> {
        let before = self.version_after - self.events.len() as u64;
        let crossed = every > 0 && before / every != self.version_after / every;
        if !crossed {
            return None;
        }
        Some(Snapshot {
            stream_id: self.stream_id.clone(),
            version: self.version_after,
            schema_version: self.snapshot.schema_version,
            state: (self.snapshot.encode)()?,
        })
    }
}

/// Loads an aggregate: its latest usable snapshot, then the events after it.
///
/// A snapshot of another schema version, or one that no longer deserialises, is
/// ignored and the stream is replayed from the start.
///
/// # Errors
/// [`AppError::Store`] when the store fails, [`AppError::Decode`] when an event
/// cannot be read.
#[tracing::instrument(skip(store), fields(kind = A::KIND))]
pub async fn load<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &str,
) -> Result<Loaded<A>, AppError> {
    load_through::<A>(Reader::Store(store), stream_id, None).await
}

/// Loads an aggregate through a turn that covers its stream (a turn extended to it),
/// leaving the turn with the caller. A caller that `known` the stream as it was at a
/// version ([`crate::known`]) has only what is newer read: a snapshot past that version,
/// and the events after the later of the two.
///
/// # Errors
/// As [`load`].
pub(crate) async fn load_via_turn_from<A: Aggregate>(
    turn: &mut dyn StreamLock,
    stream_id: &str,
    known: Option<Versioned<A>>,
) -> Result<Loaded<A>, AppError> {
    load_through::<A>(Reader::Turn(turn), stream_id, known).await
}

/// Where a load reads: the store's pool, or a turn's own connection.
enum Reader<'a> {
    Store(&'a dyn EventStore),
    Turn(&'a mut dyn StreamLock),
}

impl Reader<'_> {
    /// The snapshot past `known` and the events after both.
    async fn load_stream_after(
        &mut self,
        stream_id: &str,
        known: StreamVersion,
    ) -> Result<(Option<Snapshot>, Vec<RecordedEvent>), StoreError> {
        match self {
            Reader::Store(store) => store.load_stream_after(stream_id, known).await,
            Reader::Turn(turn) => turn.load_stream_after(stream_id, known).await,
        }
    }

    async fn read_stream(
        &mut self,
        stream_id: &str,
        after: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Reader::Store(store) => store.read_stream(stream_id, after).await,
            Reader::Turn(turn) => turn.read_stream(stream_id, after).await,
        }
    }
}

async fn load_through<A: Aggregate>(
    mut reader: Reader<'_>,
    stream_id: &str,
    known: Option<Versioned<A>>,
) -> Result<Loaded<A>, AppError> {
    let known_version = known.as_ref().map_or(0, |k| k.version);
    let (snapshot, mut events) = reader.load_stream_after(stream_id, known_version).await?;
    let had_snapshot = snapshot.is_some();
    let usable = snapshot
        .filter(|snapshot| snapshot.schema_version == A::SNAPSHOT_VERSION)
        .and_then(
            |snapshot| match serde_json::from_value::<A>(snapshot.state) {
                Ok(state) => Some((state, snapshot.version)),
                Err(error) => {
                    tracing::warn!(%error, stream_id, "ignoring unreadable snapshot");
                    None
                }
            },
        );
    let (mut state, mut version) = match usable {
        Some(usable) => usable,
        None => {
            if had_snapshot {
                // The events came after a snapshot that cannot be used: replay from
                // what is known instead (the stream's first event, if nothing is).
                events = reader.read_stream(stream_id, known_version).await?;
            }
            known.map_or((A::default(), 0), |k| (k.value, k.version))
        }
    };
    for recorded in events {
        let event = A::Event::decode(&recorded.event_type, recorded.schema_version, recorded.data)
            .map_err(|source| AppError::Decode {
                stream_id: stream_id.to_owned(),
                source,
            })?;
        state = state.evolve(&event);
        version = recorded.version;
    }
    Ok(Loaded {
        stream_id: stream_id.to_owned(),
        state,
        version,
        turn: None,
    })
}

/// A value serialised for fingerprinting and replay.
pub(crate) fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
