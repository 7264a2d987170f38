-- Commands with an idempotency key that are running now (see the PostgreSQL
-- migration of the same name). `claimed_until` is RFC 3339 UTC text with a fixed
-- number of fractional digits, so text order is time order.
create table idempotency_claims (
    key                 text not null primary key,
    request_fingerprint text not null,
    claimed_until       text not null
);
