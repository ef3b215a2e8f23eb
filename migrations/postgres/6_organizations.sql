-- Organization invitations (behavior.md §9.3). Version 5 is reserved for the webhooks work.
-- The raw token is never stored: `token_hash` is its SHA-256. The status is computed at read
-- time (accepted > revoked > expired > pending). `email` is normalized (trimmed, lowercased) by
-- the application, so the partial unique index allows one active invitation per address and
-- organization.
CREATE TABLE organization_invitations (
    id UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email TEXT NOT NULL CHECK (trim(email) <> ''),
    role TEXT NOT NULL CHECK (role IN ('member', 'admin')),
    token_hash BYTEA NOT NULL UNIQUE,
    invited_by UUID REFERENCES users (id) ON DELETE SET NULL,
    accepted_by UUID REFERENCES users (id) ON DELETE SET NULL,
    revoked_by UUID REFERENCES users (id) ON DELETE SET NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    expires_at_ms BIGINT NOT NULL,
    accepted_at_ms BIGINT,
    revoked_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    CHECK (accepted_at_ms IS NULL OR revoked_at_ms IS NULL)
);
CREATE UNIQUE INDEX organization_invitations_one_active ON organization_invitations (organization_id, email)
    WHERE accepted_at_ms IS NULL AND revoked_at_ms IS NULL;
CREATE INDEX organization_invitations_by_org ON organization_invitations (organization_id, created_at_ms);

-- A signup challenge started with an invitation code accepts that invitation when verified.
ALTER TABLE challenges ADD COLUMN invitation_id UUID REFERENCES organization_invitations (id) ON DELETE CASCADE;
