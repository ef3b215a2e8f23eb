-- Identities at sign-in providers live in auth_providers (provider = 'google', 'github', or a
-- configured OpenID provider's name; provider_user_id = the provider's subject).

-- A link between a user and a provider identity waiting to be completed (behavior.md §7, §12):
-- `authenticated_link` (a signed-in user linking from the account page, bound to the session)
-- or `account_recovery_link` (a provider identity whose email belongs to an existing account,
-- completed when the owner proves it with their password or an already-linked identity).
CREATE TABLE pending_provider_links (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id BLOB REFERENCES sessions (id) ON DELETE CASCADE,
    challenge_id BLOB REFERENCES challenges (id) ON DELETE SET NULL,
    provider TEXT NOT NULL,
    provider_user_id TEXT,
    provider_email TEXT,
    provider_email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    purpose TEXT NOT NULL CHECK (purpose IN ('authenticated_link', 'account_recovery_link')),
    return_to TEXT,
    expires_at_ms BIGINT NOT NULL,
    consumed_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX pending_provider_links_by_user ON pending_provider_links (user_id);

-- Authorization-code flows in progress, keyed by the SHA-256 of their `state`, so that any
-- instance can finish a flow another one started. Taken (deleted) once by the callback.
CREATE TABLE oauth_flows (
    state_hash BLOB PRIMARY KEY,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('login', 'link')),
    user_id BLOB REFERENCES users (id) ON DELETE CASCADE,
    session_id BLOB REFERENCES sessions (id) ON DELETE CASCADE,
    return_to TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX oauth_flows_by_expiry ON oauth_flows (expires_at_ms);
