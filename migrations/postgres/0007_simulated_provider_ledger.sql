-- The simulated payment provider's records (store/src/ledger.rs): its charges and
-- refunds by idempotency key, so that every function of a deployment and the sweeper
-- see the same ones, as a real provider's API would show them. The first entry
-- recorded under a key stays.
create table simulated_provider_ledger (
    kind         text        not null,
    key          text        not null,
    entry        jsonb       not null,
    recorded_at  timestamptz not null default now(),
    primary key (kind, key)
);
