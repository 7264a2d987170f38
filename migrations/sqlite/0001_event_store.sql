-- The embedded event store: the same tables as on PostgreSQL, in SQLite's types.
--
-- UUIDs are stored as hyphenated text and JSON as text. Timestamps are RFC 3339 text
-- in UTC with exactly six fractional digits, written by the store, so they sort as
-- text and round-trip to the microsecond.
--
-- SQLite reports a unique violation by column list ("UNIQUE constraint failed:
-- events.event_id"), not by constraint name; the names are kept for symmetry with
-- PostgreSQL.

create table events (
    -- AUTOINCREMENT: a position is never reused, even after the last row is deleted.
    position       integer primary key autoincrement,
    stream_id      text    not null check (stream_id <> ''),
    version        integer not null check (version > 0),
    event_id       text    not null,
    event_type     text    not null,
    schema_version integer not null,
    data           text    not null,
    metadata       text    not null,
    -- Writers are serialised, and each append transaction takes the next number.
    transaction_id integer not null,
    recorded_at    text    not null,
    constraint events_stream_version_key unique (stream_id, version),
    constraint events_event_id_key unique (event_id)
);

create index events_transaction_position_idx on events (transaction_id, position);

create table snapshots (
    stream_id      text    not null primary key,
    version        integer not null,
    schema_version integer not null,
    state          text    not null,
    taken_at       text    not null
);

create table idempotency_keys (
    key                 text not null primary key,
    request_fingerprint text not null,
    outcome             text not null,
    recorded_at         text not null
);
