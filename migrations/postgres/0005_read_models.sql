-- Read models of the projector (see docs/adr/0009-read-models-and-projection.md).
-- Display only: no decision reads them. Every row belongs to exactly one stream, so a
-- row is a function of the prefix of its stream applied so far
-- (`projection_applied`), written in the same transaction as that version.

-- Seats of one section (one `inventory-<show>-<section>` stream). Holds are kept with
-- their expiry so that a reader computes held/available at its own `now`: an expired
-- hold is free whether or not the sweeper has recorded its expiry yet.
create table read_section_availability (
    stream_id          text    not null primary key,
    show_id            text    not null,
    section            text    not null,
    capacity           bigint  not null,
    sold               bigint  not null,
    unit_price_minor   bigint  not null,
    currency           text    not null,
    -- [{"reservation_id": .., "quantity": .., "expires_at": ..}], by reservation id.
    holds              jsonb   not null
);
create index read_section_availability_show on read_section_availability (show_id, section);

-- Sales of one section, from the same stream: seats confirmed (gross) and returned
-- (refunds), valued at the section's unit price.
create table read_section_sales (
    stream_id          text    not null primary key,
    show_id            text    not null,
    section            text    not null,
    currency           text    not null,
    tickets_sold       bigint  not null,
    gross_minor        bigint  not null,
    refunds_count      bigint  not null,
    refunds_minor      bigint  not null
);
create index read_section_sales_show on read_section_sales (show_id, section);

-- The same, per hour (of the events' `recorded_at`) and section. Rows only grow by
-- the deltas of newly applied events.
create table read_sales_by_hour (
    show_id            text        not null,
    section            text        not null,
    hour               timestamptz not null,
    currency           text        not null,
    tickets_sold       bigint      not null,
    gross_minor        bigint      not null,
    refunds_count      bigint      not null,
    refunds_minor      bigint      not null,
    primary key (show_id, section, hour)
);

-- Each customer's purchases (one `reservation-<id>` stream each).
create table read_customer_reservations (
    stream_id          text        not null primary key,
    reservation_id     text        not null unique,
    customer_id        text        not null,
    show_id            text        not null,
    section            text        not null,
    quantity           bigint      not null,
    amount_minor       bigint      not null,
    currency           text        not null,
    state              text        not null,
    placed_at          timestamptz not null,
    expires_at         timestamptz not null,
    paid_at            timestamptz,
    refunded_at        timestamptz,
    updated_at         timestamptz not null
);
create index read_customer_reservations_customer
    on read_customer_reservations (customer_id, placed_at desc, reservation_id desc);

-- The last version of each stream applied to the read models.
create table projection_applied (
    stream_id  text   not null primary key,
    version    bigint not null
);

-- Events the projector could not decode: recorded, counted as applied, skipped.
create table projection_dead_letters (
    id              bigserial   not null primary key,
    stream_id       text        not null,
    version         bigint      not null,
    event_type      text        not null,
    schema_version  bigint      not null,
    payload         jsonb       not null,
    error           text        not null,
    recorded_at     timestamptz not null default now(),
    unique (stream_id, version)
);

-- How far a reader of the global order (rebuild, catch-up) has applied.
create table projection_checkpoint (
    name            text   not null primary key,
    transaction_id  bigint not null,
    position        bigint not null
);
