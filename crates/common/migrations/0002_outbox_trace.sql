-- The trace context (W3C traceparent) of the request or event that enqueued
-- a row, so the relay can pass it on in the message's headers. Rows written
-- before this column existed, or outside any trace, have none.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
