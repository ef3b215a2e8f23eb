-- Users brought in by `authara import`: each run is a batch, and the users and organizations it
-- added carry its id, so that `authara import --undo BATCH` removes exactly those.
-- `completed_at_ms` stays null while the batch is being written (chunk by chunk).
CREATE TABLE import_batches (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    users BIGINT NOT NULL DEFAULT 0,
    organizations BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    completed_at_ms BIGINT
);
ALTER TABLE users ADD COLUMN import_batch TEXT REFERENCES import_batches (id);
ALTER TABLE organizations ADD COLUMN import_batch TEXT REFERENCES import_batches (id);
CREATE INDEX users_by_import_batch ON users (import_batch) WHERE import_batch IS NOT NULL;
CREATE INDEX organizations_by_import_batch ON organizations (import_batch) WHERE import_batch IS NOT NULL;
