//! The statements of the SQLite backend, kept together so that the queries and the
//! schema in `migrations/sqlite` can be read side by side.

macro_rules! event_columns {
    () => {
        "position, transaction_id, stream_id, version, event_id, event_type, \
         schema_version, data, metadata, recorded_at"
    };
}

/// The next append's transaction id. Read inside the `BEGIN IMMEDIATE` transaction,
/// so no other writer can take the same number; served by the
/// `events_transaction_position_idx` index.
pub(super) const NEXT_TRANSACTION_ID: &str =
    "select coalesce(max(transaction_id), 0) + 1 from events";

pub(super) const EVENT_COUNT: &str = "select count(*) from events";

pub(super) const STREAM_VERSION: &str =
    "select coalesce(max(version), 0) from events where stream_id = ?1";

pub(super) const INSERT_EVENT: &str = "\
    insert into events (stream_id, version, event_id, event_type, schema_version, data, \
                        metadata, transaction_id, recorded_at) \
    values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
    returning position";

/// Moves a stream's head in the stream index to its new last event, creating the row
/// for a new stream; `updated_at` is the append's `recorded_at`.
pub(super) const UPSERT_STREAM_HEAD: &str = "\
    insert into streams (stream_id, version, last_event_type, updated_at) \
    values (?1, ?2, ?3, ?4) \
    on conflict (stream_id) do update \
        set version = excluded.version, \
            last_event_type = excluded.last_event_type, \
            updated_at = excluded.updated_at";

/// The heads of the streams with an id starting with `?1` and a last event type in the
/// JSON array `?2`, oldest first. The prefix is compared with `substr`, not `like`, so
/// that `%` and `_` are ordinary characters (and case matters, as on PostgreSQL).
pub(super) const FIND_STREAMS: &str = "\
    select stream_id, version, last_event_type, updated_at from streams \
     where last_event_type in (select value from json_each(?2)) \
       and substr(stream_id, 1, length(?1)) = ?1 \
     order by updated_at, stream_id \
     limit ?3";

/// Enqueues every event of the append's transaction `?1` in the outbox, once all its
/// streams are written; `enqueued_at` is the events' `recorded_at`.
pub(super) const ENQUEUE_TRANSACTION_EVENTS: &str = "\
    insert into outbox (position, stream_id, enqueued_at) \
    select position, stream_id, recorded_at from events where transaction_id = ?1";

/// The events still in the outbox, recorded before `?1` when it is not null, in the
/// global order.
pub(super) const UNPUBLISHED: &str = "\
    select e.position, e.transaction_id, e.stream_id, e.version, e.event_id, e.event_type, \
           e.schema_version, e.data, e.metadata, e.recorded_at \
      from outbox o join events e on e.position = o.position \
     where ?1 is null or o.enqueued_at < ?1 \
     order by e.transaction_id, e.position \
     limit ?2";

/// Removes the positions of the JSON array `?1` from the outbox.
pub(super) const OUTBOX_STATUS: &str = "select count(*), min(enqueued_at) from outbox";

pub(super) const MARK_PUBLISHED: &str =
    "delete from outbox where position in (select value from json_each(?1))";

pub(super) const INSERT_IDEMPOTENCY_KEY: &str = "\
    insert into idempotency_keys (key, request_fingerprint, outcome, recorded_at) \
    values (?1, ?2, ?3, ?4)";

/// The stored ids among a JSON array of ids.
pub(super) const STORED_EVENT_IDS: &str =
    "select event_id from events where event_id in (select value from json_each(?1))";

pub(super) const IDEMPOTENCY_KEY_EXISTS: &str =
    "select exists (select 1 from idempotency_keys where key = ?1)";

pub(super) const LOAD_IDEMPOTENCY_KEY: &str =
    "select key, request_fingerprint, outcome from idempotency_keys where key = ?1";

pub(super) const READ_STREAM: &str = concat!(
    "select ",
    event_columns!(),
    " from events where stream_id = ?1 and version > ?2 order by version"
);

/// The global read. Writers are serialised and each takes the next transaction id,
/// so a committed event never sorts before one that is already visible.
pub(super) const READ_ALL: &str = concat!(
    "select ",
    event_columns!(),
    " from events where (transaction_id, position) > (?1, ?2) \
      order by transaction_id, position limit ?3"
);

pub(super) const LOAD_SNAPSHOT: &str =
    "select stream_id, version, schema_version, state from snapshots where stream_id = ?1";

/// Stores a snapshot unless a newer one is already stored; one of the same version is
/// replaced, so that a snapshot re-taken under a new schema version wins.
pub(super) const SAVE_SNAPSHOT: &str = "\
    insert into snapshots (stream_id, version, schema_version, state, taken_at) \
    values (?1, ?2, ?3, ?4, ?5) \
    on conflict (stream_id) do update \
        set version = excluded.version, \
            schema_version = excluded.schema_version, \
            state = excluded.state, \
            taken_at = excluded.taken_at \
        where snapshots.version <= excluded.version";

/// Claims a key unless a live claim holds it; returns the key when claimed.
pub(super) const CLAIM_IDEMPOTENCY_KEY: &str = "\
    insert into idempotency_claims (key, request_fingerprint, claimed_until) values (?1, ?2, ?3) \
    on conflict (key) do update \
        set request_fingerprint = excluded.request_fingerprint, claimed_until = excluded.claimed_until \
        where idempotency_claims.claimed_until <= ?4 \
    returning key";

pub(super) const IDEMPOTENCY_CLAIM_HOLDER: &str =
    "select request_fingerprint from idempotency_claims where key = ?1";

/// What a finished claim's `claimed_until` is: later than any instant `format_instant`
/// writes, so it is never taken over.
pub(super) const CLAIM_FINISHED: &str = "9999-12-31T23:59:59.999999Z";

/// Finishes a claim once its command's outcome is recorded, in the append's
/// transaction.
pub(super) const FINISH_IDEMPOTENCY_CLAIM: &str =
    "update idempotency_claims set claimed_until = ?2 where key = ?1";

/// Releases a claim whose command recorded no outcome; a finished claim stays.
pub(super) const RELEASE_IDEMPOTENCY_KEY: &str =
    "delete from idempotency_claims where key = ?1 and claimed_until <> ?2";
