-- The outbox: the events that are committed but not yet known to be on the bus (see
-- the PostgreSQL migration of the same name). `enqueued_at` is the event's
-- `recorded_at`: RFC 3339 UTC text with six fractional digits, so text order is time
-- order. Events stored before this migration are not enqueued.
create table outbox (
    position    integer not null primary key references events (position),
    stream_id   text    not null,
    enqueued_at text    not null
);
