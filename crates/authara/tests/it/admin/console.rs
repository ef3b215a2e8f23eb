//! The admin console: access by role and audience, every action with its guard and audit row,
//! search, the allowlist, and the command line.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::{TestApp, TestClient};
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};
use crate::harness::{TestDb, run_cli};

/// A new administrator, signed in through the API.
pub async fn admin(app: &TestApp, email: &str) -> TestClient {
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email(email), &password).await.unwrap();
    let c = app.csrf_client().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": email, "password": PW})).await;
    assert_eq!(res.status, 200);
    c
}

async fn user_id(app: &TestApp, email: &str) -> authara::domain::UserId {
    app.store.user_by_email(&crate::app::email(email)).await.unwrap().unwrap().id
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    let admin = app.services.admin();
    let rows = admin.audit(&admin.cli(), &Default::default(), 1).await.unwrap();
    rows.into_iter().map(|r| (r.action.as_str().to_owned(), r.actor.as_str().to_owned(), r.target_email)).collect()
}

async fn the_console_needs_the_admin_role_in_the_admin_audience(engine: Engine) {
    let app = TestApp::start(engine).await;
    let anonymous = app.client();
    let res = anonymous.get("/auth/admin").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/login?return_to=%2F")));
    let member = app.signed_in("member@example.com", PW).await;
    let res = member.get("/auth/admin").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "no platform role: back to /");
    assert!(member.get("/auth/api/v1/user").await.status == 200, "the member's session is untouched");

    let auditor = app.signed_in("auditor@example.com", PW).await;
    let id = user_id(&app, "auditor@example.com").await;
    let mut tx = app.store.begin().await.unwrap();
    tx.grant_role(id, authara::domain::PlatformRole::Auditor, 0).await.unwrap();
    tx.commit().await.unwrap();
    auditor.remove_cookie("authara_access");
    let res = auditor.get("/auth/admin").await;
    assert_eq!(res.status, 403, "auditors may hold the admin audience but not run the console");

    let root = admin(&app, "root@example.com").await;
    let res = root.get("/auth/admin").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.text().contains("sign-ups in 24 h"));
    let token = root.cookie("authara_access").unwrap();
    let claims = crate::app::jwt_claims(&token);
    assert_eq!(claims["aud"], json!(["admin"]), "the console refreshed into the admin audience");
}

/// The admin's own actions in the audit log, newest first.
async fn admin_audit(app: &TestApp) -> Vec<String> {
    let actions = audit_actions(app).await;
    actions.into_iter().filter(|(_, actor, _)| actor == "admin").map(|(a, _, _)| a).collect()
}

