-- Each membership carries a copy of its member's email, username and disabled time, so that an
-- organization's member list is one range of one index instead of a key lookup into users per
-- member (at a million users, 10,000 of them made the whole list 60-120 ms).
-- Triggers keep the copy current: whatever changes a user's row (the account page, an email
-- change, the admin console, an operator's SQL) changes the copies in the same transaction, and
-- a membership inserted without the copy gets it from users. Bulk inserts (`authara import`)
-- write the copy themselves and skip that trigger. The functions reach the other table in the
-- schema of the table that fired them (TG_TABLE_SCHEMA), not through the search_path: an
-- operator's session on another search_path still keeps the copies, and a schema renamed by
-- `authara restore` needs no change.
ALTER TABLE organization_memberships
    ADD COLUMN member_email TEXT NOT NULL DEFAULT '',
    ADD COLUMN member_username TEXT NOT NULL DEFAULT '',
    ADD COLUMN member_disabled_at_ms BIGINT;

-- The old index goes first: the backfill below would otherwise update it for every row.
DROP INDEX organization_memberships_by_org_time;

UPDATE organization_memberships m
SET member_email = u.email, member_username = u.username, member_disabled_at_ms = u.disabled_at_ms
FROM users u WHERE u.id = m.user_id;

CREATE FUNCTION organization_memberships_copy_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT email, username, disabled_at_ms FROM %I.users WHERE id = $1', TG_TABLE_SCHEMA)
    INTO NEW.member_email, NEW.member_username, NEW.member_disabled_at_ms USING NEW.user_id;
    -- No such user: leave the row as it was, for the foreign key to refuse.
    NEW.member_email := coalesce(NEW.member_email, '');
    NEW.member_username := coalesce(NEW.member_username, '');
    RETURN NEW;
END
$$;
CREATE TRIGGER organization_memberships_copy_member BEFORE INSERT ON organization_memberships
FOR EACH ROW WHEN (NEW.member_email = '') EXECUTE FUNCTION organization_memberships_copy_member();

CREATE FUNCTION users_copy_to_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.organization_memberships SET member_email = $1, member_username = $2, '
        'member_disabled_at_ms = $3 WHERE user_id = $4', TG_TABLE_SCHEMA)
    USING NEW.email, NEW.username, NEW.disabled_at_ms, NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_copy_to_memberships AFTER UPDATE OF email, username, disabled_at_ms ON users
FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.username IS DISTINCT FROM NEW.username
    OR OLD.disabled_at_ms IS DISTINCT FROM NEW.disabled_at_ms)
EXECUTE FUNCTION users_copy_to_memberships();

-- The list's order, then everything it shows: an index-only scan where the visibility map allows.
CREATE INDEX organization_memberships_by_org_time ON organization_memberships (organization_id, created_at_ms, user_id)
    INCLUDE (role, updated_at_ms, member_email, member_username, member_disabled_at_ms);
