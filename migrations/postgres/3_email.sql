-- Email verification challenges and the email outbox.

-- One row per challenge, with its pending action inline: the password hash of a pending signup
-- or reset, the user of a reset or email change. Opaque challenges (unknown or taken emails)
-- can never be verified and send nothing. The code is made when the email is sent and stored
-- only as an HMAC.
CREATE TABLE challenges (
    id UUID PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('signup', 'password_reset', 'email_change')),
    email TEXT NOT NULL,
    user_id UUID REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT,
    opaque BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    consumed_at_ms BIGINT,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    resend_count INTEGER NOT NULL DEFAULT 0,
    max_resends INTEGER NOT NULL,
    last_sent_at_ms BIGINT,
    code_hash BYTEA,
    code_expires_at_ms BIGINT
);
CREATE INDEX challenges_by_expiry ON challenges (expires_at_ms);

CREATE TABLE email_jobs (
    id UUID PRIMARY KEY,
    challenge_id UUID REFERENCES challenges (id) ON DELETE CASCADE,
    to_email TEXT NOT NULL,
    template TEXT NOT NULL,
    template_data TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    processing_started_at_ms BIGINT,
    last_error TEXT,
    sent_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX email_jobs_due ON email_jobs (status, next_attempt_at_ms);
