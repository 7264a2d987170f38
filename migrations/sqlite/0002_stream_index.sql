-- The stream index, as on PostgreSQL: one row per stream with its current version,
-- the type of its last event and that event's `recorded_at` (RFC 3339 text in UTC with
-- six fractional digits, so it sorts as text). Maintained by every append in the same
-- transaction; the `events` table stays the truth.

create table streams (
    stream_id       text    not null primary key,
    version         integer not null check (version > 0),
    last_event_type text    not null,
    updated_at      text    not null
);

create index streams_last_event_type_updated_at_idx
    on streams (last_event_type, updated_at, stream_id);

-- Every stream that already has events gets its head.
insert into streams (stream_id, version, last_event_type, updated_at)
select e.stream_id, e.version, e.event_type, e.recorded_at
  from events e
 where e.version = (select max(m.version) from events m where m.stream_id = e.stream_id);
