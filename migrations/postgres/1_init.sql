-- The organization mode, pinned at first boot (behavior.md §0.1 step 4).
CREATE TABLE organization_mode (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mode TEXT NOT NULL CHECK (mode IN ('personal', 'single', 'multi')),
    created_at_ms BIGINT NOT NULL
);
