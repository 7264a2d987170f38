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
pub(super) const EVENT_COUNT: &str = "select count(*)::bigint from events";

/// A writer's turn on a stream across processes: a transaction-scoped advisory lock on
/// the stream's key, given up when the transaction ends.
pub(super) const LOCK_STREAM: &str = "select pg_advisory_xact_lock($1)";

pub(super) const STREAM_VERSION: &str =
    "select coalesce(max(version), 0)::bigint from events where stream_id = $1";

/// A whole append in one round trip, whatever the number of streams: each stream's
/// version check, the events, their outbox entries, the streams' heads, and the
/// idempotency records, which also finish their keys' claims (`claimed_until`
/// infinity: never taken over).
///
/// One array element per event, in write order (streams sorted by id, each stream's
/// events in order): `$1` its stream, `$2` its stream's expected version (`-1` for
/// any, `0` for no stream, else the exact version), `$3` its place in its stream from
/// 1, then its columns. `$9`, `$10`, `$11`: the records' keys, fingerprints and
/// outcomes, one element per record (none, one, or one per command of a batch).
/// `$12`, `$13`: the conditions' streams and expected versions, checked as the other
/// streams are and written nothing (`StreamAppend::condition`). All
/// or nothing: when a stream is not at its expected version nothing is inserted, and
/// the rows (one per stream, without an event) give each stream's `current` version
/// for the caller to report the conflict. Otherwise one row per event, in write order.
/// Rows are locked in stream order, so two appends over the same streams cannot
/// deadlock; two writers that both read version `n` cannot both store `n + 1`
/// (`events_stream_version_key`), and the loser is retried. A recorded key is a
/// unique violation of `idempotency_keys_pkey`. `updated_at` and the outbox's
/// `enqueued_at` are the events' `recorded_at` (the transaction's `now()`).
pub(super) const APPEND: &str = "\
    with input as ( \
        select * from unnest($1::text[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[], \
                             $6::int[], $7::jsonb[], $8::jsonb[]) \
            with ordinality as e(stream_id, expected, n, event_id, event_type, schema_version, \
                                 data, metadata, ord) \
    ), targets as ( \
        select distinct stream_id, expected from input \
        union \
        select stream_id, expected from unnest($12::text[], $13::bigint[]) as c(stream_id, expected) \
    ), current as ( \
        select t.stream_id, t.expected, \
               (select coalesce(max(version), 0) from events where stream_id = t.stream_id)::bigint \
                   as version \
          from targets t \
    ), allowed as ( \
        select stream_id, version from current where expected < 0 or version = expected \
    ), inserted as ( \
        insert into events (stream_id, version, event_id, event_type, schema_version, data, metadata) \
        select i.stream_id, a.version + i.n, i.event_id, i.event_type, i.schema_version, i.data, \
               i.metadata \
          from input i join allowed a on a.stream_id = i.stream_id \
         where (select count(*) from allowed) = (select count(*) from targets) \
         order by i.ord \
        returning position, transaction_id, stream_id, version, event_type, recorded_at \
    ), enqueued as ( \
        insert into outbox (position, transaction_id, stream_id, enqueued_at) \
        select position, transaction_id, stream_id, recorded_at from inserted \
    ), head as ( \
        insert into streams (stream_id, version, last_event_type, updated_at) \
        select distinct on (stream_id) stream_id, version, event_type, recorded_at \
          from inserted order by stream_id, version desc \
        on conflict (stream_id) do update \
            set version = excluded.version, \
                last_event_type = excluded.last_event_type, \
                updated_at = excluded.updated_at \
    ), recorded as ( \
        insert into idempotency_keys (key, request_fingerprint, outcome) \
        select r.key, r.fingerprint, r.outcome \
          from unnest($9::text[], $10::text[], $11::jsonb[]) as r(key, fingerprint, outcome) \
         where exists (select 1 from inserted) \
        returning key \
    ), finished as ( \
        update idempotency_claims set claimed_until = 'infinity' \
         where key in (select key from recorded) \
    ) \
    select c.stream_id, c.version as current, i.position, \
           i.transaction_id::text::bigint as transaction_id, i.version, i.recorded_at \
      from current c left join inserted i on i.stream_id = c.stream_id \
     order by c.stream_id, i.version";

/// The heads of the streams with an id starting with `$1` (compared with
/// `starts_with`, so `%` and `_` are not patterns) and a last event type in `$2`,
/// oldest first.
///
/// One ordered scan of `streams_last_event_type_updated_at_idx` per type, each stopping
/// after `$3` rows, then a merge: the cost is bounded by types × limit however many
/// streams wait. (A plain `last_event_type = any($2)` reads every matching row and
/// sorts them, because an index scan over several keys is not in `updated_at` order.)
pub(super) const FIND_STREAMS: &str = "\
    select h.stream_id, h.version, h.last_event_type, h.updated_at \
      from (select distinct unnest($2::text[]) as event_type) t \
      cross join lateral ( \
          select s.stream_id, s.version, s.last_event_type, s.updated_at from streams s \
           where s.last_event_type = t.event_type and starts_with(s.stream_id, $1) \
           order by s.updated_at, s.stream_id \
           limit $3) h \
     order by h.updated_at, h.stream_id \
     limit $3";

