-- Two-step verification (services/mfa.rs).

-- A user's authenticator-app factor: the secret sealed under a server key (never in plain
-- text), unconfirmed until the user types a current code; the last accepted time step (each
-- step is accepted once: a compare-and-set in the transaction that completes the sign-in);
-- consecutive failures, and the lock after too many.
CREATE TABLE mfa_totp (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    confirmed_at_ms BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Recovery codes: the first group of each code (`lookup`) picks the row, the rest is checked
-- against a salted SHA-256 of it (one hash per attempt, never ten). Each is used once.
CREATE TABLE mfa_recovery_codes (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lookup TEXT NOT NULL,
    code_hash BYTEA NOT NULL,
    used_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, lookup)
);

-- A sign-in whose first factor checked out, waiting for the second (or, under a policy, for the
-- enrolment): bound to the browser that passed the first factor, five minutes, used once. What
-- the completion needs afterwards is kept with it.
CREATE TABLE mfa_challenges (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    binding_hash BYTEA NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'enroll')),
    audience TEXT NOT NULL,
    organization_id UUID,
    method TEXT NOT NULL,
    amr TEXT NOT NULL,
    detail TEXT NOT NULL,
    password_login BOOLEAN NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    consumed_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at_ms);

-- What a session's sign-in proved (RFC 8176 `amr`, space-separated), when, and when a second
-- factor was last used in it (step-up): tokens minted on refresh carry the same.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN mfa_at_ms BIGINT;