/// Search: exact email, prefix; the user's page.
async fn the_console_finds_users_by_email_or_prefix(engine: Engine) {
    let app = TestApp::start(engine).await;
    let root = admin(&app, "root@example.com").await;
    app.signed_in("target@example.com", PW).await;
    let tid = user_id(&app, "target@example.com").await;
    root.get("/auth/admin").await;
    let res = root.get("/auth/admin/users?q=target%40example.com").await;
    assert!(res.text().contains(&format!("/auth/admin/users/{tid}")));
    assert!(root.get("/auth/admin/users?q=targ").await.text().contains("target@example.com"));
    assert!(!root.get("/auth/admin/users?q=nobody").await.text().contains("target@example.com"));
    let detail = root.get(&format!("/auth/admin/users/{tid}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.text().contains("active"));
}

/// Disable: the target's access token dies at once and they cannot sign in; enable again.
async fn disabling_ends_access_at_once_and_enabling_restores_it(engine: Engine) {
    let app = TestApp::start(engine).await;
    let root = admin(&app, "root@example.com").await;
    let target = app.signed_in("target@example.com", PW).await;
    let tid = user_id(&app, "target@example.com").await;
    root.get("/auth/admin").await;
    let res = root.form(&format!("/auth/admin/users/{tid}/disable"), &[]).await;
    assert_eq!((res.status, res.location()), (303, Some(format!("/auth/admin/users/{tid}?notice=disabled"))));
    assert_eq!(target.get("/auth/api/v1/user").await.status, 401, "disabled: out at once");
    let login = json!({"email": "target@example.com", "password": PW});
    let again = app.csrf_client().await;
    assert_eq!(again.json(Method::POST, "/auth/api/v1/login", &login).await.status, 403, "cannot sign in");
    assert_eq!(root.form(&format!("/auth/admin/users/{tid}/enable"), &[]).await.status, 303);
    assert_eq!(again.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);

    assert_eq!(admin_audit(&app).await, ["user.enabled", "user.disabled"], "newest first");
    let actions = audit_actions(&app).await;
    assert!(
        actions
            .iter()
            .any(|(a, actor, t)| a == "user.login" && actor == "user" && t.as_deref() == Some("target@example.com"))
    );
    let page = root.get("/auth/admin/audit?action=user.disabled").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<td>user.disabled</td>") && !page.text().contains("<td>user.enabled</td>"));
}

/// One session, then all sessions: each revoked session is out at once.
async fn revoking_one_or_all_sessions_signs_them_out(engine: Engine) {
    let app = TestApp::start(engine).await;
    let root = admin(&app, "root@example.com").await;
    let one = app.signed_in("target@example.com", PW).await;
    let tid = user_id(&app, "target@example.com").await;
    root.get("/auth/admin").await;
    let sid = app.store.active_sessions(tid, app.clock_now()).await.unwrap()[0].id;
    let res = root.form(&format!("/auth/admin/users/{tid}/sessions/{sid}/revoke"), &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(one.get("/auth/api/v1/user").await.status, 401, "the revoked session is out");
    let login = json!({"email": "target@example.com", "password": PW});
    let other = app.csrf_client().await;
    assert_eq!(other.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);
    assert_eq!(root.form(&format!("/auth/admin/users/{tid}/sessions/revoke-all"), &[]).await.status, 303);
    assert_eq!(other.get("/auth/api/v1/user").await.status, 401);
    assert_eq!(admin_audit(&app).await, ["user.sessions_revoked", "user.session_revoked"], "newest first");
}

/// Guards: not on oneself; never the last active admin. Granting and revoking the role are
/// audited.
async fn the_console_guards_oneself_and_the_last_admin(engine: Engine) {
    let app = TestApp::start(engine).await;
    let root = admin(&app, "root@example.com").await;
    app.signed_in("target@example.com", PW).await;
    let tid = user_id(&app, "target@example.com").await;
    let rid = user_id(&app, "root@example.com").await;
    root.get("/auth/admin").await;
    let res = root.form(&format!("/auth/admin/users/{rid}/disable"), &[]).await;
    assert_eq!(res.status, 400);
    assert!(res.text().contains("own account"), "{}", res.text());
    assert_eq!(root.form(&format!("/auth/admin/users/{tid}/roles/admin/grant"), &[]).await.status, 303);
    assert_eq!(root.form(&format!("/auth/admin/users/{tid}/roles/admin/revoke"), &[]).await.status, 303);
    let cli = app.services.admin();
    let last = cli.set_disabled(&cli.cli(), rid, true, None).await;
    assert!(matches!(last, Err(authara::services::admin::AdminError::LastAdmin)), "{last:?}");
    assert_eq!(admin_audit(&app).await, ["user.admin_revoked", "user.admin_granted"], "newest first");
}

async fn the_allowlist_admits_only_listed_emails(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "true")]).await;
    let root = admin(&app, "root@example.com").await;
    root.get("/auth/admin").await;
    let c = app.csrf_client().await;
    let body = json!({"email": "guest@example.com", "password": PW});
    let res = c.json(Method::POST, "/auth/api/v1/signup/direct", &body).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    let page = app.client();
    page.get("/auth/signup").await;
    let res = page.form("/auth/signup", &[("email", "guest@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("cannot sign up"));

    assert_eq!(root.form("/auth/admin/allowlist", &[("email", "Guest@Example.com")]).await.status, 303);
    assert!(root.get("/auth/admin/allowlist?q=guest").await.text().contains("guest@example.com"));
    assert_eq!(c.json(Method::POST, "/auth/api/v1/signup/direct", &body).await.status, 201);
    let dup = root.form("/auth/admin/allowlist", &[("email", "guest@example.com")]).await;
    assert_eq!(dup.status, 400);
    // The first admin was put on the list when created; they cannot remove themselves.
    let list = root.get("/auth/admin/allowlist?q=root").await.text();
    let id = list.split("/auth/admin/allowlist/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    assert_eq!(root.form(&format!("/auth/admin/allowlist/{id}/delete"), &[]).await.status, 400);
    let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(a, _, _)| a).collect();
    assert!(actions.contains(&"allowlist.email_added".to_owned()));
}

/// The user's own page shows their security activity; audit events expire after the retention.
async fn users_see_their_security_activity_and_the_log_is_pruned(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_ADMIN_AUDIT_RETENTION_DAYS", "1")]).await;
    let c = app.signed_in("watch@example.com", PW).await;
    let bad = app.csrf_client().await;
    bad.json(
        Method::POST,
        "/auth/api/v1/login",
        &json!({"email": "watch@example.com", "password": "wrong-password-1"}),
    )
    .await;
    let again = app.csrf_client().await;
    let res = again
        .send(
            Method::POST,
            "/auth/api/v1/login",
            Some(json!({"email": "watch@example.com", "password": PW}).to_string().into_bytes()),
            &[
                ("content-type", "application/json"),
                ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
            ],
        )
        .await;
    assert_eq!(res.status, 200);
    let page = c.get("/auth/account").await.text();
    assert!(page.contains("New sign-in") && page.contains("Safari on iPhone"), "{page}");
    assert!(page.contains("Failed sign-in attempt"));
    app.clock.advance(std::time::Duration::from_secs(2 * 86_400));
    let admin = app.services.admin();
    assert!(admin.cleanup_audit().await.unwrap() >= 2);
    assert!(admin.audit(&admin.cli(), &Default::default(), 1).await.unwrap().is_empty());
}

/// Failed webhook deliveries are visible in the console and can be sent again.
async fn the_console_lists_and_redelivers_webhooks(engine: Engine) {
    let receiver = crate::receiver::Receiver::start().await;
    receiver.then(&[crate::receiver::Answer::Status(410)]);
    let app =
        TestApp::start_with_env(engine, &receiver.env(), &[("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created")]).await;
    app.signed_in("hooked@example.com", PW).await;
    while authara::worker::webhooks::run_once(&app.services).await.unwrap() != authara::worker::webhooks::Outcome::Idle
    {
    }
    let root = admin(&app, "root@example.com").await;
    while authara::worker::webhooks::run_once(&app.services).await.unwrap() != authara::worker::webhooks::Outcome::Idle
    {
    }
    let page = root.get("/auth/admin/webhooks").await.text();
    assert!(page.contains("failed") && page.contains("410"), "{page}");
    let id = page.split("/auth/admin/webhooks/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    assert_eq!(root.form(&format!("/auth/admin/webhooks/{id}/redeliver"), &[]).await.status, 303);
    while authara::worker::webhooks::run_once(&app.services).await.unwrap() != authara::worker::webhooks::Outcome::Idle
    {
    }
    let ids: Vec<String> = receiver.deliveries().iter().map(|d| d.header("x-authara-delivery").to_owned()).collect();
    assert_eq!(ids.iter().filter(|i| **i == id).count(), 2, "sent again under its id");
    let dashboard = root.get("/auth/admin").await.text();
    assert!(dashboard.contains("failed webhook deliveries"));
}

/// An invitation admits its email past the allowlist (behavior.md §5.5); nothing else does.
async fn an_invitation_admits_its_email_past_the_allowlist(engine: Engine) {
    use crate::organizations::api::{invite, start, team, token_of, user_id};
    let app = start(engine, "multi", &[("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "true")]).await;
    admin(&app, "owner@example.com").await;
    let owner = user_id(&app, "owner@example.com").await;
    let org = team(&app, &owner, "Listed").await;
    let invited = invite(&app, &org, &owner, "guest@example.com", "member").await;
    assert_eq!(invited.status, 201, "{}", invited.text());
    let c = app.csrf_client().await;
    let stranger = json!({"email": "stranger@example.com", "password": PW});
    assert_eq!(c.json(Method::POST, "/auth/api/v1/signup/direct", &stranger).await.status, 403);
    let body = json!({"email": "guest@example.com", "password": PW, "invitation_code": token_of(&invited)});
    let res = c.json(Method::POST, "/auth/api/v1/signup/direct", &body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert!(app.store.is_allowed("guest@example.com").await.unwrap(), "and is on the list from now on");
}

/// Page numbers and search terms come from the query string: absurd ones are served (clamped,
/// cut), never a 500 or an overflow.
async fn any_page_number_or_search_term_is_served(engine: Engine) {
    let app = TestApp::start(engine).await;
    let root = admin(&app, "root@example.com").await;
    let long = "a".repeat(10_000);
    for path in [
        "/auth/admin/users?page=9223372036854775807".to_owned(),
        "/auth/admin/users?page=-9223372036854775808&q=root".to_owned(),
        "/auth/admin/failures?page=9223372036854775807".to_owned(),
        "/auth/admin/audit?page=9223372036854775807".to_owned(),
        "/auth/admin/webhooks?page=9223372036854775807".to_owned(),
        format!("/auth/admin/users?q={long}"),
        format!("/auth/admin/audit?action={long}"),
    ] {
        let res = root.get(&path).await;
        assert_eq!(res.status, 200, "{}: {}", &path[..path.len().min(60)], res.text());
    }
    let res = root.get("/auth/admin/users?page=9223372036854775807").await;
    assert!(res.text().contains("Previous"), "the last page links back");
    // A path parameter that is not an id is our 404 page, not the framework's plain text.
    for path in ["/auth/admin/users/search", "/auth/admin/users/%E2%80%AE"] {
        let res = root.get(path).await;
        assert_eq!(res.status, 404, "{path}");
        let ct = res.headers.get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html") && res.text().contains("<main"), "{path}: {ct} {}", res.text());
    }
    let res = root.form("/auth/admin/users/not-an-id/disable", &[]).await;
    assert_eq!(res.status, 404);
}

/// The last-admin guard under a race: two administrators each remove the other's role at the
/// same moment, from their own browsers, on a server running on several threads. One change
/// wins, the other is refused; an administrator always remains.
async fn two_administrators_demoting_each_other_at_once_leave_one(engine: Engine) {
    let app = TestApp::start(engine).await;
    let mut left = None;
    for round in 0..3 {
        let (a_email, b_email) = (format!("a{round}@example.com"), format!("b{round}@example.com"));
        let (a, b) = (admin(&app, &a_email).await, admin(&app, &b_email).await);
        let (a_id, b_id) = (user_id(&app, &a_email).await, user_id(&app, &b_email).await);
        // Only these two are administrators in this round.
        if let Some(previous) = left.take() {
            let cli = app.services.admin();
            cli.set_admin(&cli.cli(), previous, false, None).await.unwrap();
        }
        let (x, y) = tokio::join!(
            tokio::spawn(async move { a.form(&format!("/auth/admin/users/{b_id}/roles/admin/revoke"), &[]).await }),
            tokio::spawn(async move { b.form(&format!("/auth/admin/users/{a_id}/roles/admin/revoke"), &[]).await }),
        );
        let answers = [x.unwrap(), y.unwrap()];
        let done =
            |r: &crate::app::Res| r.status == 303 && r.location().is_some_and(|l| l.starts_with("/auth/admin/users/"));
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        assert_eq!(answers.iter().filter(|r| done(r)).count(), 1, "round {round}: one change wins: {statuses:?}");
        // The other is refused: by the guard (400, saying why) when both changes overlap, or,
        // when the winner committed first, because its own admin session had just been ended.
        let lost = answers.iter().find(|r| !done(r)).unwrap();
        assert!(matches!(lost.status, 303 | 400 | 403 | 422), "round {round}: {statuses:?}: {}", lost.text());
        if lost.status == 400 {
            assert!(lost.text().contains("The last active administrator"), "round {round}: {}", lost.text());
        }
        let is_admin = |id| {
            let store = app.store.clone();
            async move { store.user_roles(id).await.unwrap().contains(&authara::domain::PlatformRole::Admin) }
        };
        let (ra, rb) = (is_admin(a_id).await, is_admin(b_id).await);
        assert!(ra ^ rb, "round {round}: exactly one administrator remains ({ra}, {rb})");
        left = Some(if ra { a_id } else { b_id });
    }
}

/// `authara admin create` reads the password from stdin; the admin can then take the
/// admin audience, and the token names the role.
async fn admin_bootstrap_from_the_shell(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = crate::harness::server_env::<&str, &str>(&db, &[]);
    let mut cmd = crate::harness::command(&["admin", "create", "--email", "Root@Example.com"], &env, db.data_dir());
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{PW}\n").as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("created admin root@example.com"), "{stdout}");
    assert!(!stdout.contains(PW), "a password from stdin is not echoed");

    let (code, _, err) = run_cli(&["admin", "grant", "--email", "nobody@example.com"], &env, db.data_dir()).await;
    assert_ne!(code, 0, "granting to an unknown email fails: {err}");

    let app = TestApp::start_on(db, &[], None).await;
    let c = app.csrf_client().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/login?audience=admin", &json!({"email": "root@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let claims = crate::app::jwt_claims(&token);
    assert_eq!(claims["aud"], json!(["admin"]));
    assert_eq!(claims["roles"], json!(["authara:admin"]));
    // A refresh keeps the platform roles and may ask for the admin audience again.
    let refresh = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let again = c
        .json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": refresh, "audience": "admin"}))
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    let t = again.json()["access_token"].as_str().unwrap().to_owned();
    let claims = crate::app::jwt_claims(&t);
    assert_eq!(claims["roles"], json!(["authara:admin"]));
    let plain = app.signed_in("plain@example.com", PW).await;
    let token = plain.cookie("authara_refresh").unwrap();
    let res_plain = c
        .json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": token, "audience": "admin"}))
        .await;
    assert_eq!(res_plain.status, 401, "no admin audience without the admin role");
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "root@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    assert_eq!(c.get("/auth/api/v1/user").await.json()["roles"], json!(["authara:admin"]));
}

on_both_engines!(
    any_page_number_or_search_term_is_served,
    an_invitation_admits_its_email_past_the_allowlist,
    users_see_their_security_activity_and_the_log_is_pruned,
    the_console_lists_and_redelivers_webhooks,
    the_console_needs_the_admin_role_in_the_admin_audience,
    the_console_finds_users_by_email_or_prefix,
    disabling_ends_access_at_once_and_enabling_restores_it,
    revoking_one_or_all_sessions_signs_them_out,
    the_console_guards_oneself_and_the_last_admin,
    the_allowlist_admits_only_listed_emails,
    admin_bootstrap_from_the_shell,
    ; threaded: two_administrators_demoting_each_other_at_once_leave_one,
);

/// `authara admin list|disable|enable|revoke-sessions` on a headless box, audited as the CLI.
#[tokio::test]
async fn the_command_line_administers_users() {
    let app = TestApp::start(Engine::Sqlite).await;
    let c = app.signed_in("shell@example.com", PW).await;
    let env = {
        let mut env = app.db.env();
        env.insert("AUTHARA_JWT_KEYS".into(), "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".into());
        env.insert("AUTHARA_JWT_ACTIVE_KEY_ID".into(), "k1".into());
        env
    };
    let dir = app.db.data_dir();
    let (code, out, err) = crate::harness::run_cli(&["admin", "list"], &env, dir).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("shell@example.com"));
    let (code, out, err) =
        crate::harness::run_cli(&["admin", "disable", "--email", "shell@example.com"], &env, dir).await;
    assert_eq!(code, 0, "{out}{err}");
    app.clock.advance(std::time::Duration::from_secs(3));
    assert_eq!(c.get("/auth/api/v1/user").await.status, 401, "disabled from the shell");
    let (code, _, _) = crate::harness::run_cli(&["admin", "enable", "--email", "shell@example.com"], &env, dir).await;
    assert_eq!(code, 0);
    let (code, out, _) =
        crate::harness::run_cli(&["admin", "revoke-sessions", "--email", "shell@example.com"], &env, dir).await;
    assert_eq!(code, 0);
    assert!(out.contains("revoked"));
    let actions = audit_actions(&app).await;
    assert!(actions.iter().any(|(a, actor, _)| a == "user.disabled" && actor == "cli"));
    assert!(actions.iter().any(|(a, actor, _)| a == "user.sessions_revoked" && actor == "cli"));
    let (code, _, err) =
        crate::harness::run_cli(&["admin", "disable", "--email", "nobody@example.com"], &env, dir).await;
    assert_ne!(code, 0);
    assert!(err.contains("no user"));
}
