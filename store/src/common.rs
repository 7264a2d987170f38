//! What both backends share: checking an append before any I/O, comparing a stream's
//! version with the writer's expectation, telling why an attempt at an append was
//! refused and what that means for the caller, and retrying the attempts that lost a
//! race. Each backend keeps its own SQL and its own attempt (one transaction); the
//! logic around the attempts is written here once.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;

use async_trait::async_trait;
use sqlx::error::ErrorKind;
use uuid::Uuid;

use crate::{
    AppendOutcome, EventStore, ExpectedVersion, IdempotencyRecord, StoreError, StreamAppend,
    StreamVersion,
};

/// How many times an append is retried inside the store when it lost a race that the
/// writer's expectation does not cover (two `Any` appends taking the same version, a
/// deadlock). A writer with an exact expectation gets its conflict on the next try.
pub(crate) const MAX_APPEND_ATTEMPTS: u32 = 5;

/// Why one attempt at an append did not commit.
pub(crate) enum Refusal {
    /// A stream's version check failed.
    Conflict(StoreError),
    /// A concurrent writer took a version or a lock between the check and the insert
    /// (on SQLite only possible if something bypassed `BEGIN IMMEDIATE`); the whole
    /// append is tried again.
    Race,
    /// One of the event ids is already stored.
    EventIdTaken,
    /// One of the idempotency keys is already recorded.
    KeyTaken,
    /// Anything else.
    Failed(StoreError),
}

impl From<sqlx::Error> for Refusal {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.kind() == ErrorKind::UniqueViolation {
                // PostgreSQL names the constraint; SQLite names the columns:
                // "UNIQUE constraint failed: events.stream_id, events.version".
                let message = db.message();
                match db.constraint() {
                    Some("events_stream_version_key") => return Refusal::Race,
                    Some("events_event_id_key") => return Refusal::EventIdTaken,
                    Some(_) => {}
                    None if message.contains("events.event_id") => return Refusal::EventIdTaken,
                    None if message.contains("events.stream_id") => return Refusal::Race,
                    None => {}
                }
            } else if matches!(db.code().as_deref(), Some("40001" | "40P01")) {
                // PostgreSQL's serialization failure and deadlock: the append lost a
                // race and can simply be tried again.
                return Refusal::Race;
            }
        }
        Refusal::Failed(StoreError::from(error))
    }
}

/// What a backend looks up, once a refused attempt is rolled back, to explain it.
#[async_trait]
pub(crate) trait RefusalLookups: EventStore {
    /// The ids among `ids` that are already stored.
    async fn stored_event_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError>;

    /// Whether `key` is recorded.
    async fn key_recorded(&self, key: &str) -> Result<bool, StoreError>;
}

/// The first of `records`' keys that is recorded.
async fn key_taken<'a>(
    store: &impl RefusalLookups,
    records: &'a [IdempotencyRecord],
) -> Result<Option<&'a str>, StoreError> {
    for record in records {
        if store.key_recorded(&record.key).await? {
            return Ok(Some(record.key.as_str()));
        }
    }
    Ok(None)
}

/// What a refused attempt means for the caller, after its rollback: `Ok(None)` when it
/// lost a race that another attempt may win, else the outcome or error to report.
pub(crate) async fn settle(
    store: &impl RefusalLookups,
    refusal: Refusal,
    appends: &[StreamAppend],
    records: &[IdempotencyRecord],
) -> Result<Option<AppendOutcome>, StoreError> {
    match refusal {
        Refusal::Failed(error) => Err(error),
        Refusal::KeyTaken => {
            // Which of the records' keys: with one, that one; else look.
            let key = match records {
                [record] => Some(record.key.as_str()),
                _ => key_taken(store, records).await?,
            };
            let key = key.or(records.first().map(|r| r.key.as_str()));
            Err(StoreError::IdempotencyKeyTaken(
                key.unwrap_or_default().to_owned(),
            ))
        }
        Refusal::Conflict(conflict) => {
            let stored = store.stored_event_ids(&event_ids(appends)).await?;
            let key_taken = key_taken(store, records).await?;
            explain_refusal(appends, &stored, key_taken)
                .unwrap_or(Err(conflict))
                .map(Some)
        }
        Refusal::EventIdTaken => {
            let stored = store.stored_event_ids(&event_ids(appends)).await?;
            // `None`: the clashing event is gone again (deleted by hand): try again.
            explain_refusal(appends, &stored, None).transpose()
        }
        Refusal::Race => Ok(None),
    }
}

/// Runs `attempt` (one transaction: committed, or rolled back and settled) until it
/// commits or is refused for a reason that another attempt would not change, at most
/// [`MAX_APPEND_ATTEMPTS`] times.
pub(crate) async fn append_retrying<F, Fut>(
    store: &dyn EventStore,
    appends: &[StreamAppend],
    mut attempt: F,
) -> Result<AppendOutcome, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<AppendOutcome>, StoreError>>,
{
    for tries in 1..=MAX_APPEND_ATTEMPTS {
        if let Some(outcome) = attempt().await? {
            return Ok(outcome);
        }
        tracing::debug!(tries, "append lost a race; trying again");
    }
    Err(conflict_after_repeated_races(store, appends).await)
}

