-- The outbox in the global order of its own: each row carries its event's writing
-- transaction, and an index orders the rows as readers of the global order read
-- events, (transaction_id, position).
--
-- The relay reads the oldest rows of the outbox every pass. Ordered by the events'
-- columns, PostgreSQL walked `events` in that order from the very first event and
-- looked each one up in the outbox: a pass over an empty outbox cost a visit to every
-- event ever stored (30 ms at 15,000 events, and growing with the store). Ordered by
-- the outbox's own index, a pass reads only the rows it returns.
--
-- `append` writes each row's `transaction_id` from the event it enqueues; the default
-- gives the same value to any other insert, since an outbox row is always written in
-- its event's transaction. Rows already waiting take theirs from `events`.

alter table outbox add column transaction_id xid8;

update outbox o
   set transaction_id = e.transaction_id
  from events e
 where e.position = o.position;

alter table outbox
    alter column transaction_id set default pg_current_xact_id(),
    alter column transaction_id set not null;

create index outbox_transaction_position_idx on outbox (transaction_id, position);
