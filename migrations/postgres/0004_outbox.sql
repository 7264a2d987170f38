-- The outbox: the events that are committed but not yet known to be on the bus.
--
-- `append` inserts one row per event in the same transaction as the event, so a
-- committed event is always either on the bus or still here, even when the writer dies
-- right after its commit. Whoever publishes an event (the command that wrote it, or the
-- relay for what that command left behind) deletes its row once the bus acknowledged
-- it. The table stays small: it holds the backlog, not the history.
--
-- Events stored before this migration are not enqueued: they were never promised to
-- the bus, and readers that need the whole history rebuild from `events` (read_all).

create table outbox (
    position    bigint      not null,
    stream_id   text        not null,
    -- The event's `recorded_at`: the relay leaves events younger than a grace period to
    -- the command that wrote them.
    enqueued_at timestamptz not null default now(),
    constraint outbox_pkey primary key (position),
    constraint outbox_position_fkey foreign key (position) references events (position)
);
