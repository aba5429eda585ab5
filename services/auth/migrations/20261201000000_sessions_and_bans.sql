-- Sessions (refresh-token families), their refresh tokens, revoked access
-- tokens, and bans with their audit trail.

ALTER TABLE users
    -- Bumped by every ban and unban; user.banned / user.unbanned carry it.
    ADD COLUMN version    BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN banned_at  TIMESTAMPTZ,
    ADD COLUMN ban_reason TEXT;

-- One row per sign-in: the refresh tokens issued since, rotated on each use,
-- all belong to it, and revoking it ends the session.
CREATE TABLE sessions (
    id             UUID        PRIMARY KEY,
    user_id        UUID        NOT NULL REFERENCES users (id),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at     TIMESTAMPTZ,
    -- signout, signout-everywhere, reuse (a rotated token came back), ban
    revoked_reason TEXT
);
CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_recently_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored only as the SHA-256 of the token.
CREATE TABLE refresh_tokens (
    token_hash BYTEA       PRIMARY KEY,
    session_id UUID        NOT NULL REFERENCES sessions (id),
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    -- Set when it was exchanged for the next one; seeing it again is reuse.
    rotated_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- Access tokens signed out before their expiry (the deny cache is rebuilt
-- from here when Redis loses it).
CREATE TABLE revoked_access_tokens (
    jti        UUID        PRIMARY KEY,
    user_id    UUID        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Who banned or unbanned whom, when and why.
CREATE TABLE ban_audit (
    id          UUID        PRIMARY KEY,
    user_id     UUID        NOT NULL REFERENCES users (id),
    action      TEXT        NOT NULL CHECK (action IN ('ban', 'unban')),
    admin_id    UUID        NOT NULL,
    admin_email TEXT        NOT NULL,
    reason      TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ban_audit_by_user ON ban_audit (user_id, at);
