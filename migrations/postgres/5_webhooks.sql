-- Webhook deliveries: one row per (event, endpoint), written with the event in the change's own
-- transaction, so a rolled-back change never produces one and a committed change always does.
-- The row id is the delivery id (X-Authara-Delivery, and the envelope's id): it stays the same
-- across retries. `payload` holds the exact bytes sent and signed. `event_seq` orders the
-- deliveries of one aggregate (user, organization).
CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY,
    event_id UUID NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    aggregate_id UUID NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'delivered', 'failed')),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT NOT NULL,
    processing_started_at_ms BIGINT,
    last_error TEXT,
    response_status INTEGER,
    latency_ms BIGINT,
    delivered_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at_ms);
CREATE INDEX webhook_deliveries_by_aggregate ON webhook_deliveries (aggregate_id, event_seq);
