//! `/auth/verify` as a proxy asks it (the test client speaks for the proxy: forwarded headers
//! from loopback, the browser's cookies and headers), and the pages around it: the refresh
//! page, sign-out from a protected app, `return_to` on other hosts, the cookie domain.

use std::time::Duration;

use reqwest::Method;

use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;
const PUBLIC: &str = "http://auth.example.test";
const APP: &str = "app.example.test";

/// The settings of a deployment with apps on subdomains.
pub const SITES: [(&str, &str); 3] = [
    ("PUBLIC_URL", PUBLIC),
    ("AUTHARA_ALLOWED_RETURN_HOSTS", "app.example.test,.apps.example.test"),
    ("AUTHARA_COOKIE_DOMAIN", ".example.test"),
];

const NAVIGATE: (&str, &str) = ("sec-fetch-mode", "navigate");
const FETCH: (&str, &str) = ("sec-fetch-mode", "cors");

async fn start(engine: Engine) -> TestApp {
    TestApp::start_with(engine, &SITES).await
}

/// What Traefik and Caddy send for `method host uri`, with the browser's own headers.
async fn ask(c: &TestClient, query: &str, method: &str, host: &str, uri: &str, extra: &[(&str, &str)]) -> Res {
    let mut headers = vec![
        ("x-forwarded-method", method),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
    ];
    headers.extend_from_slice(extra);
    let res = c.send(Method::GET, &format!("/auth/verify{query}"), None, &headers).await;
    if res.headers.get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json")) {
        crate::contract::validate("GET", "/auth/verify", res.status, Some("application/json"), &res.body);
    }
    assert_eq!(res.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
    res
}

