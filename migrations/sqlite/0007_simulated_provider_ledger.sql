-- The simulated payment provider's records: see the PostgreSQL migration of the same
-- name. JSON is text.
create table simulated_provider_ledger (
    kind         text    not null,
    key          text    not null,
    entry        text    not null,
    recorded_at  text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    primary key (kind, key)
);