/// The events still in the outbox, recorded before `$1` when it is not null, in the
/// global order. No horizon as in `READ_ALL`: a row that commits later is still there
/// on the next read. Ordered by the outbox's own columns, which its
/// `outbox_transaction_position_idx` serves, so that a pass reads the rows it returns
/// and no more; ordered by the events' columns, PostgreSQL walks every event ever stored
/// (migration 0008).
pub(super) const UNPUBLISHED: &str = "\
    select e.position, e.transaction_id::text::bigint as transaction_id, e.stream_id, \
           e.version, e.event_id, e.event_type, e.schema_version, e.data, e.metadata, \
           e.recorded_at \
      from outbox o join events e on e.position = o.position \
     where $1::timestamptz is null or o.enqueued_at < $1::timestamptz \
     order by o.transaction_id, o.position \
     limit $2";

/// The opening of a statement that commits without waiting for the WAL to reach the
/// disk: `lazy`, a one-row CTE that turns `synchronous_commit` off for the statement's
/// own transaction only (the pooled connection's next transaction commits as
/// configured). The statement must read `lazy` for it to run. Only for writes whose
/// loss in a crash is harmless: see each statement's reason.
macro_rules! with_lazy_commit {
    () => {
        "with lazy as (select set_config('synchronous_commit', 'off', true))"
    };
}

/// Committed lazily (`with_lazy_commit!`): a mark lost in a crash only makes the relay
/// publish the events again, which the bus's consumers already expect.
pub(super) const MARK_PUBLISHED: &str = concat!(
    with_lazy_commit!(),
    " delete from outbox using lazy where position = any($1)"
);

pub(super) const OUTBOX_STATUS: &str = "select count(*), min(enqueued_at) from outbox";

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
/// row comparison. The order names the table's columns: a bare `transaction_id` there
/// would be the selected `bigint` alias, which no index orders, and PostgreSQL would
/// sort every event after the checkpoint for each batch (about a second a batch at a
/// million events).
pub(super) const READ_ALL: &str = concat!(
    "select ",
    event_columns!(),
    " from events \
      where transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
        and (transaction_id, position) > ($1::bigint::text::xid8, $2::bigint) \
      order by events.transaction_id, events.position \
      limit $3"
);

/// A stream's snapshot and the events after it, in one round trip, for a loader that
/// knows the stream up to version `$2` (0: not at all): the snapshot only if it is past
/// `$2`, and the events after the later of the two. One row per event (or one row
/// without an event), the snapshot's columns on the first row only, so that its state
/// travels once.
pub(super) const LOAD_STREAM: &str = "\
    select s.version as snapshot_version, s.schema_version as snapshot_schema_version, \
           case when row_number() over (order by e.version) = 1 then s.state end as snapshot_state, \
           e.position, e.transaction_id::text::bigint as transaction_id, e.stream_id, e.version, \
           e.event_id, e.event_type, e.schema_version, e.data, e.metadata, e.recorded_at \
      from (select 1) as one \
      left join snapshots s on s.stream_id = $1 and s.version > $2 \
      left join events e on e.stream_id = $1 and e.version > greatest(s.version, $2) \
     order by e.version";

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

/// In one round trip: the key's recorded outcome (`done`), else a claim on it unless a
/// live or finished claim holds it (`claimed`), else the holder's fingerprint (`busy`).
///
/// The look-ups read the statement's snapshot, while the claim's conflict check sees
/// the latest committed row: a command that recorded its outcome after the snapshot
/// finished its claim in the same commit, so the claim fails and the holder read from
/// the snapshot answers `busy`, never `claimed`. No row: a holder that released its
/// claim after the snapshot; the caller is told busy and its client retries.
///
/// Committed lazily (`with_lazy_commit!`: a synchronous commit costs a flush,
/// milliseconds on an ordinary disk, and every keyed command claims): a claim only
/// keeps concurrent duplicates waiting. Lost in a crash, it leaves the key free, which
/// is right: the command it guarded either did not commit, or committed with a
/// synchronous commit that flushed the WAL up to it, claim included; and an outcome is
/// recorded by the command's own append, which refuses a key recorded by another.
pub(super) const CLAIM_IDEMPOTENCY_KEY: &str = concat!(
    with_lazy_commit!(),
    ", \
    done as ( \
        select key, request_fingerprint, outcome from idempotency_keys where key = $1 \
    ), claimed as ( \
        insert into idempotency_claims (key, request_fingerprint, claimed_until) \
        select $1, $2, $3 from lazy where not exists (select 1 from done) \
        on conflict (key) do update \
            set request_fingerprint = excluded.request_fingerprint, claimed_until = excluded.claimed_until \
            where idempotency_claims.claimed_until <= $4 \
        returning key \
    ) \
    select 'done' as state, d.request_fingerprint, d.outcome from done d \
    union all \
    select 'claimed', null, null from claimed \
    union all \
    select 'busy', c.request_fingerprint, null from idempotency_claims c \
     where c.key = $1 and not exists (select 1 from done) and not exists (select 1 from claimed)"
);

/// Releases a claim whose command recorded no outcome; a finished claim stays.
/// Committed lazily (`with_lazy_commit!`): a release lost in a crash leaves the claim
/// to expire by itself.
pub(super) const RELEASE_IDEMPOTENCY_KEY: &str = concat!(
    with_lazy_commit!(),
    " delete from idempotency_claims using lazy \
     where key = $1 and claimed_until <> 'infinity'"
);
