//! Seeds a migrated database with `n` users and their companions, in bulk, inside the database
//! (`INSERT … SELECT` over a numbers table): no row crosses the wire, so 1M users take minutes.
//!
//! What a user has (see `bench/README.md`, "Scale"): a password (one argon2id hash shared by
//! every user, of the bench password), a personal organization, 1.5 sessions with a live
//! refresh token each, 10 audit rows, 3 events (one with a webhook delivery), one email job;
//! every 10th user a day of 10-minute refreshes (144 consumed tokens); 1 % passkeys, 5 % Google
//! identities, 1 % disabled. Plus 10,000 team organizations (the first with 10,000 members,
//! the others sharing the rest) with two invitations each. Rows are within their retention (an
//! instance whose cleanup keeps up), but for 1 % of expired challenges, passkey ceremonies and
//! provider flows; [`backlog`] ages a large share later, for the cleanup's measurement.

use std::time::Instant;

use anyhow::Context as _;
use sqlx::Connection as _;

pub const DAY_MS: i64 = 86_400_000;
/// The team organizations, and the members of the first one.
pub const TEAM_ORGS: i64 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The statements, in order, with `{ID}` (a new random id), `{H32}` (32 random bytes), `{N}`,
/// `{NOW}`, `{HASH}`, `{DAY}`, and `{MEMBER}` / `{COPY}` (a membership's copy of its member's
/// account: the columns, and their values from `seed_users u`) to fill in.
const STATEMENTS: &[(&str, &str)] = &[
    (
        "organization mode",
        "INSERT INTO organization_mode (id, mode, created_at_ms) VALUES (1, 'multi', {NOW}) ON CONFLICT DO NOTHING",
    ),
    (
        "users",
        "INSERT INTO users (id, email, username, username_normalized, created_at_ms, updated_at_ms, disabled_at_ms, \
         email_verified_at_ms, password_changed_at_ms) \
         SELECT id, 'u' || i || '@scale.test', 'u' || i, 'u' || i, created, created, \
         CASE WHEN i % 100 = 99 THEN created + {DAY} ELSE NULL END, created, created FROM seed_users",
    ),
    (
        "admin",
        "INSERT INTO user_platform_roles (user_id, role, created_at_ms) SELECT id, 'admin', {NOW} FROM seed_users WHERE i = 0",
    ),
    (
        "passwords",
        "INSERT INTO auth_providers (id, user_id, provider, provider_user_id, password_hash, created_at_ms, updated_at_ms) \
         SELECT {ID}, id, 'password', NULL, '{HASH}', created, created FROM seed_users",
    ),
    (
        "identities",
        "INSERT INTO auth_providers (id, user_id, provider, provider_user_id, password_hash, created_at_ms, updated_at_ms) \
         SELECT {ID}, id, 'google', 'g-' || i, NULL, created, created FROM seed_users WHERE i % 20 = 1",
    ),
    (
        "personal organizations",
        "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at_ms, updated_at_ms) \
         SELECT org, 'u' || i, 'personal', id, created, created FROM seed_users",
    ),
    (
        "personal memberships",
        "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, updated_at_ms, {MEMBER}) \
         SELECT org, id, 'owner', created, created, {COPY} FROM seed_users u",
    ),
    (
        "team organizations",
        "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at_ms, updated_at_ms) \
         SELECT o.id, 'Team ' || o.j, 'team', u.id, u.created, u.created FROM seed_orgs o JOIN seed_users u ON u.i = o.j * ({N} / {TEAMS})",
    ),
    (
        "team memberships",
        "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, updated_at_ms, {MEMBER}) \
         SELECT o.id, u.id, CASE WHEN u.i = o.j * ({N} / {TEAMS}) THEN 'owner' ELSE 'member' END, u.created, u.created, \
         {COPY} \
         FROM seed_users u JOIN seed_orgs o ON o.j = CASE WHEN u.i < {TEAMS} THEN 0 ELSE u.i % {TEAMS} END \
         WHERE o.j > 0 OR u.i < {TEAMS}",
    ),
    (
        "team owners",
        "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, updated_at_ms, {MEMBER}) \
         SELECT o.id, u.id, 'owner', u.created, u.created, {COPY} \
         FROM seed_orgs o JOIN seed_users u ON u.i = o.j * ({N} / {TEAMS}) \
         WHERE NOT EXISTS (SELECT 1 FROM organization_memberships m WHERE m.organization_id = o.id AND m.user_id = u.id)",
    ),
    (
        "invitations",
        "INSERT INTO organization_invitations (id, organization_id, email, role, token_hash, invited_by, metadata, \
         expires_at_ms, created_at_ms, updated_at_ms) \
         SELECT {ID}, o.id, 'inv' || o.j || '-' || k.k || '@scale.test', 'member', {H32}, NULL, '{}', \
         {NOW} + (1 - 2 * k.k) * 3 * {DAY}, {NOW} - 4 * {DAY}, {NOW} - 4 * {DAY} FROM seed_orgs o JOIN seed_n k ON k.k < 2",
    ),
    (
        "sessions",
        "INSERT INTO sessions (id, user_id, active_organization_id, user_agent, ip, created_at_ms, last_used_at_ms, \
         expires_at_ms, revoked_at_ms, amr, auth_time_ms) \
         SELECT sid, id, org, 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', \
         '203.0.113.' || (i % 250), {NOW} - (i % 7) * {DAY}, {NOW} - (i % 7) * {DAY}, \
         {NOW} + 50 * {DAY}, NULL, 'pwd', {NOW} - (i % 7) * {DAY} \
         FROM seed_users",
    ),
    (
        "second sessions",
        "INSERT INTO sessions (id, user_id, active_organization_id, user_agent, ip, created_at_ms, last_used_at_ms, \
         expires_at_ms, revoked_at_ms, amr, auth_time_ms) \
         SELECT {ID}, id, org, 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148 Safari/604.1', \
         '198.51.100.' || (i % 250), {NOW} - 2 * {DAY}, {NOW} - {DAY}, {NOW} + 55 * {DAY}, NULL, 'pwd', {NOW} - 2 * {DAY} \
         FROM seed_users WHERE i % 2 = 0",
    ),
    (
        "refresh tokens",
        "INSERT INTO refresh_tokens (id, session_id, organization_id, token_hash, created_at_ms, expires_at_ms, consumed_at_ms) \
         SELECT {ID}, id, active_organization_id, {H32}, last_used_at_ms, {NOW} + 14 * {DAY}, NULL FROM sessions",
    ),
    (
        "consumed refresh tokens",
        "INSERT INTO refresh_tokens (id, session_id, organization_id, token_hash, created_at_ms, expires_at_ms, consumed_at_ms) \
         SELECT {ID}, u.sid, u.org, {H32}, {NOW} - {DAY} + k.k * 600000, {NOW} + 13 * {DAY} + k.k * 600000, \
         {NOW} - {DAY} + (k.k + 1) * 600000 FROM seed_users u JOIN seed_n k ON k.k < 144 WHERE u.i % 10 = 0",
    ),
    (
        "audit rows",
        "INSERT INTO audit_events (id, actor_user_id, actor, action, target_user_id, target_email, metadata, ip, \
         user_agent, created_at_ms) \
         SELECT {ID}, u.id, 'user', CASE k.k WHEN 0 THEN 'user.password_changed' WHEN 1 THEN 'user.email_verified' \
         ELSE 'user.login' END, u.id, 'u' || u.i || '@scale.test', '{\"method\":\"password\"}', '203.0.113.' || (u.i % 250), \
         'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0', \
         {NOW} - ((u.i * 10 + k.k) % 170) * {DAY} - u.i % 86400000 \
         FROM seed_users u JOIN seed_n k ON k.k < 10",
    ),
    (
        "events",
        "INSERT INTO events (id, type, aggregate_type, aggregate_id, data, created_at_ms) \
         SELECT {ID}, CASE k.k WHEN 0 THEN 'user.created' WHEN 1 THEN 'user.updated' ELSE 'user.signed_in' END, 'user', u.id, \
         '{\"email\":\"u' || u.i || '@scale.test\"}', {NOW} - ((u.i * 3 + k.k) % 85) * {DAY} \
         FROM seed_users u JOIN seed_n k ON k.k < 3",
    ),
    (
        "webhook deliveries",
        "INSERT INTO webhook_deliveries (id, event_id, event_seq, event_type, aggregate_id, payload, status, attempt_count, \
         next_attempt_at_ms, last_error, response_status, latency_ms, delivered_at_ms, created_at_ms, updated_at_ms) \
         SELECT {ID}, e.id, e.seq, e.type, e.aggregate_id, e.data, \
         CASE WHEN e.seq % 100 = 7 THEN 'failed' ELSE 'delivered' END, 1, e.created_at_ms, \
         CASE WHEN e.seq % 100 = 7 THEN 'HTTP 500' ELSE NULL END, CASE WHEN e.seq % 100 = 7 THEN 500 ELSE 200 END, 12, \
         CASE WHEN e.seq % 100 = 7 THEN NULL ELSE e.created_at_ms END, e.created_at_ms, e.created_at_ms \
         FROM events e WHERE e.type = 'user.created'",
    ),
    (
        "email jobs",
        "INSERT INTO email_jobs (id, to_email, template, template_data, status, attempt_count, next_attempt_at_ms, \
         last_error, sent_at_ms, created_at_ms, updated_at_ms) \
         SELECT {ID}, 'u' || i || '@scale.test', 'verify_email', '{}', CASE WHEN i % 100 = 42 THEN 'failed' ELSE 'sent' END, \
         1, {NOW} - (i % 28) * {DAY}, CASE WHEN i % 100 = 42 THEN 'SMTP 550' ELSE NULL END, \
         CASE WHEN i % 100 = 42 THEN NULL ELSE {NOW} - (i % 28) * {DAY} END, {NOW} - (i % 28) * {DAY}, {NOW} - (i % 28) * {DAY} \
         FROM seed_users",
    ),
    (
        "passkeys",
        "INSERT INTO passkeys (id, user_id, credential_id, credential, name, attestation_format, created_at_ms, updated_at_ms) \
         SELECT {ID}, id, {H32}, '{}', 'Passkey', 'none', created, created FROM seed_users WHERE i % 100 = 5",
    ),
    (
        "expired challenges",
        "INSERT INTO challenges (id, purpose, email, user_id, opaque, created_at_ms, expires_at_ms, max_attempts, max_resends) \
         SELECT {ID}, 'password_reset', 'u' || i || '@scale.test', id, FALSE, {NOW} - 2 * {DAY}, {NOW} - {DAY}, 5, 3 \
         FROM seed_users WHERE i % 100 = 11",
    ),
    (
        "expired passkey ceremonies",
        "INSERT INTO webauthn_challenges (id, user_id, purpose, session_data, created_at_ms, expires_at_ms) \
         SELECT {ID}, id, 'authentication', '{}', {NOW} - {DAY}, {NOW} - {DAY} + 300000 FROM seed_users WHERE i % 100 = 13",
    ),
    (
        "expired provider flows",
        "INSERT INTO oauth_flows (state_hash, provider, nonce, pkce_verifier, purpose, return_to, expires_at_ms, created_at_ms) \
         SELECT {H32}, 'google', 'n', 'v', 'login', '/', {NOW} - {DAY}, {NOW} - {DAY} - 600000 FROM seed_users WHERE i % 100 = 17",
    ),
];

