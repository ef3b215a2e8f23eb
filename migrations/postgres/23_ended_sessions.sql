-- Sessions deleted with their organization or their user leave their id here, so that the
-- revocation feed (read by every instance every second) carries them like revoked sessions;
-- kept as long as revoked sessions are (the cleanup job).
CREATE TABLE ended_sessions (
    id UUID PRIMARY KEY,
    ended_at_ms BIGINT NOT NULL
);
CREATE INDEX ended_sessions_by_time ON ended_sessions (ended_at_ms);
