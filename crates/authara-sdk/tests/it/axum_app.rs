//! The axum integration in an application on a real socket, with tokens of the real server:
//! the extractor, `Option<AuthUser>`, the guard layer, and the answers to anonymous requests.

use std::time::Duration;

use authara_sdk::{AuthUser, Authara, OrgRole, PlatformRole, Requirement, Unauthenticated, Verifier};
use axum::Router;
use axum::response::Json;
use axum::routing::get;
use serde_json::{Value, json};

use crate::harness::{Alg, ManualClock, Server, client, on_both_algorithms, verifier_for};

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({"sub": user.user_id(), "org_role": user.org_role().as_str()}))
}

async fn maybe(user: Option<AuthUser>) -> Json<Value> {
    Json(json!({"sub": user.map(|u| u.user_id())}))
}

/// The application under test.
pub fn app(authara: &Authara) -> Router {
    let admin = Router::new()
        .route("/admin", get(me))
        .route_layer(authara.require(Requirement::PlatformRole(PlatformRole::Admin)));
    let team = Router::new().route("/team", get(me)).route_layer(authara.require(Requirement::OrgRole(OrgRole::Admin)));
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .nest("/app", Router::new().route("/page", get(me)))
        .merge(admin)
        .merge(team)
        .layer(authara.layer())
}

/// Serves `router` on a free port; the base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// GET with the given headers.
pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    Reply { status, headers, body: res.text().await.unwrap() }
}

/// Checks the three answers to an anonymous request of `path` (as the Go SDK gives them).
pub async fn assert_anonymous_answers(base: &str, path: &str, auth: &[(&str, &str)], return_to: &str) {
    let url = format!("{base}{path}");
    let login = format!("/auth/login?return_to={return_to}");
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = auth.to_vec();
        h.extend_from_slice(extra);
        h
    };
    let browser = get_with(&url, &with(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")])).await;
    assert_eq!(browser.status, 302, "{path}: {}", browser.body);
    assert_eq!(browser.header("location"), Some(login.as_str()));
    assert_eq!(browser.header("vary"), Some("Accept, HX-Request"));
    assert_eq!(browser.header("cache-control"), Some("no-store"));

    let htmx = get_with(&url, &with(&[("accept", "text/html"), ("hx-request", "true")])).await;
    assert_eq!(htmx.status, 200);
    assert_eq!(htmx.header("hx-redirect"), Some(login.as_str()));
    assert_eq!(htmx.header("location"), None);
    assert!(htmx.body.is_empty());

    for accept in [Some("application/json"), None] {
        let extra: &[(&str, &str)] = match accept {
            Some(a) => &[("accept", a)][..],
            None => &[],
        };
        let mut h: Vec<(&str, &str)> = auth.to_vec();
        h.extend_from_slice(extra);
        let api = get_with(&url, &h).await;
        assert_eq!(api.status, 401, "{path} accept {accept:?}");
        assert_eq!(api.header("www-authenticate"), Some("Bearer"));
        assert_eq!(api.header("content-type"), Some("application/json"));
        assert_eq!(api.json()["error"]["code"], "unauthorized");
        assert!(api.json()["error"]["message"].is_string());
    }
}

async fn signed_in_requests_reach_the_handler(alg: Alg) {
    let server = Server::start(alg).await;
    let session = server.sign_up("axum@example.com").await;
    let authara = Authara::new(verifier_for(&server, alg).build().unwrap());
    let base = serve(app(&authara)).await;

    let bearer = format!("Bearer {}", session.access_token);
    let cookie = format!("theme=dark; authara_access={}", session.access_token);
    for header in [("authorization", bearer.as_str()), ("cookie", cookie.as_str())] {
        let res = get_with(&format!("{base}/me"), &[header]).await;
        assert_eq!(res.status, 200, "{header:?}: {}", res.body);
        assert_eq!(res.json()["sub"], session.user_id.as_str());
        assert_eq!(res.json()["org_role"], "owner");
        let res = get_with(&format!("{base}/maybe"), &[header]).await;
        assert_eq!(res.json()["sub"], session.user_id.as_str());
    }
    let anonymous = get_with(&format!("{base}/maybe"), &[]).await;
    assert_eq!((anonymous.status, anonymous.json()["sub"].clone()), (200, Value::Null));
    let garbage = get_with(&format!("{base}/maybe"), &[("authorization", "Bearer nope")]).await;
    assert_eq!((garbage.status, garbage.json()["sub"].clone()), (200, Value::Null), "an invalid token is anonymous");
}

async fn anonymous_and_expired_requests_get_the_go_sdks_answers(alg: Alg) {
    let server = Server::start(alg).await;
    let token = server.sign_up("anon@example.com").await.access_token;
    let clock = ManualClock::now();
    let authara = Authara::new(verifier_for(&server, alg).clock(clock.clone()).build().unwrap());
    let base = serve(app(&authara)).await;

    assert_anonymous_answers(&base, "/me?tab=a b&x=1", &[], "%2Fme%3Ftab%3Da%2520b%26x%3D1").await;
    assert_anonymous_answers(&base, "/app/page", &[], "%2Fapp%2Fpage").await;
    let bearer = format!("Bearer {token}");
    let mut tampered = token.clone();
    tampered.push('x');
    let tampered = format!("Bearer {tampered}");
    assert_anonymous_answers(&base, "/me", &[("authorization", &tampered)], "%2Fme").await;
    clock.advance(Duration::from_secs(600 + 61));
    assert_anonymous_answers(&base, "/me", &[("authorization", &bearer)], "%2Fme").await;

    // The login page the browser is sent to is the server's (behind one gateway: same origin).
    let to = get_with(&format!("{base}/me"), &[("accept", "text/html")]).await;
    let login = get_with(&server.url(to.header("location").unwrap()), &[("accept", "text/html")]).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("<form"), "the hosted login page");
}

