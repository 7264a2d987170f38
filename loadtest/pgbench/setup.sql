-- The section that loadtest/pgbench/hold.sql holds seats in: the head row of its
-- inventory stream in `streams` (the row every hold locks) and the stream's first
-- event. Run once, with psql, on a database migrated with `ticketing migrate`:
--
--   psql "$PGBENCH_DB" -v ON_ERROR_STOP=1 -f loadtest/pgbench/setup.sql
--
-- Idempotent: running it again keeps the stream and its version. The show id is a
-- fixed, made-up one; no show stream exists for it.

begin;

insert into events (stream_id, version, event_id, event_type, schema_version, data, metadata)
values (
    'inventory-00000000-0000-4000-8000-00000000b3e7-pgbench', 1, gen_random_uuid(),
    'SectionInitialized', 1,
    jsonb_build_object(
        'show_id', '00000000-0000-4000-8000-00000000b3e7',
        'section', 'pgbench',
        'capacity', 100000,
        'unit_price', jsonb_build_object('amount_minor', 4500, 'currency', 'EUR'),
        'max_per_order', 100),
    jsonb_build_object('actor', 'pgbench')
)
on conflict on constraint events_stream_version_key do nothing;

insert into streams (stream_id, version, last_event_type, updated_at)
values ('inventory-00000000-0000-4000-8000-00000000b3e7-pgbench', 1, 'SectionInitialized', now())
on conflict (stream_id) do nothing;

commit;
