-- One row per attempt to charge an order. A row is written ('pending')
-- before the card is charged, so that two submits for one order cannot
-- both reach the provider, and a charge whose answer was lost is known.
--
--   pending   the charge is under way (or its answer was lost)
--   succeeded charged; this is the order's payment (payment.created emitted)
--   failed    declined, rejected, or abandoned without an answer
--   refunding charged, but must be given back (order cancelled, or a duplicate)
--   refunded  charged and given back; see `refunds`
CREATE TABLE payments (
    id              UUID        PRIMARY KEY,
    order_id        UUID        NOT NULL REFERENCES orders (id),
    attempt         INT         NOT NULL,
    -- Sent to the provider as `Idempotency-Key`: a retried request for the
    -- same attempt never charges twice.
    idempotency_key TEXT        NOT NULL UNIQUE,
    status          TEXT        NOT NULL,
    amount          BIGINT      NOT NULL,   -- cents
    currency        TEXT        NOT NULL,
    stripe_id       TEXT        UNIQUE,     -- the PaymentIntent
    failure_message TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_status_check
        CHECK (status IN ('pending', 'succeeded', 'failed', 'refunding', 'refunded')),
    CONSTRAINT payments_order_attempt_key UNIQUE (order_id, attempt)
);

-- At most one charge under way or kept per order: concurrent submits race
-- on this index, so an order is never paid twice.
CREATE UNIQUE INDEX payments_order_active_key
    ON payments (order_id)
    WHERE status IN ('pending', 'succeeded');

-- Charges that must still be given back, for the reconciler.
CREATE INDEX payments_refunding ON payments (updated_at) WHERE status = 'refunding';

-- Money given back: at most one (full) refund per payment.
CREATE TABLE refunds (
    id         UUID        PRIMARY KEY,
    payment_id UUID        NOT NULL UNIQUE REFERENCES payments (id),
    stripe_id  TEXT        NOT NULL,   -- the provider's refund id
    amount     BIGINT      NOT NULL,   -- cents
    reason     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT refunds_reason_check CHECK (reason IN ('order_cancelled', 'duplicate'))
);

-- Stripe webhook events already handled; Stripe delivers at least once.
CREATE TABLE webhook_events (
    id          TEXT        PRIMARY KEY,   -- evt_…
    type        TEXT        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