async fn guards_refuse_signed_in_users_without_the_role(alg: Alg) {
    let server = Server::start(alg).await;
    let owner = server.sign_up("owner@example.com").await;
    server.cli(&["admin", "grant", "--email", "owner@example.com"]).await;
    let admin = server.log_in("owner@example.com", "app").await;

    let (team, member) = server.team_member(&owner.user_id, "member@example.com").await;

    let verifier = verifier_for(&server, alg).build().unwrap();
    let claims = verifier.verify(&member).await.unwrap();
    assert_eq!((claims.org_id, claims.org_role), (team, OrgRole::Member));

    let base = serve(app(&Authara::new(verifier))).await;
    let call = |path: &'static str, token: String| {
        let base = base.clone();
        async move { get_with(&format!("{base}{path}"), &[("authorization", &format!("Bearer {token}"))]).await }
    };
    let res = call("/admin", admin.access_token.clone()).await;
    assert_eq!((res.status, res.json()["sub"].as_str()), (200, Some(owner.user_id.as_str())));
    let res = call("/admin", owner.access_token.clone()).await;
    assert_eq!(res.status, 403, "the token minted before the grant has no admin role");
    assert_eq!(res.json()["error"]["code"], "forbidden");
    assert_eq!(res.header("vary"), None);
    let res = call("/admin", member.clone()).await;
    assert_eq!(res.status, 403);

    assert_eq!(call("/team", owner.access_token.clone()).await.status, 200, "an owner is at least an admin");
    let res = call("/team", member).await;
    assert_eq!((res.status, res.json()["error"]["code"].as_str()), (403, Some("forbidden")));

    assert_anonymous_answers(&base, "/admin", &[], "%2Fadmin").await;
}

#[tokio::test]
async fn redirects_can_be_turned_off_and_the_login_page_moved() {
    let verifier = Verifier::builder("x").hs256_keys(crate::harness::K1.parse().unwrap()).build().unwrap();
    let api_only = Authara::new(verifier.clone()).unauthenticated(Unauthenticated::new().redirect(false));
    let base = serve(app(&api_only)).await;
    for headers in [&[("accept", "text/html")][..], &[("accept", "text/html"), ("hx-request", "true")][..]] {
        let res = get_with(&format!("{base}/me"), headers).await;
        assert_eq!(res.status, 401, "{headers:?}");
    }
    let elsewhere =
        Authara::new(verifier).unauthenticated(Unauthenticated::new().login_url("https://id.example.com/auth/login"));
    let base = serve(app(&elsewhere)).await;
    let res = get_with(&format!("{base}/me?a=1"), &[("accept", "text/html")]).await;
    assert_eq!(res.header("location"), Some("https://id.example.com/auth/login?return_to=%2Fme%3Fa%3D1"));
}

#[tokio::test]
async fn without_the_layer_the_extractor_answers_500_not_a_panic() {
    let base = serve(Router::new().route("/me", get(me)).route("/maybe", get(maybe))).await;
    for path in ["/me", "/maybe"] {
        let res = get_with(&format!("{base}{path}"), &[]).await;
        assert_eq!((res.status, res.json()["error"]["code"].as_str()), (500, Some("internal_error")), "{path}");
    }
}

on_both_algorithms!(
    signed_in_requests_reach_the_handler,
    anonymous_and_expired_requests_get_the_go_sdks_answers,
    guards_refuse_signed_in_users_without_the_role,
);
