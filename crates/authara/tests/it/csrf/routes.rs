//! README: `authara_csrf` is a double-submit cookie, sent back as `X-CSRF-Token`. Proven for
//! EVERY state-changing route, read from the route table itself at test time, so a route added
//! later is covered (or fails here) without anyone remembering to list it. The exemptions,
//! `POST /auth/api/v1/tokens/refresh` (token in the body, no cookies) and the internal API
//! (`/auth/internal/`, a bearer token, no cookies), are asserted to be the only ones.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, client, on_both_engines};

use crate::harness::PW;
const EMAIL: &str = "csrf-table@example.com";
const EXEMPT: (&str, &str) = ("POST", "/auth/api/v1/tokens/refresh");

/// Every `(METHOD, path template)` of `src/http/routes.rs` whose method router has `post(`,
/// `put(`, `patch(` or `delete(`, in file order. A `.route(…)` may span lines and chain several
/// methods (`get(a).post(b)`).
fn state_changing_routes() -> Vec<(Method, String)> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/routes.rs");
    let text = std::fs::read_to_string(file).unwrap();
    let mut routes = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(".route(") {
        let after = &rest[start + ".route(".len()..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, ch)| {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced parentheses in routes.rs");
        let args = &after[..end];
        let path = args.split('"').nth(1).expect("a route path literal");
        let methods = &args[args.find(',').expect("a method router after the path")..];
        for (call, method) in
            [("post(", Method::POST), ("put(", Method::PUT), ("patch(", Method::PATCH), ("delete(", Method::DELETE)]
        {
            let called = methods.match_indices(call).any(|(i, _)| {
                !methods[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if called {
                routes.push((method, path.to_owned()));
            }
        }
        rest = &after[end..];
    }
    routes
}

/// The concrete path: every `{param}` replaced by a random UUID.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(
            |seg| {
                if seg.starts_with('{') && seg.ends_with('}') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    seg.to_owned()
                }
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

fn is_api(path: &str) -> bool {
    path.starts_with("/auth/api/")
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    set_cookies: Vec<String>,
}

/// One raw request with exactly these cookies and CSRF header (no jar, no echo). The body would
/// do harm if the check were skipped: the account's email as a deletion confirmation, its
/// password as the current one.
async fn send(
    base: &str,
    method: &Method,
    path: &str,
    cookies: &HashMap<String, String>,
    csrf_header: Option<&str>,
) -> Answer {
    let mut req = client().request(method.clone(), format!("{base}{path}"));
    let cookie = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    if let Some(token) = csrf_header {
        req = req.header("x-csrf-token", token);
    }
    req = if is_api(path) {
        req.header("content-type", "application/json").body(
            json!({"email": EMAIL, "password": PW, "current_password": PW, "new_password": "copper-lantern-meadow"})
                .to_string(),
        )
    } else {
        let enc = |s: &str| authara::services::return_to::encode(s);
        req.header("content-type", "application/x-www-form-urlencoded").body(format!(
            "email={e}&password={PW}&current_password={PW}&new_password=copper-lantern-meadow&confirm={e}\
             &username=renamed_user&new_email=elsewhere%40example.com",
            e = enc(EMAIL)
        ))
    };
    let res = crate::app::send_checked(req).await;
    let content_type = res.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    Answer { status: res.status, content_type, set_cookies: res.set_cookies(), body: res.body }
}

/// A refusal: 403 in the API's `forbidden` envelope (checked against the contract by `send`, as
/// every answer), or the HTML 403 page; and no session cookie was set.
fn assert_refused(method: &Method, path: &str, case: &str, a: &Answer) {
    let what = format!("{method} {path} {case}");
    assert_eq!(a.status, 403, "{what}: {}", String::from_utf8_lossy(&a.body));
    if is_api(path) {
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["error"]["code"], "forbidden", "{what}");
    } else {
        assert!(a.content_type.starts_with("text/html"), "{what}: {}", a.content_type);
        assert!(String::from_utf8_lossy(&a.body).contains("Not allowed"), "{what}: the 403 page");
    }
    assert!(
        !a.set_cookies.iter().any(|c| c.starts_with("authara_access=") || c.starts_with("authara_refresh=")),
        "{what}: nothing was done: {:?}",
        a.set_cookies
    );
}

/// The route table is read right: known state-changing routes are found, GET-only ones are not.
#[test]
fn the_route_table_yields_the_state_changing_routes() {
    let routes = state_changing_routes();
    for (m, p) in [
        (Method::POST, "/auth/api/v1/login"),
        (Method::PUT, "/auth/api/v1/users/password"),
        (Method::POST, "/auth/login"),
        (Method::POST, "/auth/sessions/{id}/revoke"),
        (Method::POST, "/auth/user/delete"),
    ] {
        assert!(routes.iter().any(|(rm, rp)| *rm == m && rp == p), "the parser found {m} {p}: {routes:?}");
    }
    assert!(!routes.iter().any(|(_, p)| p == "/auth/api/v1/user"), "GET-only routes are not state-changing");
}

async fn every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(engine: Engine) {
    let routes = state_changing_routes();
    // The organization management routes exist only with the flag on (404 before CSRF otherwise).
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", "true"),
            ("AUTHARA_INTERNAL_API_TOKEN", crate::app::INTERNAL_TOKEN),
        ],
    )
    .await;
    let c = app.signed_in(EMAIL, PW).await;
    let jar = c.jar.lock().unwrap().clone();
    let token = jar["authara_csrf"].clone();
    let without_csrf_cookie: HashMap<String, String> =
        jar.iter().filter(|(k, _)| *k != "authara_csrf").map(|(k, v)| (k.clone(), v.clone())).collect();

    let mut exempt = Vec::new();
    let mut wrong_bearers = 0;
    for (method, template) in &routes {
        let path = concrete(template);
        let none = send(&app.base, method, &path, &jar, None).await;
        if none.status != 403 {
            if template.starts_with("/auth/internal/") {
                // Cookies and CSRF tokens are no credentials there: only the bearer token is.
                let with_csrf = send(&app.base, method, &path, &jar, Some(&token)).await;
                assert_eq!((none.status, with_csrf.status), (401, 401), "{method} {template}");
                // These count as wrong bearer tokens (ten per IP per five minutes): past the
                // window before the limit, once (the session's tokens must stay valid).
                wrong_bearers += 2;
                if wrong_bearers == 10 {
                    app.clock.advance(std::time::Duration::from_secs(301));
                    wrong_bearers = 0;
                }
            }
            exempt.push((method.to_string(), template.clone()));
            continue;
        }
        assert_refused(method, &path, "without any token", &none);
        let forged = send(&app.base, method, &path, &jar, Some("forged")).await;
        assert_refused(method, &path, "with a wrong X-CSRF-Token", &forged);
        let no_cookie = send(&app.base, method, &path, &without_csrf_cookie, Some(&token)).await;
        assert_refused(method, &path, "with a header but no authara_csrf cookie", &no_cookie);
        let query = send(&app.base, method, &format!("{path}?csrf_token=forged"), &jar, None).await;
        assert_refused(method, &path, "with a wrong ?csrf_token=", &query);
    }
    let internal =
        routes.iter().filter(|(_, p)| p.starts_with("/auth/internal/")).map(|(m, p)| (m.to_string(), p.clone()));
    let expected: Vec<(String, String)> =
        std::iter::once((EXEMPT.0.to_owned(), EXEMPT.1.to_owned())).chain(internal).collect();
    assert!(expected.len() > 1, "the internal API is in the route table");
    assert_eq!(exempt, expected, "tokens/refresh and the internal API are the only state-changing routes without CSRF");

    // Nothing happened: same account, same password, still signed in.
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], EMAIL);
    assert_eq!(app.store.user_count().await.unwrap(), 1);
    let fresh = app.csrf_client().await;
    let res = fresh.json(Method::POST, "/auth/api/v1/login", &json!({"email": EMAIL, "password": PW})).await;
    assert_eq!(res.status, 200, "the password is unchanged");
}

