-- The orders this service knows of, kept only from the orders service's
-- order.created and order.cancelled events. `version` is the version of the
-- last event applied. Whether an order is paid is not a status here: it is
-- the existence of its succeeded payment.
CREATE TABLE orders (
    id      UUID   PRIMARY KEY,
    user_id UUID   NOT NULL,   -- the buyer
    price   BIGINT NOT NULL,   -- cents
    status  TEXT   NOT NULL,
    version BIGINT NOT NULL,
    -- The end of the reservation: the order cannot be paid after it.
    expires_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT orders_status_check
        CHECK (status IN ('created', 'awaiting:payment', 'complete', 'cancelled'))
);
