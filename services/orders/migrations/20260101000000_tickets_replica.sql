-- The tickets this service knows of, kept only from the tickets service's
-- ticket.created and ticket.updated events. `version` is the version of the
-- last event applied; an update is applied only on top of its predecessor.
CREATE TABLE tickets (
    id      UUID   PRIMARY KEY,
    title   TEXT   NOT NULL,
    price   BIGINT NOT NULL,   -- cents
    user_id UUID   NOT NULL,   -- the seller
    version BIGINT NOT NULL
);
