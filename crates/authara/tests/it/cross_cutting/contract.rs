//! README: "every response of the test suite is checked against" `contract/openapi.yaml`. That
//! includes 403 answers and calls made without `TestClient`: raw reqwest answers go through the
//! same validator (`app::send_checked`), no test sends a request any other way, and the
//! validator has teeth (it refuses what the contract does not declare).
//! Unknown routes and methods answer the contract's envelope too.
use reqwest::Method;
use serde_json::json;

use crate::app::{TestApp, send_checked};
use crate::contract::validate;
use crate::harness::PW;
use crate::harness::{Engine, client, on_both_engines};

/// `validate` panics on this answer.
fn rejected(method: &str, path: &str, status: u16, body: &serde_json::Value) -> bool {
    let bytes = body.to_string().into_bytes();
    std::panic::catch_unwind(|| validate(method, path, status, Some("application/json"), &bytes)).is_err()
}

async fn a_csrf_refusal_is_a_403_the_contract_declares(engine: Engine) {
    let app = TestApp::start(engine).await;
    let res = send_checked(
        client()
            .post(format!("{}/auth/api/v1/login", app.base))
            .header("content-type", "application/json")
            .body(json!({"email": "nobody@example.com", "password": PW}).to_string()),
    )
    .await;
    let body = res.json();
    assert_eq!((res.status, &body["error"]["code"]), (403, &json!("forbidden")));

    // The same validator refuses a 403 in another code, and a status login does not declare.
    let mut wrong = body.clone();
    wrong["error"]["code"] = json!("unauthorized");
    assert!(rejected("POST", "/auth/api/v1/login", 403, &wrong), "a 403 must say forbidden");
    assert!(rejected("POST", "/auth/api/v1/login", 418, &body), "418 is not declared for login");
    assert!(rejected("GET", "/auth/api/v1/user", 200, &json!({"email": "x@example.com"})), "missing fields");
}

async fn raw_reqwest_api_calls_are_validated_too(engine: Engine) {
    let app = TestApp::start(engine).await;
    let http = client();
    let url = |p: &str| format!("{}{p}", app.base);
    let csrf = send_checked(http.get(url("/auth/api/v1/csrf"))).await;
    assert_eq!(csrf.status, 200);
    let token = csrf.json()["csrf_token"].as_str().unwrap().to_owned();

    let res = send_checked(
        http.post(url("/auth/api/v1/signup/direct"))
            .header("cookie", format!("authara_csrf={token}"))
            .header("x-csrf-token", &token)
            .header("content-type", "application/json")
            .body(json!({"email": "raw@example.com", "password": PW}).to_string()),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());

    let access = res.json()["access_token"].as_str().unwrap().to_owned();
    for path in ["/auth/api/v1/user", "/auth/api/v1/organizations/current", "/auth/api/v1/capabilities"] {
        let res = send_checked(http.get(url(path)).header("cookie", format!("authara_access={access}"))).await;
        assert_eq!(res.status, 200, "{path}");
    }
    assert_eq!(send_checked(http.get(url("/auth/api/v1/user"))).await.status, 401);

    // The gate has teeth for raw requests too: an answer the contract does not declare (here a
    // 200 without the fields `GET /user` requires, from a stand-in server) fails the test.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/auth/api/v1/user", axum::routing::get(|| async { axum::Json(json!({"email": "x@example.com"})) }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let checked = tokio::spawn(send_checked(client().get(format!("{fake}/auth/api/v1/user"))));
    assert!(matches!(checked.await, Err(e) if e.is_panic()), "an undeclared answer is refused");
}

/// Every `.rs` file of the suite, with its path relative to `tests/it`.
fn suite_sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// No request of the suite skips the gate: reqwest's own `send` (which hands back an unchecked
/// answer) appears nowhere; requests go through `TestClient` or `app::send_checked`.
#[test]
fn no_test_sends_a_request_around_the_contract_check() {
    let sources = suite_sources();
    assert!(sources.iter().any(|(name, _)| name == "app.rs"), "the suite's sources were found");
    let needle = [".send", "()"].concat();
    let bypasses: Vec<String> = sources
        .iter()
        .flat_map(|(name, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.contains(&needle))
                .map(move |(i, line)| format!("{name}:{}: {}", i + 1, line.trim()))
        })
        .collect();
    assert!(bypasses.is_empty(), "use app::send_checked (or TestClient) instead of reqwest's send: {bypasses:#?}");
}

async fn unknown_routes_and_methods_answer_the_envelope(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.client();
    let res = c.get("/auth/api/v1/nope").await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"));
    let res = c.send(Method::DELETE, "/auth/api/v1/login", None, &[]).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.json()["error"]["code"], "method_not_allowed");
}

on_both_engines!(
    a_csrf_refusal_is_a_403_the_contract_declares,
    raw_reqwest_api_calls_are_validated_too,
    unknown_routes_and_methods_answer_the_envelope,
);
