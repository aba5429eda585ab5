-- Idempotency keys (the `Idempotency-Key` header of POST requests): the first
-- request's fingerprint and, once it finished, its response, replayed to
-- retries of the same request. Each service's database gets its own copy.

CREATE TABLE idempotency_keys (
    -- Whose key: `user:<id>` when signed in, `ip:<address>` otherwise.
    scope        TEXT        NOT NULL,
    method       TEXT        NOT NULL,
    path         TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    -- SHA-256 of the request body (canonical JSON when it is JSON).
    request_hash BYTEA       NOT NULL,
    -- NULL while the first request is in flight.
    status       SMALLINT,
    headers      JSONB,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, method, path, key)
);

-- The hourly cleanup deletes keys older than a day.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
