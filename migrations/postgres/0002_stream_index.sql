-- The stream index: one row per stream with its current version, the type of its last
-- event and when that event was recorded.
--
-- It lets a process find streams by where they stand (a reservation whose last event
-- is `PaymentRequested` is a purchase waiting for its payment's outcome) without
-- reading the events or keeping a read model. The store maintains it in the same
-- transaction as every append, so it is never behind the events it describes. It is
-- derived data: the `events` table stays the truth, and version checks read it.

create table streams (
    stream_id       text        not null,
    -- The version of the stream's last event: the number of events in it.
    version         bigint      not null,
    last_event_type text        not null,
    -- The `recorded_at` of the stream's last event.
    updated_at      timestamptz not null,
    constraint streams_pkey primary key (stream_id),
    constraint streams_version_positive check (version > 0)
);

-- `find_streams`: the streams whose last event is of given types, oldest first. The
-- stream id is in the index so that ties are ordered without visiting the table.
create index streams_last_event_type_updated_at_idx
    on streams (last_event_type, updated_at, stream_id);

-- Every stream that already has events gets its head.
insert into streams (stream_id, version, last_event_type, updated_at)
select distinct on (stream_id) stream_id, version, event_type, recorded_at
  from events
 order by stream_id, version desc;