/// A membership's copy of its member's account (migration 25), for `seed_users u`: as the
/// "users" statement writes them, so that the trigger filling a missing copy stays idle.
const MEMBER_COPY: &str =
    "'u' || u.i || '@scale.test', 'u' || u.i, CASE WHEN u.i % 100 = 99 THEN u.created + {DAY} ELSE NULL END";

fn fill(engine: Engine, sql: &str, n: i64, now: i64, hash: &str) -> String {
    let (id, h32) = match engine {
        Engine::Sqlite => ("randomblob(16)", "randomblob(32)"),
        Engine::Postgres => ("gen_random_uuid()", "(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))"),
    };
    sql.replace("{MEMBER}", "member_email, member_username, member_disabled_at_ms")
        .replace("{COPY}", MEMBER_COPY)
        .replace("{ID}", id)
        .replace("{H32}", h32)
        .replace("{N}", &n.to_string())
        .replace("{TEAMS}", &TEAM_ORGS.to_string())
        .replace("{NOW}", &now.to_string())
        .replace("{DAY}", &format!("CAST({DAY_MS} AS BIGINT)"))
        .replace("{HASH}", hash)
}

/// The numbers tables: `seed_users` (i, id, org, sid, created), `seed_orgs` (j, id), `seed_n` (k).
fn numbers(engine: Engine, n: i64, now: i64) -> Vec<String> {
    // Sign-ups spread over the past year, the newest last.
    let created = format!("{} + i * {}", now - 365 * DAY_MS, 365 * DAY_MS / n);
    match engine {
        Engine::Sqlite => vec![
            "CREATE TEMP TABLE seed_n (k INTEGER PRIMARY KEY)".into(),
            "WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < 199) INSERT INTO seed_n SELECT k FROM s"
                .into(),
            "CREATE TEMP TABLE seed_users (i INTEGER PRIMARY KEY, id BLOB, org BLOB, sid BLOB, created BIGINT)".into(),
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n} - 1) \
                 INSERT INTO seed_users SELECT i, randomblob(16), randomblob(16), randomblob(16), {created} FROM s"
            ),
            "CREATE TEMP TABLE seed_orgs (j INTEGER PRIMARY KEY, id BLOB)".into(),
            format!(
                "WITH RECURSIVE s(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM s WHERE j < {TEAM_ORGS} - 1) \
                 INSERT INTO seed_orgs SELECT j, randomblob(16) FROM s"
            ),
        ],
        Engine::Postgres => vec![
            "CREATE TEMP TABLE seed_n AS SELECT k::bigint AS k FROM generate_series(0, 199) k".into(),
            format!(
                "CREATE TEMP TABLE seed_users AS SELECT i, gen_random_uuid() AS id, gen_random_uuid() AS org, \
                 gen_random_uuid() AS sid, {created} AS created FROM generate_series(0::bigint, {n} - 1) i"
            ),
            "ALTER TABLE seed_users ADD PRIMARY KEY (i)".into(),
            format!(
                "CREATE TEMP TABLE seed_orgs AS SELECT j::bigint AS j, gen_random_uuid() AS id \
                 FROM generate_series(0, {TEAM_ORGS} - 1) j"
            ),
            "ALTER TABLE seed_orgs ADD PRIMARY KEY (j)".into(),
            "ANALYZE seed_users".into(),
            "ANALYZE seed_orgs".into(),
        ],
    }
}