impl fmt::Display for ExpectedVersion {
    /// Renders the expectation the way a conflict reports it: `no stream`, `any` or the
    /// version number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "{version}"),
            ExpectedVersion::Any => f.write_str("any"),
        }
    }
}

/// Refuses a malformed append before it reaches the database, so that a caller bug is
/// reported as [`StoreError::Invalid`] rather than as a constraint violation.
pub(crate) fn validate(
    appends: &[StreamAppend],
    records: &[IdempotencyRecord],
) -> Result<(), StoreError> {
    if appends.is_empty() {
        return Err(StoreError::Invalid(
            "an append needs at least one stream".into(),
        ));
    }
    if appends.iter().all(StreamAppend::is_condition) {
        return Err(StoreError::Invalid(
            "an append needs events for at least one stream".into(),
        ));
    }
    let mut streams = HashSet::with_capacity(appends.len());
    let mut event_ids = HashSet::new();
    for append in appends {
        if append.stream_id.is_empty() {
            return Err(StoreError::Invalid("a stream id must not be empty".into()));
        }
        if !streams.insert(append.stream_id.as_str()) {
            return Err(StoreError::Invalid(format!(
                "stream {} appears twice in one append; put all its events in one StreamAppend",
                append.stream_id
            )));
        }
        if append.is_condition() && append.expected_version == ExpectedVersion::Any {
            return Err(StoreError::Invalid(format!(
                "the append to stream {} has no events and expects any version: it neither \
                 writes nor checks anything",
                append.stream_id
            )));
        }
        if let ExpectedVersion::Exact(version) = append.expected_version {
            to_i64(version, "an expected version")?;
        }
        for event in &append.events {
            if !event_ids.insert(event.event_id) {
                return Err(StoreError::Invalid(format!(
                    "event id {} appears twice in one append",
                    event.event_id
                )));
            }
            if event.event_type.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "event {} has an empty event type",
                    event.event_id
                )));
            }
            schema_version_to_i32(event.schema_version)?;
        }
    }
    let mut keys = HashSet::with_capacity(records.len());
    for record in records {
        if record.key.is_empty() {
            return Err(StoreError::Invalid(
                "an idempotency key must not be empty".into(),
            ));
        }
        if !keys.insert(record.key.as_str()) {
            return Err(StoreError::Invalid(format!(
                "idempotency key {} appears twice in one append",
                record.key
            )));
        }
    }
    Ok(())
}

/// Compares a stream's current version with the writer's expectation.
///
/// # Errors
/// [`StoreError::VersionConflict`] when they differ.
pub(crate) fn check_expected_version(
    stream_id: &str,
    expected: ExpectedVersion,
    current: StreamVersion,
) -> Result<(), StoreError> {
    let matches = match expected {
        ExpectedVersion::NoStream => current == 0,
        ExpectedVersion::Exact(version) => current == version,
        ExpectedVersion::Any => true,
    };
    if matches {
        Ok(())
    } else {
        Err(StoreError::VersionConflict {
            stream_id: stream_id.to_owned(),
            expected: expected.to_string(),
            actual: current,
        })
    }
}

/// Every event id of an append, in the order the events were given.
pub(crate) fn event_ids(appends: &[StreamAppend]) -> Vec<Uuid> {
    appends
        .iter()
        .flat_map(|append| append.events.iter().map(|event| event.event_id))
        .collect()
}

/// Decides what a refused append means once the transaction has been rolled back.
///
/// A retried append usually fails its version check (the first try already moved the
/// stream on) or hits the unique event id, so the stored event ids are looked at first:
/// when all of them are stored the append already happened; when only some are, the
/// caller reused an id. Otherwise a taken idempotency key is reported ahead of the
/// version conflict, because retrying a command whose key is taken is pointless.
/// `None` means none of these applied: the caller keeps its own error.
pub(crate) fn explain_refusal(
    appends: &[StreamAppend],
    stored_event_ids: &HashSet<Uuid>,
    idempotency_key_taken: Option<&str>,
) -> Option<Result<AppendOutcome, StoreError>> {
    let ids = event_ids(appends);
    if !stored_event_ids.is_empty() {
        if ids.iter().all(|id| stored_event_ids.contains(id)) {
            return Some(Ok(AppendOutcome::AlreadyAppended));
        }
        if let Some(reused) = ids.iter().find(|id| stored_event_ids.contains(id)) {
            return Some(Err(StoreError::DuplicateEventId(*reused)));
        }
    }
    idempotency_key_taken.map(|key| Err(StoreError::IdempotencyKeyTaken(key.to_owned())))
}

/// The error for an append that kept losing races: the first stream whose version no
/// longer matches its expectation, or else the first stream with its current version
/// (the writers that beat it may since have moved on).
pub(crate) async fn conflict_after_repeated_races(
    store: &dyn EventStore,
    appends: &[StreamAppend],
) -> StoreError {
    let mut first = None;
    for append in appends {
        let actual = match store.stream_version(&append.stream_id).await {
            Ok(actual) => actual,
            Err(error) => return error,
        };
        if let Err(conflict) =
            check_expected_version(&append.stream_id, append.expected_version, actual)
        {
            return conflict;
        }
        first.get_or_insert(StoreError::VersionConflict {
            stream_id: append.stream_id.clone(),
            expected: append.expected_version.to_string(),
            actual,
        });
    }
    first.unwrap_or_else(|| StoreError::Invalid("an append needs at least one stream".into()))
}

