-- The event store: events, snapshots and idempotency records.
--
-- Constraints are named explicitly because the store tells unique violations apart by
-- constraint name: a (stream_id, version) clash is a concurrency conflict, an event_id
-- clash is a retried append, an idempotency key clash is a replayed command.

create table events (
    -- The insertion order. Not the global read order on its own: a transaction can
    -- take a lower position and commit after one with a higher position.
    position       bigint generated always as identity,
    stream_id      text        not null,
    -- 1 for the first event of a stream, contiguous after that.
    version        bigint      not null,
    event_id       uuid        not null,
    event_type     text        not null,
    schema_version int         not null,
    data           jsonb       not null,
    metadata       jsonb       not null,
    -- The writing transaction: readers of the global order read (transaction_id,
    -- position) only below the oldest transaction still in flight, so an event that
    -- commits late with a lower position is never skipped.
    transaction_id xid8        not null default pg_current_xact_id(),
    recorded_at    timestamptz not null default now(),
    constraint events_pkey primary key (position),
    constraint events_stream_version_key unique (stream_id, version),
    constraint events_event_id_key unique (event_id),
    constraint events_stream_id_not_empty check (stream_id <> ''),
    constraint events_version_positive check (version > 0)
);

-- The global order that read_all pages through.
create index events_transaction_position_idx on events (transaction_id, position);

-- At most one snapshot per stream: the newest one.
create table snapshots (
    stream_id      text        not null,
    version        bigint      not null,
    schema_version int         not null,
    state          jsonb       not null,
    taken_at       timestamptz not null default now(),
    constraint snapshots_pkey primary key (stream_id)
);

-- A command's outcome, written in the same transaction as its events.
create table idempotency_keys (
    key                 text        not null,
    request_fingerprint text        not null,
    outcome             jsonb       not null,
    recorded_at         timestamptz not null default now(),
    constraint idempotency_keys_pkey primary key (key)
);
