-- When the ticket's event takes place, from ticket.created / ticket.updated
-- (NULL for tickets listed without one): a ticket whose event has passed
-- cannot be reserved.
ALTER TABLE tickets ADD COLUMN event_date TIMESTAMPTZ;
