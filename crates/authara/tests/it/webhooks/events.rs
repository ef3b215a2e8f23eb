//! Domain events: every change records its event in the change's own transaction.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

/// A public event of `contract/webhooks.yaml`, or an internal one that sends mail: a change, as
/// opposed to the facts recorded for the audit log (sign-ins, sessions ended, credentials).
pub fn is_change(kind: &str) -> bool {
    use authara::domain::EventType;
    let t = EventType::parse(kind).unwrap();
    t.is_public() || matches!(t, EventType::CodeIssued | EventType::EmailChangeRequested)
}

async fn kinds(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    let events = app.store.events_since(0, 1000).await.unwrap();
    events
        .into_iter()
        .filter(|e| is_change(&e.kind))
        .map(|e| (e.kind, serde_json::from_str(&e.data).unwrap()))
        .collect()
}

async fn account_changes_record_their_events(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("ev@example.com", PW).await;
    let user = app.store.user_by_email(&crate::app::email("ev@example.com")).await.unwrap().unwrap();
    let uid = json!(user.id);
    let got = kinds(&app).await;
    let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["organization.created", "organization.membership.created", "user.created"]);
    assert_eq!(got[2].1, json!({"user_id": uid}));
    assert_eq!(got[0].1["created_by_user_id"], uid);
    assert_eq!(got[0].1["kind"], "team", "single mode creates a team organization");
    assert_eq!(got[1].1["is_initial_membership"], true);
    assert_eq!(got[1].1["role"], "owner");
    assert_eq!(got[1].1["organization_id"], got[0].1["organization_id"]);

    // A refused signup (the email is taken) rolls back and records nothing.
    let other = app.csrf_client().await;
    let res = other
        .json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "ev@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(kinds(&app).await.len(), 3);

    let res = c
        .json(
            Method::PUT,
            "/auth/api/v1/users/password",
            &json!({"password": "copper-lantern-meadow", "current_password": PW}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    let got = kinds(&app).await;
    assert_eq!(got.last().unwrap(), &("user.updated".to_owned(), json!({"user_id": uid})));
    assert_eq!(got.len(), 4);
}

on_both_engines!(account_changes_record_their_events);
