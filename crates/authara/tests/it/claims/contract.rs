//! README: "every response of the test suite is checked against" `contract/openapi.yaml`. That
//! includes 403 answers and calls made without `TestClient`: raw reqwest answers go through the
//! same validator, and the validator has teeth (it refuses what the contract does not declare).

use serde_json::json;

use super::checked;
use crate::app::TestApp;
use crate::contract::validate;
use crate::harness::{Engine, client, on_both_engines};

const PW: &str = "violet-harbor-tangent";

/// `validate` panics on this answer.
fn rejected(method: &str, path: &str, status: u16, body: &serde_json::Value) -> bool {
    let bytes = body.to_string().into_bytes();
    std::panic::catch_unwind(|| validate(method, path, status, Some("application/json"), &bytes)).is_err()
}

async fn a_csrf_refusal_is_a_403_the_contract_declares(engine: Engine) {
    let app = TestApp::start(engine).await;
    let res = client()
        .post(format!("{}/auth/api/v1/login", app.base))
        .header("content-type", "application/json")
        .body(json!({"email": "nobody@example.com", "password": PW}).to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = checked("POST", "/auth/api/v1/login", res).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));

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
    let (status, csrf) =
        checked("GET", "/auth/api/v1/csrf", http.get(url("/auth/api/v1/csrf")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let token = csrf["csrf_token"].as_str().unwrap().to_owned();

    let res = http
        .post(url("/auth/api/v1/signup/direct"))
        .header("cookie", format!("authara_csrf={token}"))
        .header("x-csrf-token", &token)
        .header("content-type", "application/json")
        .body(json!({"email": "raw@example.com", "password": PW}).to_string())
        .send()
        .await
        .unwrap();
    let (status, session) = checked("POST", "/auth/api/v1/signup/direct", res).await;
    assert_eq!(status, 201, "{session}");

    let access = session["access_token"].as_str().unwrap();
    for path in ["/auth/api/v1/user", "/auth/api/v1/organizations/current", "/auth/api/v1/capabilities"] {
        let res = http.get(url(path)).header("cookie", format!("authara_access={access}")).send().await.unwrap();
        assert_eq!(checked("GET", path, res).await.0, 200, "{path}");
    }
    let res = http.get(url("/auth/api/v1/user")).send().await.unwrap();
    assert_eq!(checked("GET", "/auth/api/v1/user", res).await.0, 401);
}

on_both_engines!(a_csrf_refusal_is_a_403_the_contract_declares, raw_reqwest_api_calls_are_validated_too);
