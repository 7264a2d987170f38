-- Tickets at the door and in their holders' history (see docs/adr/0018-tickets.md).
-- As in 0005, every row belongs to one stream and is written in the same transaction
-- as that stream's applied version.

-- A purchase's tickets (from its `TicketsIssued`): what its refund or cancellation
-- revokes. JSON array of ticket ids.
alter table read_customer_reservations add column ticket_ids jsonb not null default '[]';

-- One ticket (its `ticket-<id>` stream): who holds it, the generation of its valid
-- code, and when it was let in.
create table read_tickets (
    stream_id       text        not null primary key,
    ticket_id       text        not null unique,
    reservation_id  text        not null,
    show_id         text        not null,
    section         text        not null,
    holder          text        not null,
    generation      bigint      not null,
    held_since      timestamptz not null,
    admitted_at     timestamptz,
    gate            text,
    updated_at      timestamptz not null
);
create index read_tickets_show on read_tickets (show_id, section);
create index read_tickets_holder on read_tickets (holder, held_since desc, ticket_id desc);

-- A ticket revoked by its purchase's refund or cancellation: a row of the purchase's
-- stream, so it is there even before the ticket's own row is projected.
create table read_ticket_revocations (
    ticket_id       text        not null primary key,
    stream_id       text        not null,
    reservation_id  text        not null,
    show_id         text        not null,
    section         text        not null,
    reason          text        not null,
    revoked_at      timestamptz not null
);
create index read_ticket_revocations_show on read_ticket_revocations (show_id, revoked_at);
