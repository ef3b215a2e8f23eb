//! What the console's search and audit log read, at the store: the prefix search walks two
//! bounded index ranges and merges them by email; the audit page's query names only the filters
//! that are set. (`bench/scale` measures them at a million users.)

use authara::domain::{ActorKind, AuditAction, EmailAddress, UserId};
use authara::store::accounts::NewUser;
use authara::store::audit::{AuditFilter, NewAudit};

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

async fn user(app: &TestApp, email: &str, username: &str) -> UserId {
    let id = UserId::new();
    let email = EmailAddress::parse(email).unwrap();
    let mut tx = app.store.begin().await.unwrap();
    tx.insert_user(&NewUser { id, email: &email, username, verified: true, now_ms: app.clock_now() }).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn emails(app: &TestApp, q: &str, limit: i64, offset: i64) -> Vec<String> {
    app.store.search_users(q, limit, offset).await.unwrap().into_iter().map(|u| u.email.as_str().to_owned()).collect()
}

async fn a_prefix_finds_emails_and_usernames_in_email_order(engine: Engine) {
    let app = TestApp::start(engine).await;
    user(&app, "bob@example.com", "albert").await;
    user(&app, "alice@example.com", "alice").await;
    user(&app, "alba@example.com", "zed").await;
    user(&app, "carol@example.com", "carol").await;
    assert_eq!(emails(&app, "al", 25, 0).await, ["alba@example.com", "alice@example.com", "bob@example.com"]);
    assert_eq!(emails(&app, "alice", 25, 0).await, ["alice@example.com"], "matched twice, listed once");
    assert_eq!(emails(&app, "al", 2, 0).await, ["alba@example.com", "alice@example.com"]);
    assert_eq!(emails(&app, "al", 2, 2).await, ["bob@example.com"]);
    assert!(emails(&app, "a%", 25, 0).await.is_empty(), "no pattern characters");
    assert!(emails(&app, "_l", 25, 0).await.is_empty(), "no pattern characters");
    assert!(emails(&app, "dave", 25, 0).await.is_empty());
}

/// Each side of the search reads only `offset + limit` rows: the pages must still cover every
/// match once, whichever side found it.
async fn search_pages_cover_every_match_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let mut want = Vec::new();
    for i in 0..30 {
        user(&app, &format!("m{i:02}@example.com"), &format!("nobody{i}")).await;
        // Matched by username only; their emails sort among the others.
        user(&app, &format!("m{i:02}x@example.org"), &format!("M{i:02}-user")).await;
        want.push(format!("m{i:02}@example.com"));
        want.push(format!("m{i:02}x@example.org"));
    }
    user(&app, "other@example.com", "other").await;
    want.sort();
    let mut got = Vec::new();
    for page in 0..4 {
        got.extend(emails(&app, "m", 25, page * 25).await);
    }
    assert_eq!(got, want);
}

