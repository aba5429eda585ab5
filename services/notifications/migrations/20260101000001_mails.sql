-- Every mail the service decided to send, rendered, one row per
-- (kind, subject entity, recipient): the unique key is written before the
-- send, so a redelivered event or a second replica never makes a second mail.
--
--   pending  to send (again) at next_attempt_at
--   sent     the SMTP server accepted it
--   failed   the SMTP server refused it for good (5xx); not retried
CREATE TABLE mails (
    id              UUID        PRIMARY KEY,
    kind            TEXT        NOT NULL,
    subject_id      UUID        NOT NULL,   -- the user, order or payment it is about
    recipient       TEXT        NOT NULL,
    subject         TEXT        NOT NULL,
    text_body       TEXT        NOT NULL,
    html_body       TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending',
    attempts        INT         NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    CONSTRAINT mails_once UNIQUE (kind, subject_id, recipient),
    CONSTRAINT mails_status_check CHECK (status IN ('pending', 'sent', 'failed'))
);

-- The sender only ever reads mails still to send, soonest first.
CREATE INDEX mails_pending ON mails (next_attempt_at) WHERE status = 'pending';

-- Reminders to write when an unpaid reservation is about to run out. A row
-- lives from order.created until its mail is written or the order is paid
-- or cancelled; the scheduler polls the due ones, so they survive restarts.
CREATE TABLE reminders (
    order_id UUID        PRIMARY KEY REFERENCES orders (id),
    due_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX reminders_due ON reminders (due_at);
