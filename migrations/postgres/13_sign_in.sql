-- The sign-in pipeline's state (services/signin.rs and the takeover paths it closes).

-- When the password was last set by its owner (not by a rehash): device cookies issued before
-- it no longer vouch for their browser.
ALTER TABLE users ADD COLUMN password_changed_at_ms BIGINT NOT NULL DEFAULT 0;

-- A pending link is bound to the browser that made it: the SHA-256 of a random value kept in
-- that browser's `authara_link` cookie. Links without one (made before this version) can no
-- longer be confirmed and simply expire.
ALTER TABLE pending_provider_links ADD COLUMN binding_hash BYTEA;

-- A verified provider identity waiting, on the invitation's signup page, for its owner to
-- create the account and join (a provider round trip never accepts an invitation by itself).
-- Bound to the browser like the links above.
CREATE TABLE pending_provider_signups (
    id UUID PRIMARY KEY,
    invitation_id UUID NOT NULL REFERENCES organization_invitations (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    provider_email TEXT NOT NULL,
    binding_hash BYTEA NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    consumed_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX pending_provider_signups_by_expiry ON pending_provider_signups (expires_at_ms);

-- Google ID tokens already used to sign in, until they expire: a token is good for one
-- sign-in, on every instance.
CREATE TABLE spent_id_tokens (
    token_hash BYTEA PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX spent_id_tokens_by_expiry ON spent_id_tokens (expires_at_ms);