/// Where a seeded database is.
pub enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// Seeds `n` users (at least [`TEAM_ORGS`]); prints each step's time. `hash` is the PHC string
/// every user's password is stored as. Returns the seeding time.
pub async fn seed(db: &Db, n: i64, now: i64, hash: &str) -> anyhow::Result<std::time::Duration> {
    anyhow::ensure!(n >= TEAM_ORGS, "at least {TEAM_ORGS} users (the big organization has that many members)");
    let started = Instant::now();
    match db {
        Db::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            // Bulk load: no journal, no fsync, a large page cache; the server sets WAL back on open.
            for p in ["PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -1048576"] {
                sqlx::query(p).execute(&mut c).await?;
            }
            let indexes: Vec<(String, String)> =
                sqlx::query_as("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
                    .fetch_all(&mut c)
                    .await?;
            for (name, _) in &indexes {
                sqlx::query(&format!("DROP INDEX {name}")).execute(&mut c).await?;
            }
            let mut tx = c.begin().await?;
            for s in numbers(Engine::Sqlite, n, now) {
                sqlx::query(&s).execute(&mut *tx).await.with_context(|| s.clone())?;
            }
            for (what, sql) in STATEMENTS {
                let t = Instant::now();
                let sql = fill(Engine::Sqlite, sql, n, now, hash);
                let rows = sqlx::query(&sql).execute(&mut *tx).await.with_context(|| what.to_string())?.rows_affected();
                eprintln!("  {what}: {rows} rows in {:.1} s", t.elapsed().as_secs_f64());
            }
            tx.commit().await?;
            let t = Instant::now();
            for (_, sql) in &indexes {
                sqlx::query(sql).execute(&mut c).await?;
            }
            eprintln!("  {} indexes built in {:.1} s", indexes.len(), t.elapsed().as_secs_f64());
            sqlx::query("ANALYZE").execute(&mut c).await?;
            sqlx::query("PRAGMA journal_mode = WAL").execute(&mut c).await?;
            c.close().await?;
            // The load on disk before anything is measured (as PostgreSQL's checkpoint below):
            // the kernel writing gigabytes back is not what the first workloads should meet.
            std::fs::File::open(path)?.sync_all()?;
        }
        Db::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query("SET synchronous_commit = off").execute(&mut c).await?;
            sqlx::query("SET maintenance_work_mem = '1GB'").execute(&mut c).await?;
            // Indexes that no constraint owns are built after the load (sorted, in one pass)
            // rather than maintained row by row.
            let indexes: Vec<(String, String)> = sqlx::query_as(
                "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            )
            .fetch_all(&mut c)
            .await?;
            for (name, _) in &indexes {
                sqlx::query(&format!("DROP INDEX {name}")).execute(&mut c).await?;
            }
            for s in numbers(Engine::Postgres, n, now) {
                sqlx::query(&s).execute(&mut c).await.with_context(|| s.clone())?;
            }
            for (what, sql) in STATEMENTS {
                let t = Instant::now();
                let sql = fill(Engine::Postgres, sql, n, now, hash);
                let rows = sqlx::query(&sql).execute(&mut c).await.with_context(|| what.to_string())?.rows_affected();
                eprintln!("  {what}: {rows} rows in {:.1} s", t.elapsed().as_secs_f64());
            }
            let t = Instant::now();
            for (_, sql) in &indexes {
                sqlx::query(sql).execute(&mut c).await?;
            }
            eprintln!("  {} indexes built in {:.1} s", indexes.len(), t.elapsed().as_secs_f64());
            // As autovacuum would after such a load; then a checkpoint, so that writing the load
            // out is not what the first measurements compete with.
            sqlx::query("VACUUM ANALYZE").execute(&mut c).await?;
            sqlx::query("CHECKPOINT").execute(&mut c).await?;
            c.close().await?;
        }
    }
    Ok(started.elapsed())
}

