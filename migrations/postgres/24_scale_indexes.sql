-- Indexes for a million users (bench/scale): the admin console's newest-first user list and its
-- username prefix search, the audit log filtered by action, and the retention deletes of the
-- email outbox and the webhook deliveries (each cleanup batch finds its rows through an index
-- instead of scanning the table).
CREATE INDEX users_by_created ON users (created_at_ms, id);
-- Prefix search compares bytes (`~>=~`, `~<~`) whatever the database's collation.
CREATE INDEX users_by_email_prefix ON users (email text_pattern_ops);
CREATE INDEX users_by_username ON users (username_normalized text_pattern_ops);
CREATE INDEX audit_events_by_action ON audit_events (action, created_at_ms);
CREATE INDEX email_jobs_by_status_time ON email_jobs (status, updated_at_ms);
CREATE INDEX email_jobs_by_sent ON email_jobs (sent_at_ms) WHERE status = 'sent';
CREATE INDEX webhook_deliveries_by_status_time ON webhook_deliveries (status, updated_at_ms);
CREATE INDEX pending_provider_links_by_expiry ON pending_provider_links (expires_at_ms);
-- Deleting an event, a challenge or a session cascades to the rows that reference it: without
-- an index on the referencing column every deleted row costs a scan of the referencing table.
CREATE INDEX email_jobs_by_event ON email_jobs (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX email_jobs_by_challenge ON email_jobs (challenge_id) WHERE challenge_id IS NOT NULL;
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
CREATE INDEX oauth_flows_by_session ON oauth_flows (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX pending_provider_links_by_session ON pending_provider_links (session_id) WHERE session_id IS NOT NULL;
-- The audit log pages newest first with the sequence as tie-breaker: with both in the index a
-- page (and the rows skipped before it) come in order, no sort.
DROP INDEX audit_events_by_time;
CREATE INDEX audit_events_by_time ON audit_events (created_at_ms, seq);
-- An organization's members, oldest membership first, straight from the index.
CREATE INDEX organization_memberships_by_org_time ON organization_memberships (organization_id, created_at_ms, user_id);
