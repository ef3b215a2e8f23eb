-- Domain events: one row per change that applications, admins or auditors care about, written in
-- the same transaction as the change. Consumers (the email worker now; webhooks and the audit log
-- later) read them; an email job points at the event it renders.
-- `seq` orders events as they were written (one transaction's events share a time).
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    type TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id BLOB NOT NULL,
    data TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX events_by_time ON events (created_at_ms);
CREATE INDEX events_by_aggregate ON events (aggregate_type, aggregate_id, created_at_ms);

ALTER TABLE email_jobs ADD COLUMN event_id BLOB REFERENCES events (id) ON DELETE CASCADE;
