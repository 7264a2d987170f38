//! The statements of the PostgreSQL backend, kept together so that the queries and
//! the schema in `migrations/postgres` can be read side by side.

/// The columns every event read selects, in the names `decode_event` expects. The
/// transaction id is an `xid8`, which has no binary mapping in sqlx: it is read through
/// its text form as a `bigint` (an `xid8` is a 64-bit epoch-extended id, so it fits).
macro_rules! event_columns {
    () => {
        "position, transaction_id::text::bigint as transaction_id, stream_id, version, \
         event_id, event_type, schema_version, data, metadata, recorded_at"
    };
}

/// A stream's current version: its highest version, 0 when it has no events. Served
/// by the `events_stream_version_key` index.
pub(super) const STREAM_VERSION: &str =
    "select coalesce(max(version), 0)::bigint from events where stream_id = $1";

/// Inserts one stream's events in one round trip. `with ordinality` and the `order
/// by` make the positions follow the order of the events.
pub(super) const INSERT_EVENTS: &str = "\
    insert into events (stream_id, version, event_id, event_type, schema_version, data, metadata) \
    select $1, e.version, e.event_id, e.event_type, e.schema_version, e.data, e.metadata \
    from unnest($2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[]) \
        with ordinality as e(version, event_id, event_type, schema_version, data, metadata, n) \
    order by e.n";

pub(super) const INSERT_IDEMPOTENCY_KEY: &str =
    "insert into idempotency_keys (key, request_fingerprint, outcome) values ($1, $2, $3)";

pub(super) const STORED_EVENT_IDS: &str = "select event_id from events where event_id = any($1)";

pub(super) const IDEMPOTENCY_KEY_EXISTS: &str =
    "select exists (select 1 from idempotency_keys where key = $1)";

pub(super) const LOAD_IDEMPOTENCY_KEY: &str =
    "select key, request_fingerprint, outcome from idempotency_keys where key = $1";

pub(super) const READ_STREAM: &str = concat!(
    "select ",
    event_columns!(),
    " from events where stream_id = $1 and version > $2 order by version"
);

/// The gap-safe global read. Only events of transactions older than the oldest one
/// still in flight are returned: a transaction that is still running may yet commit an
/// event that sorts before the ones already visible, and a reader that checkpointed
/// past them would skip it. The checkpoint's transaction id arrives as a `bigint` and is
/// compared as an `xid8`, so that the `events_transaction_position_idx` index serves the
/// row comparison.
pub(super) const READ_ALL: &str = concat!(
    "select ",
    event_columns!(),
    " from events \
      where transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
        and (transaction_id, position) > ($1::bigint::text::xid8, $2::bigint) \
      order by transaction_id, position \
      limit $3"
);

pub(super) const LOAD_SNAPSHOT: &str =
    "select stream_id, version, schema_version, state from snapshots where stream_id = $1";

/// Stores a snapshot unless a newer one is already stored; one of the same version is
/// replaced, so that a snapshot re-taken under a new schema version wins.
pub(super) const SAVE_SNAPSHOT: &str = "\
    insert into snapshots (stream_id, version, schema_version, state, taken_at) \
    values ($1, $2, $3, $4, now()) \
    on conflict (stream_id) do update \
        set version = excluded.version, \
            schema_version = excluded.schema_version, \
            state = excluded.state, \
            taken_at = excluded.taken_at \
        where snapshots.version <= excluded.version";
