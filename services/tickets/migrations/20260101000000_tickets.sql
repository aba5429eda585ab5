CREATE TABLE tickets (
    id         UUID        PRIMARY KEY,
    title      TEXT        NOT NULL,
    -- Integer cents; the API accepts at most two decimals.
    price      BIGINT      NOT NULL,
    user_id    UUID        NOT NULL,
    -- The order holding the ticket while it is reserved; NULL when free.
    order_id   UUID,
    -- Bumped by exactly one on every change, and carried in every
    -- ticket.updated, so that replicas apply the changes in order.
    version    BIGINT      NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tickets_price_positive CHECK (price > 0),
    CONSTRAINT tickets_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT tickets_version_non_negative CHECK (version >= 0)
);

-- The public list: free tickets, newest first, paged by id. Ids are UUIDv7,
-- so id order is creation order and a keyset on id needs no created_at.
CREATE INDEX tickets_unreserved_newest ON tickets (id DESC) WHERE order_id IS NULL;

-- Orders whose order.cancelled has been handled. Events on different subjects
-- have no mutual order, so a cancellation may arrive before the creation of
-- its order; remembering it keeps the late order.created from reserving the
-- ticket. It also de-duplicates redelivered cancellations.
CREATE TABLE cancelled_orders (
    order_id     UUID        PRIMARY KEY,
    ticket_id    UUID        NOT NULL,
    cancelled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
