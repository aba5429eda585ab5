-- What the service knows of users, tickets and orders, kept only from the
-- events of auth, tickets and orders. `version` is the version of the last
-- event applied; a change is applied only on top of its predecessor.

CREATE TABLE users (
    id      UUID   PRIMARY KEY,
    email   TEXT   NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE tickets (
    id        UUID   PRIMARY KEY,
    title     TEXT   NOT NULL,
    price     BIGINT NOT NULL,   -- cents
    seller_id UUID   NOT NULL,
    version   BIGINT NOT NULL
);

-- `paid` comes from payment.created, which carries no version: it is a
-- flag beside the versioned status, set once.
CREATE TABLE orders (
    id         UUID        PRIMARY KEY,
    buyer_id   UUID        NOT NULL,
    ticket_id  UUID        NOT NULL,
    price      BIGINT      NOT NULL,   -- cents
    status     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    paid       BOOLEAN     NOT NULL DEFAULT false,
    version    BIGINT      NOT NULL
);
