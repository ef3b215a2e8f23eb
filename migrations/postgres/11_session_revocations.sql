-- Each instance with the Redis provider reads the sessions revoked within one access-token
-- lifetime whenever its subscriber (re)connects: an index over revoked sessions only, so that
-- read does not scan every session.
CREATE INDEX sessions_by_revocation ON sessions (revoked_at_ms) WHERE revoked_at_ms IS NOT NULL;