async fn audit(app: &TestApp, actor: Option<UserId>, action: AuditAction, target: Option<UserId>, at: i64) {
    let mut tx = app.store.begin().await.unwrap();
    tx.insert_audit(&NewAudit {
        actor_user_id: actor,
        actor: if actor.is_some() { ActorKind::User } else { ActorKind::System },
        action,
        target_user_id: target,
        target_email: None,
        metadata: "{}",
        ip: None,
        user_agent: None,
        now_ms: at,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn the_audit_log_filters_by_any_combination_newest_first(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (a, b) = (user(&app, "a@example.com", "a").await, user(&app, "b@example.com", "b").await);
    // (actor, action, target, at)
    let rows = [
        (Some(a), AuditAction::Login, Some(a), 1_000),
        (Some(a), AuditAction::PasswordChanged, Some(a), 2_000),
        (Some(a), AuditAction::Disabled, Some(b), 3_000),
        (Some(b), AuditAction::Login, Some(b), 4_000),
        (None, AuditAction::Disabled, Some(a), 5_000),
        (Some(a), AuditAction::Login, Some(a), 5_000),
    ];
    for (actor, action, target, at) in rows {
        audit(&app, actor, action, target, at).await;
    }
    let page = |f: AuditFilter, limit: i64, offset: i64| {
        let store = app.store.clone();
        async move {
            store
                .audit_page(&f, limit, offset)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.created_at_ms <= 5_000)
                .map(|r| (r.action.as_str().to_owned(), r.created_at_ms))
                .collect::<Vec<_>>()
        }
    };
    let f = |actor: Option<UserId>, target: Option<UserId>, action: Option<AuditAction>| AuditFilter {
        actor,
        target,
        action,
    };
    let all = page(f(None, None, None), 100, 0).await;
    assert_eq!(all.iter().map(|r| r.1).collect::<Vec<_>>(), [5_000, 5_000, 4_000, 3_000, 2_000, 1_000]);
    assert_eq!(all[0].0, "user.login", "the same instant: the later row first");
    assert_eq!(page(f(Some(a), None, None), 100, 0).await.len(), 4);
    assert_eq!(page(f(None, Some(a), None), 100, 0).await.len(), 4);
    assert_eq!(
        page(f(None, None, Some(AuditAction::Disabled)), 100, 0).await,
        [("user.disabled".to_owned(), 5_000), ("user.disabled".to_owned(), 3_000)]
    );
    assert_eq!(page(f(Some(a), Some(b), None), 100, 0).await, [("user.disabled".to_owned(), 3_000)]);
    assert_eq!(
        page(f(Some(a), None, Some(AuditAction::Login)), 100, 0).await,
        [("user.login".to_owned(), 5_000), ("user.login".to_owned(), 1_000)]
    );
    assert_eq!(
        page(f(None, Some(a), Some(AuditAction::Disabled)), 100, 0).await,
        [("user.disabled".to_owned(), 5_000)]
    );
    assert_eq!(page(f(Some(b), Some(b), Some(AuditAction::Login)), 100, 0).await, [("user.login".to_owned(), 4_000)]);
    assert_eq!(
        page(f(Some(a), None, None), 2, 2).await,
        [("user.password_changed".to_owned(), 2_000), ("user.login".to_owned(), 1_000)]
    );
}

/// The "Older" pages follow the last row shown (keyset): the same rows as the offset pages,
/// rows of the same millisecond included, with the filter kept.
async fn older_pages_follow_the_last_row_with_the_filter(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (a, b) = (user(&app, "a@example.com", "a").await, user(&app, "b@example.com", "b").await);
    for i in 0..130 {
        // Three rows share each millisecond.
        audit(&app, Some(a), AuditAction::Login, Some(a), 10_000 + i / 3).await;
        audit(&app, Some(b), AuditAction::Login, Some(b), 10_000 + i / 3).await;
    }
    let f = AuditFilter { actor: Some(a), ..AuditFilter::default() };
    let by_offset = app.store.audit_page(&f, 1000, 0).await.unwrap();
    assert_eq!(by_offset.len(), 130);
    let mut walked = app.store.audit_page(&f, 50, 0).await.unwrap();
    loop {
        let last = walked.last().unwrap();
        let next = app.store.audit_page_before(&f, (last.created_at_ms, last.seq), 50).await.unwrap();
        if next.is_empty() {
            break;
        }
        walked.extend(next);
    }
    assert_eq!(walked.iter().map(|r| r.seq).collect::<Vec<_>>(), by_offset.iter().map(|r| r.seq).collect::<Vec<_>>());

    let root = crate::admin::console::admin(&app, "root@example.com").await;
    root.get("/auth/admin").await;
    let first = root.get(&format!("/auth/admin/audit?actor={}", a.0)).await.text();
    let older = first
        .split("href=\"")
        .map(|h| h.split('"').next().unwrap())
        .find(|h| h.contains("before="))
        .unwrap()
        .replace("&amp;", "&");
    assert!(older.contains(&format!("actor={}", a.0)), "{older}");
    let res = root.get(&older).await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("Newest") && res.text().contains("user.login"));
    assert_eq!(root.get("/auth/admin/audit?before=yesterday").await.status, 400);
}

on_both_engines!(
    a_prefix_finds_emails_and_usernames_in_email_order,
    search_pages_cover_every_match_once,
    the_audit_log_filters_by_any_combination_newest_first,
    older_pages_follow_the_last_row_with_the_filter,
);
