-- Read models of the projector: see the PostgreSQL migration of the same name and
-- docs/adr/0009-read-models-and-projection.md. Instants are RFC 3339 UTC text with
-- six fractional digits (text order is time order); JSON is text.

create table read_section_availability (
    stream_id          text    not null primary key,
    show_id            text    not null,
    section            text    not null,
    capacity           integer not null,
    sold               integer not null,
    unit_price_minor   integer not null,
    currency           text    not null,
    holds              text    not null
);
create index read_section_availability_show on read_section_availability (show_id, section);

create table read_section_sales (
    stream_id          text    not null primary key,
    show_id            text    not null,
    section            text    not null,
    currency           text    not null,
    tickets_sold       integer not null,
    gross_minor        integer not null,
    refunds_count      integer not null,
    refunds_minor      integer not null
);
create index read_section_sales_show on read_section_sales (show_id, section);

create table read_sales_by_hour (
    show_id            text    not null,
    section            text    not null,
    hour               text    not null,
    currency           text    not null,
    tickets_sold       integer not null,
    gross_minor        integer not null,
    refunds_count      integer not null,
    refunds_minor      integer not null,
    primary key (show_id, section, hour)
);

create table read_customer_reservations (
    stream_id          text    not null primary key,
    reservation_id     text    not null unique,
    customer_id        text    not null,
    show_id            text    not null,
    section            text    not null,
    quantity           integer not null,
    amount_minor       integer not null,
    currency           text    not null,
    state              text    not null,
    placed_at          text    not null,
    expires_at         text    not null,
    paid_at            text,
    refunded_at        text,
    updated_at         text    not null
);
create index read_customer_reservations_customer
    on read_customer_reservations (customer_id, placed_at desc, reservation_id desc);

create table projection_applied (
    stream_id  text    not null primary key,
    version    integer not null
);

create table projection_dead_letters (
    id              integer not null primary key autoincrement,
    stream_id       text    not null,
    version         integer not null,
    event_type      text    not null,
    schema_version  integer not null,
    payload         text    not null,
    error           text    not null,
    recorded_at     text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    unique (stream_id, version)
);

create table projection_checkpoint (
    name            text    not null primary key,
    transaction_id  integer not null,
    position        integer not null
);
