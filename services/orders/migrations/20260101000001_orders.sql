CREATE TABLE orders (
    id         UUID        PRIMARY KEY,
    user_id    UUID        NOT NULL,
    ticket_id  UUID        NOT NULL REFERENCES tickets (id),
    status     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    version    BIGINT      NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT orders_status_check
        CHECK (status IN ('created', 'awaiting:payment', 'complete', 'cancelled'))
);

-- The hold on a ticket: at most one order that is not cancelled per ticket.
-- Concurrent buyers race on this index, not on a read, so exactly one wins;
-- a complete (sold) order keeps holding its ticket for good.
CREATE UNIQUE INDEX orders_active_ticket_key
    ON orders (ticket_id)
    WHERE status IN ('created', 'awaiting:payment', 'complete');

-- A buyer's orders, newest first.
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC);
