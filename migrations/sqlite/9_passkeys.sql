-- Passkeys (WebAuthn credentials) and the state of WebAuthn ceremonies in progress.
-- `credential` is the verified credential record of the WebAuthn library (JSON: public key,
-- algorithm, counter, flags, attestation); the other columns are what pages and queries need.
CREATE TABLE passkeys (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    credential TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT 'Passkey',
    aaguid BLOB,
    attestation_format TEXT NOT NULL,
    transports TEXT NOT NULL DEFAULT '[]',
    sign_count BIGINT NOT NULL DEFAULT 0,
    clone_warning BOOLEAN NOT NULL DEFAULT FALSE,
    user_present BOOLEAN NOT NULL DEFAULT TRUE,
    user_verified BOOLEAN NOT NULL DEFAULT FALSE,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at_ms);

-- One row per ceremony (5 minutes): `registration` belongs to a user, `authentication` to
-- nobody yet (discoverable login). Consumed in the transaction that finishes the ceremony.
CREATE TABLE webauthn_challenges (
    id BLOB PRIMARY KEY,
    user_id BLOB REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('registration', 'authentication')),
    session_data TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    consumed_at_ms BIGINT
);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at_ms);