/// The exemption works as the README says: the refresh token in the body, no cookies at all.
async fn the_exempt_refresh_takes_its_token_in_the_body_without_cookies(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in(EMAIL, PW).await;
    let refresh = c.cookie("authara_refresh").unwrap();
    let res = crate::app::send_checked(
        client()
            .post(format!("{}{}", app.base, EXEMPT.1))
            .header("content-type", "application/json")
            .body(json!({"refresh_token": refresh}).to_string()),
    )
    .await;
    assert_eq!(res.status, 200);
    assert!(res.json()["refresh_token"].is_string(), "{}", res.text());
}

async fn a_valid_csrf_token_in_the_query_string_is_accepted(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in(EMAIL, PW).await;
    let jar = c.jar.lock().unwrap().clone();
    let token = jar["authara_csrf"].clone();
    let res =
        send(&app.base, &Method::POST, &format!("/auth/api/v1/sessions/logout?csrf_token={token}"), &jar, None).await;
    assert_eq!(res.status, 204, "{}", String::from_utf8_lossy(&res.body));
    let replay = app.client();
    replay.set_cookie("authara_access", &jar["authara_access"]);
    assert_eq!(replay.get("/auth/api/v1/user").await.status, 401, "the logout took effect");
}

on_both_engines!(
    every_state_changing_route_refuses_a_missing_or_wrong_csrf_token,
    the_exempt_refresh_takes_its_token_in_the_body_without_cookies,
    a_valid_csrf_token_in_the_query_string_is_accepted,
);
