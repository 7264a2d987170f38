-- Commands with an idempotency key that are running now.
--
-- A command claims its key before it starts and releases it when it ends; its outcome
-- is then in `idempotency_keys`. A duplicate that arrives while the claim is held is
-- told "in progress" instead of running the command a second time. A claim expires, so
-- that a command whose process died does not block its retries for ever.
create table idempotency_claims (
    key                 text        not null,
    request_fingerprint text        not null,
    claimed_until       timestamptz not null,
    constraint idempotency_claims_pkey primary key (key)
);
