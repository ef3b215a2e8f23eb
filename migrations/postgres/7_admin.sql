-- The audit log: who did what to whom, written in the same transaction as the action. Admin
-- actions and security-relevant user events (sign-ins, failures, password and email changes,
-- revoked sessions, detected token reuse). `actor_user_id` is null for the command line and
-- for anonymous actors (failed sign-ins); `metadata` is sanitized JSON.
CREATE TABLE audit_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    actor_user_id UUID REFERENCES users (id) ON DELETE SET NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_user_id UUID REFERENCES users (id) ON DELETE SET NULL,
    target_email TEXT,
    metadata TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (created_at_ms);
CREATE INDEX audit_events_by_target ON audit_events (target_user_id, created_at_ms);
CREATE INDEX audit_events_by_actor ON audit_events (actor_user_id, created_at_ms);

-- The sign-up allowlist (AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED): normalized emails.
CREATE TABLE allowed_emails (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    created_by_user_id UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at_ms BIGINT NOT NULL
);
