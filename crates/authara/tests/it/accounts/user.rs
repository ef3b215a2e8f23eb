//! The signed-in user: profile, organization, capabilities, password change.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;
const NEW_PW: &str = "copper-lantern-meadow";

async fn password_change_revokes_every_session_and_its_access_tokens(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.signed_in("pw@example.com", PW).await;
    let b = app.csrf_client().await;
    assert_eq!(
        b.json(Method::POST, "/auth/api/v1/login", &json!({"email": "pw@example.com", "password": PW})).await.status,
        200
    );
    assert_eq!(b.get("/auth/api/v1/user").await.status, 200);

    let res = a
        .json(
            Method::PUT,
            "/auth/api/v1/users/password",
            &json!({"password": NEW_PW, "current_password": "nope-nope-nope"}),
        )
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "wrong current password");
    let res =
        a.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": "short", "current_password": PW})).await;
    assert_eq!(res.status, 400);
    assert_eq!(b.get("/auth/api/v1/user").await.status, 200, "failed attempts change nothing");

    // The contract's body exactly: right after a login the session is privileged.
    let res = a.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": NEW_PW})).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(b.get("/auth/api/v1/user").await.status, 401, "the other device's access token stops at once");
    assert_eq!(a.get("/auth/api/v1/user").await.status, 401, "so does the caller's (all sessions are revoked)");
    assert_eq!(b.post("/auth/api/v1/sessions/refresh").await.status, 401);

    let c = app.csrf_client().await;
    let old = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "pw@example.com", "password": PW})).await;
    assert_eq!(old.status, 401);
    let new = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "pw@example.com", "password": NEW_PW})).await;
    assert_eq!(new.status, 200);
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200, "a new login right after the change works");
}

async fn organization_and_capabilities(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("org@example.com", PW).await;
    let org = c.get("/auth/api/v1/organizations/current").await;
    assert_eq!(org.status, 200);
    let me = c.get("/auth/api/v1/user").await.json();
    assert_eq!(org.json(), me["organization"]);
    let caps = c.get("/auth/api/v1/capabilities").await.json();
    assert_eq!(
        caps,
        json!({
            "organization_mode": "single", "has_visible_organizations": true, "allows_invitations": true,
            "allows_public_organization_management": false, "allows_org_switching": false,
            "allows_user_created_team_orgs": false, "allows_organization_leave": false
        })
    );
    let anon = app.client();
    for path in ["/auth/api/v1/user", "/auth/api/v1/organizations/current", "/auth/api/v1/capabilities"] {
        assert_eq!(anon.get(path).await.status, 401, "{path}");
    }
    // A bearer header is not a session: the API reads the cookie only.
    let token = c.cookie("authara_access").unwrap();
    let res = anon.send(Method::GET, "/auth/api/v1/user", None, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(res.status, 401);
}

async fn multi_mode_capabilities_and_personal_org(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_ORG_MODE", "multi")]).await;
    let c = app.signed_in("multi@example.com", PW).await;
    let caps = c.get("/auth/api/v1/capabilities").await.json();
    assert_eq!(caps["organization_mode"], "multi");
    assert_eq!(caps["allows_org_switching"], true);
    assert_eq!(c.get("/auth/api/v1/user").await.json()["organization"]["role"], "owner");
}

on_both_engines!(
    password_change_revokes_every_session_and_its_access_tokens,
    organization_and_capabilities,
    multi_mode_capabilities_and_personal_org,
);