/// Converts a version or count to the database's signed integer.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("{what} of {value} is out of range")))
}

/// Converts a schema version to the database's `int`.
pub(crate) fn schema_version_to_i32(value: u32) -> Result<i32, StoreError> {
    i32::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("schema version {value} is out of range")))
}

/// Reads back a stored version; a negative one means the row is corrupt.
pub(crate) fn stored_u64(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative: {value}")))
}

/// Reads back a stored schema version; a negative one means the row is corrupt.
pub(crate) fn stored_u32(value: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{column} is out of range: {value}")))
}

/// Reads back stored metadata. Unknown fields are ignored, so metadata written by a
/// newer release still loads.
pub(crate) fn decode_metadata(
    value: serde_json::Value,
) -> Result<crate::EventMetadata, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("event metadata: {e}")))
}

/// Encodes metadata for storage.
pub(crate) fn encode_metadata(metadata: &crate::EventMetadata) -> serde_json::Value {
    // Serialising a struct of options and strings cannot fail.
    serde_json::to_value(metadata).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventMetadata, NewEvent};

    fn event(id: Uuid) -> NewEvent {
        NewEvent {
            event_id: id,
            event_type: "Happened".into(),
            schema_version: 1,
            data: serde_json::json!({}),
            metadata: EventMetadata::default(),
        }
    }

    fn append(stream: &str, ids: &[Uuid]) -> StreamAppend {
        StreamAppend {
            stream_id: stream.into(),
            expected_version: ExpectedVersion::Any,
            events: ids.iter().copied().map(event).collect(),
        }
    }

    #[test]
    fn expected_versions_render_as_conflicts_report_them() {
        assert_eq!(ExpectedVersion::NoStream.to_string(), "no stream");
        assert_eq!(ExpectedVersion::Exact(3).to_string(), "3");
        assert_eq!(ExpectedVersion::Any.to_string(), "any");
    }

    #[test]
    fn exact_zero_is_the_same_as_no_stream() {
        assert!(check_expected_version("s", ExpectedVersion::Exact(0), 0).is_ok());
        assert!(check_expected_version("s", ExpectedVersion::NoStream, 1).is_err());
    }

    #[test]
    fn a_stream_named_twice_in_one_append_is_invalid() {
        let appends = vec![
            append("a", &[Uuid::new_v4()]),
            append("a", &[Uuid::new_v4()]),
        ];
        assert!(matches!(
            validate(&appends, &[]),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn an_event_id_used_twice_in_one_append_is_invalid() {
        let id = Uuid::new_v4();
        let appends = vec![append("a", &[id]), append("b", &[id])];
        assert!(matches!(
            validate(&appends, &[]),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn an_idempotency_key_recorded_twice_in_one_append_is_invalid() {
        let appends = vec![append("a", &[Uuid::new_v4()])];
        let record = |key: &str| IdempotencyRecord {
            key: key.into(),
            request_fingerprint: "f".into(),
            outcome: serde_json::json!({}),
        };
        assert!(validate(&appends, &[record("k1"), record("k2")]).is_ok());
        assert!(matches!(
            validate(&appends, &[record("k1"), record("k1")]),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            validate(&appends, &[record("")]),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn a_schema_version_beyond_the_database_int_is_invalid() {
        let mut appends = vec![append("a", &[Uuid::new_v4()])];
        appends[0].events[0].schema_version = u32::MAX;
        assert!(matches!(
            validate(&appends, &[]),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn refusal_with_every_id_stored_is_a_retry() {
        let ids = [Uuid::new_v4(), Uuid::new_v4()];
        let appends = vec![append("a", &ids)];
        let stored = ids.iter().copied().collect();
        assert_eq!(
            explain_refusal(&appends, &stored, Some("k")).map(|r| r.ok()),
            Some(Some(AppendOutcome::AlreadyAppended))
        );
    }

    #[test]
    fn refusal_with_some_ids_stored_names_the_reused_id() {
        let ids = [Uuid::new_v4(), Uuid::new_v4()];
        let appends = vec![append("a", &ids)];
        let stored = [ids[1]].into_iter().collect();
        assert!(matches!(
            explain_refusal(&appends, &stored, None),
            Some(Err(StoreError::DuplicateEventId(id))) if id == ids[1]
        ));
    }

    #[test]
    fn refusal_without_stored_ids_reports_a_taken_key_or_nothing() {
        let appends = vec![append("a", &[Uuid::new_v4()])];
        assert!(matches!(
            explain_refusal(&appends, &HashSet::new(), Some("k")),
            Some(Err(StoreError::IdempotencyKeyTaken(key))) if key == "k"
        ));
        assert!(explain_refusal(&appends, &HashSet::new(), None).is_none());
    }
}