fn header(res: &Res, name: &str) -> Option<String> {
    res.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

fn login_for(url: &str) -> String {
    format!("{PUBLIC}/auth/login?return_to={}", authara::services::return_to::encode(url))
}

async fn a_signed_in_browser_gets_every_identity_header(engine: Engine) {
    let app = start(engine).await;
    let c = app.signed_in("ada@example.com", PW).await;
    let me = c.get("/auth/api/v1/user").await.json();
    let res = ask(&c, "", "GET", APP, "/dashboard?x=1", &[NAVIGATE]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(header(&res, "remote-user").as_deref(), me["id"].as_str());
    assert_eq!(header(&res, "remote-email").as_deref(), Some("ada@example.com"));
    assert_eq!(header(&res, "remote-name").as_deref(), me["username"].as_str());
    assert_eq!(header(&res, "remote-groups").as_deref(), Some(""), "no platform role: present and empty");
    assert_eq!(header(&res, "remote-org").as_deref(), me["organization"]["id"].as_str());
    assert_eq!(header(&res, "remote-org-role").as_deref(), Some("owner"));
    assert!(res.body.is_empty());
}

async fn a_navigation_without_a_session_is_sent_to_sign_in_and_back(engine: Engine) {
    let app = start(engine).await;
    app.signed_in("ada@example.com", PW).await;
    let browser = app.client();
    let original = format!("http://{APP}/d/1?from=now-1h");
    let res = ask(&browser, "", "GET", APP, "/d/1?from=now-1h", &[NAVIGATE]).await;
    assert_eq!((res.status, res.location()), (302, Some(login_for(&original))));
    let res = ask(&browser, "", "HEAD", APP, "/", &[("accept", "text/html,*/*")]).await;
    assert_eq!(res.status, 302, "Accept: text/html without X-Requested-With is a navigation");
    let res = ask(&browser, "", "POST", APP, "/form", &[NAVIGATE]).await;
    assert_eq!((res.status, res.location()), (303, Some(login_for(&format!("http://{APP}/form")))));
    let res = ask(&browser, "", "GET", "grafana.apps.example.test", "/", &[NAVIGATE]).await;
    assert_eq!(res.location(), Some(login_for("http://grafana.apps.example.test/")), "a suffix entry");
    for host in ["other.example.test", "apps.example.test", "app.example.test.evil.test"] {
        let res = ask(&browser, "", "GET", host, "/x", &[NAVIGATE]).await;
        assert_eq!(res.location().as_deref(), Some(&*format!("{PUBLIC}/auth/login")), "{host}: no way back there");
    }

    // The login page takes the absolute return_to and goes back there signed in.
    let page = browser.get(&format!("/auth/login?return_to={}", authara::services::return_to::encode(&original))).await;
    assert_eq!(page.status, 200);
    let csp = header(&page, "content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self' app.example.test:* *.apps.example.test:*"), "the form may go back: {csp}");
    let path = format!("/auth/login?return_to={}", authara::services::return_to::encode(&original));
    let res = browser.form(&path, &[("email", "ada@example.com"), ("password", PW)]).await;
    assert_eq!((res.status, res.location()), (303, Some(original.clone())), "{}", res.text());
    assert_eq!(ask(&browser, "", "GET", APP, "/d/1?from=now-1h", &[NAVIGATE]).await.status, 200);

    // A host that is not listed falls back to the default.
    let elsewhere = browser.get("/auth/login?return_to=http%3A%2F%2Fother.example.test%2F").await;
    assert_eq!((elsewhere.status, elsewhere.location().as_deref()), (303, Some("/")), "signed in: default");
}

async fn scripts_get_401_with_the_login_url(engine: Engine) {
    let app = start(engine).await;
    let c = app.client();
    let login = login_for(&format!("http://{APP}/api/items"));
    let cases: [&[(&str, &str)]; 5] = [
        &[FETCH],
        &[("accept", "text/html"), ("x-requested-with", "XMLHttpRequest")],
        &[("accept", "application/json")],
        &[],
        &[("hx-request", "true"), ("accept", "text/html")],
    ];
    for headers in cases {
        let res = ask(&c, "", "GET", APP, "/api/items", headers).await;
        assert_eq!((res.status, res.error_code()), (401, "unauthorized".to_owned()), "{headers:?}");
        assert_eq!(res.location(), Some(login.clone()), "{headers:?}");
        assert_eq!(header(&res, "x-authara-redirect"), None, "only nginx mode names a redirect");
    }
    let hx = ask(&c, "", "GET", APP, "/api/items", &[("hx-request", "true")]).await;
    assert_eq!(header(&hx, "hx-redirect"), Some(login), "HTMX follows HX-Redirect");
    c.set_cookie("authara_access", "not-a-token");
    assert_eq!(ask(&c, "", "GET", APP, "/api/items", &[FETCH]).await.status, 401, "a bad token is no session");
}

async fn an_expired_access_token_goes_through_the_refresh_page(engine: Engine) {
    let app = start(engine).await;
    let c = app.signed_in("ada@example.com", PW).await;
    let old_access = c.cookie("authara_access").unwrap();
    app.clock.advance(app.config.jwt.access_ttl + Duration::from_secs(1));
    let original = format!("http://{APP}/reports?q=1");
    let res = ask(&c, "", "GET", APP, "/reports?q=1", &[FETCH]).await;
    assert_eq!((res.status, res.location()), (401, Some(login_for(&original))), "a script refreshes itself");
    let res = ask(&c, "", "GET", APP, "/reports?q=1", &[NAVIGATE]).await;
    let refresh =
        format!("{PUBLIC}/auth/sessions/refresh?return_to={}", authara::services::return_to::encode(&original));
    assert_eq!((res.status, res.location()), (302, Some(refresh.clone())));

    let page = c.get(refresh.strip_prefix(PUBLIC).unwrap()).await;
    assert_eq!((page.status, page.location()), (303, Some(original)), "{}", page.text());
    assert!(page.set_cookie("authara_access").unwrap().contains("Domain=.example.test"));
    assert_ne!(c.cookie("authara_access").unwrap(), old_access, "a new access token");
    assert_eq!(ask(&c, "", "GET", APP, "/reports?q=1", &[NAVIGATE]).await.status, 200);

    // A refresh token that is no good ends at the login page, its cookies cleared.
    c.remove_cookie("authara_access");
    c.set_cookie("authara_refresh", "spent");
    let page = c.get("/auth/sessions/refresh?return_to=http%3A%2F%2Fapp.example.test%2F").await;
    assert_eq!(
        page.location(),
        Some(format!("/auth/login?return_to={}", authara::services::return_to::encode("http://app.example.test/")))
    );
    assert_eq!(c.cookie("authara_refresh"), None);
}

async fn rules_allow_and_refuse(engine: Engine) {
    let app = start(engine).await;
    let member = app.signed_in("member@example.com", PW).await;
    let org = member.get("/auth/api/v1/organizations/current").await.json()["id"].as_str().unwrap().to_owned();
    let admin = crate::admin::console::admin(&app, "root@example.com").await;

    let status = |c: &TestClient, q: &str| {
        let (c, q) = (c.clone(), q.to_owned());
        async move { ask(&c, &q, "GET", APP, "/", &[FETCH]).await.status }
    };
    assert_eq!(status(&member, "?role=admin").await, 403);
    let allowed = ask(&admin, "?role=admin", "GET", APP, "/", &[FETCH]).await;
    assert_eq!((allowed.status, header(&allowed, "remote-groups").as_deref()), (200, Some("admin")));
    assert_eq!(status(&member, &format!("?org={org}")).await, 200);
    assert_eq!(status(&admin, &format!("?org={org}")).await, 403, "another organization");
    assert_eq!(status(&member, "?org_role=owner").await, 200, "owner of the personal organization");
    assert_eq!(status(&member, &format!("?org={org}&org_role=member")).await, 200, "owners rank above members");
    assert_eq!(status(&member, "?mfa=1").await, 403, "a password-only session");
    let page = ask(&member, "?role=admin", "GET", APP, "/", &[NAVIGATE]).await;
    assert_eq!(page.status, 403);
    assert!(page.text().contains("Not allowed"), "a browser gets a page");
    for typo in ["?rol=admin", "?role=admins", "?org=acme", "?mfa=yes", "?mode=ngnix", "?role=admin&role=admin"] {
        assert_eq!(status(&admin, typo).await, 403, "{typo}: a typo never opens a route");
        assert_eq!(status(&app.client(), typo).await, 403, "{typo}: not even a redirect");
    }
}

async fn a_second_factor_rule_accepts_a_session_that_used_one(engine: Engine) {
    let app = TestApp::start_with(engine, &[SITES[0], SITES[1], SITES[2], crate::mfa::NO_LIMIT]).await;
    let (_, factor) = crate::mfa::protected(&app, "ada@example.com").await;
    let (c, challenge) = crate::mfa::waiting(&app, "ada@example.com").await;
    assert_eq!(crate::mfa::second(&c, &challenge, &factor.next(&app)).await.status, 200);
    assert_eq!(ask(&c, "?mfa=1", "GET", APP, "/", &[FETCH]).await.status, 200);
}

async fn forwarded_headers_are_heard_from_trusted_proxies_only(engine: Engine) {
    let app = start(engine).await;
    let c = app.signed_in("ada@example.com", PW).await;
    let res = c.send(Method::GET, "/auth/verify", None, &[NAVIGATE]).await;
    assert_eq!((res.status, res.error_code()), (400, "invalid_request".to_owned()), "no forwarded headers");
    for (host, uri) in [("app.example.test", "relative"), ("a.test, b.test", "/"), ("app.example.test", "/a b")] {
        let res = ask(&c, "", "GET", host, uri, &[]).await;
        assert_eq!(res.status, 400, "{host} {uri}: malformed is never a 2xx");
    }
    let elsewhere = TestApp::start_with(engine, &[SITES[0], ("AUTHARA_TRUSTED_PROXIES", "192.0.2.0/24")]).await;
    let c = elsewhere.signed_in("ada@example.com", PW).await;
    let res = ask(&c, "", "GET", APP, "/", &[]).await;
    assert_eq!(res.status, 400, "loopback is not one of the listed proxies");
}

async fn nginx_mode_never_redirects(engine: Engine) {
    let app = start(engine).await;
    let c = app.client();
    let nginx = |extra: &'static [(&'static str, &'static str)]| {
        let c = c.clone();
        async move {
            let mut headers = vec![("x-original-method", "GET"), ("x-original-url", "http://app.example.test/p?q=1")];
            headers.extend_from_slice(extra);
            c.send(Method::GET, "/auth/verify?mode=nginx", None, &headers).await
        }
    };
    let res = nginx(&[NAVIGATE]).await;
    let login = login_for("http://app.example.test/p?q=1");
    assert_eq!((res.status, res.location()), (401, Some(login.clone())));
    assert_eq!(header(&res, "x-authara-redirect"), Some(login));
    let res = nginx(&[FETCH]).await;
    assert_eq!((res.status, header(&res, "x-authara-redirect")), (401, None), "a script is not sent anywhere");
    // The client's own X-Forwarded-* are not read in nginx mode (nginx passes them through).
    let res = c
        .send(
            Method::GET,
            "/auth/verify?mode=nginx",
            None,
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", APP),
                ("x-forwarded-uri", "/"),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
}

async fn a_bearer_token_is_enough(engine: Engine) {
    let app = start(engine).await;
    let c = app.signed_in("ada@example.com", PW).await;
    let token = c.cookie("authara_access").unwrap();
    let api = app.client();
    let bearer = format!("Bearer {token}");
    let res = ask(&api, "", "GET", APP, "/api/x", &[("authorization", &bearer)]).await;
    assert_eq!((res.status, header(&res, "remote-email").as_deref()), (200, Some("ada@example.com")));
    let res = ask(&api, "", "GET", APP, "/api/x", &[("authorization", "Bearer forged"), NAVIGATE]).await;
    assert_eq!(res.status, 302, "a bad bearer token is no session");
}

async fn signing_out_of_a_protected_app_returns_to_it(engine: Engine) {
    let app = start(engine).await;
    let c = app.signed_in("ada@example.com", PW).await;
    let back = authara::services::return_to::encode("http://app.example.test/");
    let page = c.get(&format!("/auth/sessions/logout?return_to={back}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Sign out"));
    let res = c.form(&format!("/auth/sessions/logout?return_to={back}"), &[]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("http://app.example.test/")));
    let cleared = res.set_cookies();
    assert!(cleared.iter().any(|s| s.starts_with("authara_refresh=;") && s.contains("Domain=.example.test")));
    assert_eq!(ask(&c, "", "GET", APP, "/", &[NAVIGATE]).await.status, 302, "signed out");
    let again = c.get(&format!("/auth/sessions/logout?return_to={back}")).await;
    assert_eq!(again.location().as_deref(), Some("http://app.example.test/"), "nothing to sign out of");
    let evil = c.get("/auth/sessions/logout?return_to=https%3A%2F%2Fevil.test%2F").await;
    assert_eq!(evil.location().as_deref(), Some("/"), "never another site");
}

on_both_engines!(
    a_signed_in_browser_gets_every_identity_header,
    a_navigation_without_a_session_is_sent_to_sign_in_and_back,
    scripts_get_401_with_the_login_url,
    an_expired_access_token_goes_through_the_refresh_page,
    rules_allow_and_refuse,
    a_second_factor_rule_accepts_a_session_that_used_one,
    forwarded_headers_are_heard_from_trusted_proxies_only,
    nginx_mode_never_redirects,
    a_bearer_token_is_enough,
    signing_out_of_a_protected_app_returns_to_it,
);

/// Warm, the check reads nothing from the database: it answers with the database gone.
#[tokio::test]
async fn a_warm_check_reads_no_database() {
    let app = start(Engine::Postgres).await;
    let c = app.signed_in("ada@example.com", PW).await;
    assert_eq!(ask(&c, "", "GET", APP, "/", &[FETCH]).await.status, 200);
    app.db.take_down().await;
    for _ in 0..3 {
        let res = ask(&c, "?org_role=member", "GET", APP, "/", &[FETCH]).await;
        assert_eq!((res.status, header(&res, "remote-email").as_deref()), (200, Some("ada@example.com")));
    }
}
