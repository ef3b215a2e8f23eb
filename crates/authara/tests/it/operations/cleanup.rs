//! The cleanup deletes in batches sized to take about 10 ms each: a backlog of many batches goes
//! entirely, what is still within its retention stays, and `authara cleanup` runs every cleanup
//! once from the shell. On SQLite, a large backlog leaves the write-ahead log short.

use std::time::Duration;

use authara::domain::{ActorKind, AuditAction, EmailAddress, OrgId, OrgKind, OrgRole, SessionId, UserId};
use authara::store::accounts::{NewOrg, NewUser};
use authara::store::audit::NewAudit;
use authara::store::refresh::NewRefresh;
use authara::store::sessions::NewSession;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines, run_cli};

const DAY_MS: i64 = 86_400_000;

/// `n` audit rows at `at`, in one transaction.
async fn audit_rows(app: &TestApp, n: usize, at: i64) {
    let mut tx = app.store.begin().await.unwrap();
    for _ in 0..n {
        tx.insert_audit(&NewAudit {
            actor_user_id: None,
            actor: ActorKind::System,
            action: AuditAction::Login,
            target_user_id: None,
            target_email: Some("old@example.com"),
            metadata: "{}",
            ip: None,
            user_agent: None,
            now_ms: at,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn audit_count(app: &TestApp) -> usize {
    let admin = app.services.admin();
    let mut n = 0;
    for page in 1.. {
        let rows = admin.audit(&admin.cli(), &Default::default(), page).await.unwrap().len();
        n += rows;
        if rows == 0 {
            return n;
        }
    }
    n
}

async fn a_backlog_larger_than_a_batch_goes_and_the_rest_stays(engine: Engine) {
    let app = TestApp::start(engine).await;
    let now = app.clock_now();
    audit_rows(&app, 2_345, now - 200 * DAY_MS).await;
    audit_rows(&app, 7, now - DAY_MS).await;
    assert_eq!(app.services.admin().cleanup_audit().await.unwrap(), 2_345, "past the 180 days of retention");
    assert_eq!(audit_count(&app).await, 7, "within retention");
}

/// `n` users with one session each, expiring at `expires`, each with `tokens` refresh tokens
/// expiring with it.
async fn sessions(app: &TestApp, n: usize, tokens: usize, expires: i64) -> Vec<SessionId> {
    let now = app.clock_now();
    let mut tx = app.store.begin().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let (user, org, sid) = (UserId::new(), OrgId::new(), SessionId::new());
        let email = EmailAddress::parse(&format!("s-{}@example.com", user.0.simple())).unwrap();
        tx.insert_user(&NewUser { id: user, email: &email, username: email.as_str(), verified: true, now_ms: now })
            .await
            .unwrap();
        tx.insert_org(&NewOrg { id: org, name: "personal", kind: OrgKind::Personal, created_by: user, now_ms: now })
            .await
            .unwrap();
        tx.insert_membership(org, user, OrgRole::Owner, now).await.unwrap();
        tx.insert_session(&NewSession {
            id: sid,
            user_id: user,
            organization_id: org,
            user_agent: "test",
            ip: None,
            now_ms: now - 1,
            expires_at_ms: expires,
            amr: "pwd",
            mfa: false,
        })
        .await
        .unwrap();
        for _ in 0..tokens {
            let hash =
                authara::services::sessions::hash_refresh_token(&authara::services::sessions::new_refresh_token());
            let r = NewRefresh {
                session_id: sid,
                organization_id: org,
                token_hash: &hash,
                now_ms: now - 1,
                expires_at_ms: expires,
            };
            tx.insert_refresh(&r).await.unwrap();
        }
        ids.push(sid);
    }
    tx.commit().await.unwrap();
    ids
}

async fn expired_sessions_and_tokens_go_in_batches_and_live_ones_stay(engine: Engine) {
    let app = TestApp::start(engine).await;
    let now = app.clock_now();
    let gone = sessions(&app, 1_100, 3, now + 60_000).await;
    let kept = sessions(&app, 3, 3, now + 30 * DAY_MS).await;
    app.clock.advance(Duration::from_secs(120));
    let (s, t) = authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert_eq!((s, t), (1_100, 3_300), "every expired session and its three tokens");
    for sid in &gone {
        assert!(app.store.session_started_at(*sid).await.unwrap().is_none());
    }
    for sid in &kept {
        assert!(app.store.session_started_at(*sid).await.unwrap().is_some(), "a live session stays");
    }
    let (s, t) = authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert_eq!((s, t), (0, 0), "nothing left to delete");
}

async fn the_shell_runs_every_cleanup_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let now = app.clock_now();
    audit_rows(&app, 1_500, now - 200 * DAY_MS).await;
    audit_rows(&app, 2, now).await;
    let mut env = app.db.env();
    env.insert("AUTHARA_JWT_KEYS".into(), "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".into());
    env.insert("AUTHARA_JWT_ACTIVE_KEY_ID".into(), "k1".into());
    let (code, out, err) = run_cli(&["cleanup"], &env, app.db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.lines().any(|l| l == "audit events: 1500"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("batches ") && l[8..].parse::<u64>().unwrap() >= 2), "{out}");
    // Per table: its rows and batches, so a slow table can be told from the others.
    let audit = out.lines().find_map(|l| l.strip_prefix("table audit_events: 1500 rows in ")).expect(&out);
    let batches: u64 = audit.split(' ').next().unwrap().parse().unwrap();
    assert!(batches >= 2 && audit.contains(" ms in all, longest "), "{out}");
    assert_eq!(audit_count(&app).await, 2);
}

/// A session revoked long ago still has refresh tokens that have not expired (a logout does not
/// shorten them): they go with it. On SQLite they are deleted in batches of their own before
/// the session (and counted), not in the session's batch by the cascade; PostgreSQL leaves
/// them to the cascade.
async fn revoked_sessions_tokens_go_in_their_own_batches_first(engine: Engine) {
    let app = TestApp::start(engine).await;
    let now = app.clock_now();
    let revoked = sessions(&app, 40, 30, now + 30 * DAY_MS).await;
    let kept = sessions(&app, 2, 30, now + 30 * DAY_MS).await;
    let mut tx = app.store.begin().await.unwrap();
    for sid in &revoked {
        assert!(tx.revoke_session(*sid, now).await.unwrap());
    }
    tx.commit().await.unwrap();
    app.clock.advance(Duration::from_secs(2 * 86_400));
    let (s, t) = authara::worker::cleanup::run_once(&app.services).await.unwrap();
    let own_batches = if engine == Engine::Sqlite { 1_200 } else { 0 };
    assert_eq!((s, t), (40, own_batches), "the revoked sessions, and (SQLite) their unexpired tokens");
    for sid in &revoked {
        assert!(app.store.session_started_at(*sid).await.unwrap().is_none());
        assert_eq!(app.store.live_refresh_tokens(*sid, 0).await.unwrap(), 0, "no token outlives its session");
    }
    for sid in &kept {
        assert_eq!(
            app.store.live_refresh_tokens(*sid, app.clock_now()).await.unwrap(),
            30,
            "a live session's tokens stay"
        );
    }
}

on_both_engines!(
    a_backlog_larger_than_a_batch_goes_and_the_rest_stays,
    expired_sessions_and_tokens_go_in_batches_and_live_ones_stay,
    revoked_sessions_tokens_go_in_their_own_batches_first,
    the_shell_runs_every_cleanup_once,
);

/// Pages in SQLite's write-ahead log since it last started over, as a checkpoint run from a
/// connection of its own reports them.
async fn wal_pages(app: &TestApp) -> i64 {
    let mut c = app.db.sqlite_connection().await;
    let (_, pages, _): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut c).await.unwrap();
    pages
}

/// On SQLite the cleanup's commits skip the checkpoint SQLite runs in a commit (copying the
/// log into the database and syncing both, the slow part of a batch), and the cleanup copies
/// the log after each batch instead, on a connection of its own. What an operator sees: a large
/// backlog leaves the log short, and the writer checkpoints as before once the cleanup is done
/// (turned off for good, the log would grow with every write until the server stopped).
#[tokio::test]
async fn a_sqlite_backlog_leaves_the_log_short_and_the_writer_checkpointing() {
    let app = TestApp::start(Engine::Sqlite).await;
    let now = app.clock_now();
    for _ in 0..20 {
        audit_rows(&app, 2_000, now - 200 * DAY_MS).await;
    }
    // SQLite's own checkpoint comes at 1,000 pages, and one of these transactions or batches
    // writes under a hundred; deleting the whole backlog writes about 2,000, the rows added
    // after it about 2,500.
    const SHORT: i64 = 1_500;
    assert_eq!(app.services.admin().cleanup_audit().await.unwrap(), 40_000);
    let after_cleanup = wal_pages(&app).await;
    for _ in 0..40 {
        audit_rows(&app, 1_000, now).await;
    }
    let after_writes = wal_pages(&app).await;
    assert!(after_cleanup < SHORT, "the log after the cleanup: {after_cleanup} pages");
    assert!(after_writes < SHORT, "the log after 40,000 more rows: {after_writes} pages");
    assert_eq!(audit_count(&app).await, 40_000);
}