/// Ages rows past their retention, as a cleanup that has not run for a while finds them (about a
/// third of a row per user): 0.6 % of the sessions expire with all their refresh tokens
/// (consumed ones included), and 1 % of the audit rows, 1 % of the events and 1 % of the sent
/// emails pass their retention. Returns the rows changed.
pub async fn backlog(db: &Db, seed_now: i64, now: i64) -> anyhow::Result<u64> {
    let past = now - 1000;
    let statements = [
        format!(
            "UPDATE sessions SET expires_at_ms = {past} WHERE created_at_ms = {} AND ip LIKE '203.0.113.1_'",
            seed_now - 3 * DAY_MS
        ),
        format!(
            "UPDATE refresh_tokens SET expires_at_ms = {past} WHERE session_id IN (SELECT id FROM sessions WHERE expires_at_ms = {past})"
        ),
        format!("UPDATE audit_events SET created_at_ms = {} WHERE seq % 100 = 0", now - 200 * DAY_MS),
        format!(
            "UPDATE events SET created_at_ms = {} WHERE seq % 100 = 1 AND type <> 'user.created'",
            now - 100 * DAY_MS
        ),
        format!(
            "UPDATE email_jobs SET sent_at_ms = {0}, updated_at_ms = {0} WHERE status = 'sent' AND created_at_ms = {1} \
             AND to_email LIKE '%3@scale.test'",
            now - 40 * DAY_MS,
            seed_now - 5 * DAY_MS
        ),
    ];
    let mut rows = 0;
    match db {
        Db::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            sqlx::query("PRAGMA busy_timeout = 60000").execute(&mut c).await?;
            for s in &statements {
                rows += sqlx::query(s).execute(&mut c).await.with_context(|| s.clone())?.rows_affected();
            }
            c.close().await?;
        }
        Db::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            for s in &statements {
                rows += sqlx::query(s).execute(&mut c).await.with_context(|| s.clone())?.rows_affected();
            }
            sqlx::query("ANALYZE").execute(&mut c).await?;
            c.close().await?;
        }
    }
    Ok(rows)
}
