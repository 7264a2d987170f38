-- One seat hold as the event store writes it on PostgreSQL, for pgbench: the
-- database's ceiling for holds in one section, to set beside the rate that
-- ticketing-loadtest measures through the HTTP API (loadtest/README.md).
--
--   pgbench -n -f loadtest/pgbench/hold.sql -c 64 -j 2 -T 30 "$PGBENCH_DB"
--
-- Every transaction is one hold of 1 seat in the section created by setup.sql:
-- lock the section's head row, append SeatsHeld to the inventory stream and
-- ReservationPlaced to a new reservation stream, move both heads, enqueue both events
-- in the outbox, commit. Only the hold's write transaction: the server also reads the
-- streams it decides on, records the idempotency key and publishes from the outbox.
--
-- The reservation id lives in a transaction-local setting rather than a pgbench
-- variable, so that the script runs the same with -M simple, extended or prepared
-- (pgbench substitutes variables without quoting them).

begin;

-- The section is the unit of contention: every hold waits here for the one before.
select s.version + 1 as seats_version,
       set_config('pgbench.reservation_id', gen_random_uuid()::text, true) as reservation_id
  from streams s
 where s.stream_id = 'inventory-00000000-0000-4000-8000-00000000b3e7-pgbench'
   for update
\gset

insert into events (stream_id, version, event_id, event_type, schema_version, data, metadata)
values (
    'inventory-00000000-0000-4000-8000-00000000b3e7-pgbench', :seats_version, gen_random_uuid(),
    'SeatsHeld', 3,
    jsonb_build_object(
        'reservation_id', current_setting('pgbench.reservation_id'),
        'quantity', 1,
        'expires_at', now() + interval '10 minutes',
        'held_at', now()),
    jsonb_build_object('actor', 'pgbench', 'idempotency_key', 'pgbench-' || current_setting('pgbench.reservation_id'))
);

insert into streams (stream_id, version, last_event_type, updated_at)
values ('inventory-00000000-0000-4000-8000-00000000b3e7-pgbench', :seats_version, 'SeatsHeld', now())
on conflict (stream_id) do update
    set version = excluded.version,
        last_event_type = excluded.last_event_type,
        updated_at = excluded.updated_at;

insert into events (stream_id, version, event_id, event_type, schema_version, data, metadata)
values (
    'reservation-' || current_setting('pgbench.reservation_id'), 1, gen_random_uuid(),
    'ReservationPlaced', 1,
    jsonb_build_object(
        'reservation_id', current_setting('pgbench.reservation_id'),
        'show_id', '00000000-0000-4000-8000-00000000b3e7',
        'section', 'pgbench',
        'customer_id', 'pgbench-customer',
        'quantity', 1,
        'unit_price', jsonb_build_object('amount_minor', 4500, 'currency', 'EUR'),
        'amount', jsonb_build_object('amount_minor', 4500, 'currency', 'EUR'),
        'expires_at', now() + interval '10 minutes',
        'placed_at', now()),
    jsonb_build_object('actor', 'pgbench', 'idempotency_key', 'pgbench-' || current_setting('pgbench.reservation_id'))
);

insert into streams (stream_id, version, last_event_type, updated_at)
values ('reservation-' || current_setting('pgbench.reservation_id'), 1, 'ReservationPlaced', now())
on conflict (stream_id) do update
    set version = excluded.version,
        last_event_type = excluded.last_event_type,
        updated_at = excluded.updated_at;

insert into outbox (position, stream_id, enqueued_at)
select position, stream_id, recorded_at
  from events
 where transaction_id = pg_current_xact_id();

commit;
