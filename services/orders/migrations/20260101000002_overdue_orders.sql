-- The unpaid orders by deadline: the expiry sweep reads the oldest overdue
-- ones without scanning the paid and cancelled history.
CREATE INDEX orders_unpaid_expires_at
    ON orders (expires_at)
    WHERE status IN ('created', 'awaiting:payment');
