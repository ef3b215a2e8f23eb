//! Webhooks through the real server against a local receiver that verifies signatures as the
//! contract describes and checks every body against `contract/webhooks.yaml`: every event we
//! emit (the others are listed in `NEVER_EMITTED`, with why), retries with backoff, failures,
//! redelivery, crashes, two instances.

use std::time::Duration;

use authara::worker::webhooks::{Outcome, run_once};
use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, Server, TestDb, on_both_engines};
use crate::receiver::{Answer, Receiver, SECRET};

use crate::app::drain_webhooks as drain;
use crate::harness::PW;

/// A signup's events arrive signed, with the contract's envelope, headers and data.
async fn signup_events_arrive_signed_with_the_contracts_envelope(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_with_env(engine, &receiver.env(), &[]).await;
    app.signed_in("hooked@example.com", PW).await;
    let user = app.store.user_by_email(&crate::app::email("hooked@example.com")).await.unwrap().unwrap();
    let uid = json!(user.id);
    assert_eq!(drain(&app).await.len(), 3);
    let got = receiver.deliveries();
    let types: Vec<&str> = got.iter().map(|d| d.header("x-authara-event")).collect();
    assert_eq!(types, ["organization.created", "organization.membership.created", "user.created"]);
    for d in &got {
        assert!(d.verify(SECRET), "signature of {}", d.header("x-authara-event"));
        assert!(!d.verify("another-secret-another-secret-xx"));
        let body = d.json();
        assert_eq!(body["id"], d.header("x-authara-delivery"));
        assert_eq!(body["type"], d.header("x-authara-event"));
        assert_eq!(d.header("content-type"), "application/json");
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(got[2].json()["data"], json!({"user_id": uid}));
    let org = got[0].json()["data"].clone();
    assert_eq!(org["created_by_user_id"], uid);
    assert_eq!(org["kind"], "team");
    let m = got[1].json()["data"].clone();
    assert_eq!(
        m,
        json!({"organization_id": org["organization_id"], "user_id": uid, "role": "owner",
        "is_initial_membership": true, "invitation_id": null, "metadata": {}})
    );
}

/// Every user event of the contract arrives once, signed: user.updated for a username (page)
/// and a password (API), user.deleted with the account's organization.
async fn every_user_event_arrives_once_and_signed(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_with_env(engine, &receiver.env(), &[]).await;
    let c = app.signed_in("hooked@example.com", PW).await;
    assert_eq!(drain(&app).await.len(), 3);
    assert_eq!(c.form("/auth/user/username", &[("username", "hooked-name")]).await.status, 303);
    assert_eq!(
        c.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": "copper-lantern-meadow"})).await.status,
        204
    );
    let c = app.csrf_client().await;
    let login = json!({"email": "hooked@example.com", "password": "copper-lantern-meadow"});
    assert_eq!(c.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);
    assert_eq!(c.form("/auth/user/delete", &[("confirm", "hooked@example.com")]).await.status, 303);
    drain(&app).await;
    let types: Vec<String> =
        receiver.deliveries().iter().skip(3).map(|d| d.header("x-authara-event").to_owned()).collect();
    // The deletion takes the account's organization (a team without other members) with it.
    assert_eq!(
        types,
        ["user.updated", "user.updated", "organization.membership.deleted", "organization.deleted", "user.deleted"]
    );
    assert!(receiver.deliveries().iter().all(|d| d.verify(SECRET)));
    let user_events: std::collections::BTreeSet<String> = receiver
        .deliveries()
        .iter()
        .map(|d| d.header("x-authara-event").to_owned())
        .filter(|t| t.starts_with("user."))
        .collect();
    assert_eq!(user_events, emitted_types("user."), "every user event of the contract, each matching its payload");
    let ids: std::collections::HashSet<String> =
        receiver.deliveries().iter().map(|d| d.header("x-authara-delivery").to_owned()).collect();
    assert_eq!(ids.len(), 8, "one delivery per event");
}

/// A refused change (a taken email) is rolled back and sends nothing.
async fn a_refused_change_sends_nothing(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_with_env(engine, &receiver.env(), &[]).await;
    let other = app.csrf_client().await;
    app.signed_in("again@example.com", PW).await;
    drain(&app).await;
    let before = receiver.deliveries().len();
    let res = other
        .json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "again@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 400);
    assert!(drain(&app).await.is_empty());
    assert_eq!(receiver.deliveries().len(), before, "a rolled-back change sends nothing");
}

/// `AUTHARA_WEBHOOK_ENABLED_EVENTS` filters what is delivered.
async fn only_enabled_events_are_delivered(engine: Engine) {
    let receiver = Receiver::start().await;
    let app =
        TestApp::start_with_env(engine, &receiver.env(), &[("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created")]).await;
    app.signed_in("filtered@example.com", PW).await;
    drain(&app).await;
    let types: Vec<String> = receiver.deliveries().iter().map(|d| d.header("x-authara-event").to_owned()).collect();
    assert_eq!(types, ["user.created"]);
}

/// A failing receiver is retried on the configured schedule with the same delivery id until it
/// recovers; a 4xx fails at once, stays visible, and is redelivered by hand.
async fn failures_are_retried_then_visible_and_redeliverable(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_with_env(
        engine,
        &receiver.env(),
        &[("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"), ("AUTHARA_WEBHOOK_RETRY_DELAYS", "30s,2m")],
    )
    .await;
    receiver.then(&[Answer::Status(500), Answer::Status(503)]);
    app.signed_in("flaky@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Retrying]);
    app.clock.advance(Duration::from_secs(29));
    assert!(drain(&app).await.is_empty(), "not before the first delay");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(drain(&app).await, [Outcome::Retrying]);
    app.clock.advance(Duration::from_secs(119));
    assert!(drain(&app).await.is_empty(), "the second delay is 2 minutes");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(drain(&app).await, [Outcome::Delivered]);
    let got = receiver.deliveries();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|d| d.header("x-authara-delivery") == got[0].header("x-authara-delivery")), "same id");

    receiver.then(&[Answer::Status(404)]);
    app.signed_in("gone@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Failed], "a 4xx is not retried");
    let recent = app.services.webhooks().recent(10).await.unwrap();
    let failed = recent.iter().find(|d| d.status == authara::domain::DeliveryStatus::Failed).unwrap();
    assert_eq!((failed.attempt_count, failed.response_status), (1, Some(404)));
    assert!(failed.last_error.as_deref().unwrap().contains("404"));
    assert!(app.services.webhooks().redeliver(failed.id).await.unwrap());
    assert_eq!(drain(&app).await, [Outcome::Delivered]);
    let last = receiver.deliveries().last().unwrap().clone();
    assert_eq!(last.header("x-authara-delivery"), failed.id.to_string(), "redelivered under its id");
    let row = app.services.webhooks().delivery(failed.id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.response_status), ("delivered", Some(204)));
}

/// A 429 and a timeout are retried like a 5xx; while one of a user's events waits for its
/// retry, that user's later events wait behind it (one user's events arrive in order), and
/// another user's are not held up.
async fn a_429_and_a_timeout_are_retried_and_a_users_events_stay_in_order(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = TestApp::start_with_env(
        engine,
        &receiver.env(),
        &[
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created,user.updated"),
            ("AUTHARA_WEBHOOK_RETRY_DELAYS", "30s,30s,30s"),
            ("AUTHARA_WEBHOOK_TIMEOUT", "1s"),
        ],
    )
    .await;
    receiver.then(&[Answer::Status(429)]);
    let c = app.signed_in("order@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Retrying], "429 is retried");
    assert_eq!(c.form("/auth/user/username", &[("username", "order-two")]).await.status, 303);
    app.signed_in("elsewhere@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Delivered], "the other user's event only; this user's update waits");

    receiver.then(&[Answer::Hang]);
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(drain(&app).await, [Outcome::Retrying], "a timeout is retried");
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(drain(&app).await, [Outcome::Delivered, Outcome::Delivered], "then both, in order");

    let uid = app.store.user_by_email(&crate::app::email("order@example.com")).await.unwrap().unwrap().id.to_string();
    let theirs: Vec<String> = receiver
        .deliveries()
        .iter()
        .filter(|d| d.json()["data"]["user_id"] == uid.as_str())
        .map(|d| d.header("x-authara-event").to_owned())
        .collect();
    let first_update = theirs.iter().position(|t| t == "user.updated").expect("the update arrived");
    assert_eq!(theirs[..first_update].len(), 3, "the creation tried three times first: {theirs:?}");
    assert!(theirs[..first_update].iter().all(|t| t == "user.created"), "{theirs:?}");
    assert_eq!(&theirs[first_update..], ["user.updated"], "{theirs:?}");
}

/// Internal events are never delivered: with every event enabled, a signup by emailed code (its
/// internal event carries the code, sealed) and a sign-in send only the contract's events
/// (`Receiver::deliveries` refuses any other type), and no delivery carries the code.
async fn internal_events_are_never_delivered(engine: Engine) {
    let receiver = Receiver::start().await;
    let sink = crate::smtp::SmtpSink::start().await;
    let mail = sink.env();
    let extra = crate::app::settings(&mail, &[("AUTHARA_CHALLENGE_ENABLED", "true")]);
    let app = TestApp::start_with_env(engine, &receiver.env(), &extra).await;
    let c = app.csrf_client().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges", &json!({"email": "coded@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let challenge = res.json()["challenge_id"].as_str().unwrap().to_owned();
    crate::mfa::send_mail(&app).await;
    let code = sink.code_for("coded@example.com");
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": challenge, "code": code}))
        .await;
    assert!(res.status < 300, "{}", res.text());
    let d = app.csrf_client().await;
    let login = json!({"email": "coded@example.com", "password": PW});
    assert_eq!(d.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);
    drain(&app).await;

    let got = receiver.deliveries();
    let types: std::collections::BTreeSet<&str> = got.iter().map(|d| d.header("x-authara-event")).collect();
    assert!(types.contains("user.created"), "{types:?}");
    assert!(types.iter().all(|t| crate::contract::webhook_event_types().iter().any(|c| c == t)), "{types:?}");
    assert!(got.iter().all(|d| !String::from_utf8_lossy(&d.body).contains(&code)), "no delivery carries the code");
    let internal = app.db.texts("SELECT type FROM events").await;
    assert!(internal.iter().any(|t| !types.contains(t.as_str())), "internal events were recorded: {internal:?}");
    let data = app.db.texts("SELECT data FROM events").await;
    assert!(data.iter().all(|d| !d.contains(&code)), "the code is sealed in its event, never in clear");
}

/// Only 1 KiB of a receiver's answer is read: an answer whose body never ends neither holds the
/// worker until its timeout nor fills the delivery's record (a 200 is delivered at once; a 500
/// keeps at most 1 KiB of its body in `last_error`).
async fn only_a_kilobyte_of_an_answer_is_read(engine: Engine) {
    let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
    let answer = status.clone();
    let endless = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let code = answer.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
                let chunks = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                let body = axum::body::Body::from_stream(chunks);
                (axum::http::StatusCode::from_u16(code).unwrap(), body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, endless).await });
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_WEBHOOK_URL", &url),
            ("AUTHARA_WEBHOOK_SECRET", SECRET),
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
            ("AUTHARA_WEBHOOK_TIMEOUT", "3s"),
        ],
    )
    .await;
    app.signed_in("endless@example.com", PW).await;
    let started = std::time::Instant::now();
    assert_eq!(drain(&app).await, [Outcome::Delivered]);
    assert!(started.elapsed() < Duration::from_secs(2), "read to its end? {:?}", started.elapsed());

    status.store(500, std::sync::atomic::Ordering::SeqCst);
    app.signed_in("endless-too@example.com", PW).await;
    let started = std::time::Instant::now();
    assert_eq!(drain(&app).await, [Outcome::Retrying]);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let recent = app.services.webhooks().recent(10).await.unwrap();
    let error = recent.iter().find_map(|d| d.last_error.clone()).expect("the failure is recorded");
    assert!(error.starts_with("HTTP 500: xxx"), "{}", &error[..error.len().min(80)]);
    assert!(error.len() <= 1024 + 16, "{} bytes kept", error.len());
}

/// An unreachable receiver is a network error: retried, and exhausted attempts fail for good.
async fn an_unreachable_receiver_is_retried_then_fails(engine: Engine) {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/hooks");
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_WEBHOOK_URL", &url),
            ("AUTHARA_WEBHOOK_SECRET", SECRET),
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
            ("AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS", "2"),
            ("AUTHARA_WEBHOOK_RETRY_DELAYS", "1s"),
        ],
    )
    .await;
    app.signed_in("nowhere@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Retrying]);
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(drain(&app).await, [Outcome::Failed]);
    let row = &app.services.webhooks().recent(1).await.unwrap()[0];
    assert_eq!((row.status.as_str(), row.attempt_count, row.response_status), ("failed", 2, None));
}

/// The events of `contract/webhooks.yaml` we never send, each with its variant of
/// `DomainEvent` and why. `nothing_listed_as_never_emitted_is_made` fails as soon as the code
/// makes one: then take it off this list and deliver it in
/// `scenario_organization_events_arrive_with_the_contracts_data`, which checks every other event.
pub const NEVER_EMITTED: &[(&str, &str, &str)] = &[];

/// The contract's events of one family (`user.`, `organization.`), less those never emitted.
fn emitted_types(prefix: &str) -> std::collections::BTreeSet<String> {
    crate::contract::webhook_event_types()
        .into_iter()
        .filter(|t| t.starts_with(prefix) && !NEVER_EMITTED.iter().any(|(n, _, _)| n == t))
        .collect()
}

/// The "never emitted" list stays true: each entry is a contract event whose `DomainEvent`
/// variant nothing outside `services/events.rs` (where variants are declared and described)
/// constructs; and the contract's events are the ones `AUTHARA_WEBHOOK_ENABLED_EVENTS` accepts.
#[test]
fn nothing_listed_as_never_emitted_is_made() {
    let types = crate::contract::webhook_event_types();
    assert_eq!(types, authara::config::webhooks::WEBHOOK_EVENTS, "the contract's events are the configurable ones");
    // The payload check has teeth: a missing or extra field, a wrong type, an unknown event.
    let refused = |body: serde_json::Value| {
        std::panic::catch_unwind(|| crate::contract::validate_webhook(body.to_string().as_bytes())).is_err()
    };
    let envelope = |kind: &str, data: serde_json::Value| json!({"id": "d1", "type": kind, "created_at": "2025-01-01T00:00:00Z", "data": data});
    let uid = "0b7e8f0e-3c2a-4d5e-9f10-1a2b3c4d5e6f";
    assert!(!refused(envelope("user.created", json!({"user_id": uid}))), "the contract's shape passes");
    assert!(refused(envelope("user.created", json!({}))));
    assert!(refused(envelope("user.created", json!({"user_id": uid, "email": "x@example.com"}))));
    assert!(refused(envelope("user.created", json!({"user_id": "not-a-uuid"}))));
    assert!(refused(envelope("user.signed_in", json!({"user_id": uid}))), "internal events are not webhooks");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("services/events.rs") {
                files.push((
                    path.strip_prefix(&src).unwrap().display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }
    assert!(files.iter().any(|(_, text)| text.contains("DomainEvent::MembershipDeleted {")), "the scan sees makers");
    for (kind, variant, why) in NEVER_EMITTED {
        assert!(types.iter().any(|t| t == kind), "{kind} is a contract event");
        let maker = format!("DomainEvent::{variant} {{");
        let made_in: Vec<&str> =
            files.iter().filter(|(_, text)| text.contains(&maker)).map(|(name, _)| name.as_str()).collect();
        assert!(
            made_in.is_empty(),
            "{kind} is listed as never emitted ({why}) but {made_in:?} make it: take it off NEVER_EMITTED and \
             cover it in scenario_organization_events_arrive_with_the_contracts_data"
        );
    }
}

/// Every organization event of §11 reaches the receiver once, signed, with the contract's data.
async fn scenario_organization_events_arrive_with_the_contracts_data(engine: Engine) {
    use crate::internal::lifecycle::sdk;
    use crate::organizations::api::{invitation_id, invite, start, switch, team, token_of, user_id};
    let receiver = Receiver::start().await;
    let env = receiver.env();
    let app = start(engine, "multi", &crate::app::settings(&env, &[])).await;
    let owner = app.signed_in("owner@example.com", PW).await;
    let oid = user_id(&app, "owner@example.com").await;
    let org = team(&app, &oid, "Acme").await;
    let invited = invite(&app, &org, &oid, "joiner@example.com", "member").await;
    assert_eq!(invited.status, 201, "{}", invited.text());
    let c = app.csrf_client().await;
    let body = json!({"email": "joiner@example.com", "password": PW, "invitation_code": token_of(&invited)});
    let res = c.json(Method::POST, "/auth/api/v1/signup/direct", &body).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let other = invite(&app, &org, &oid, "later@example.com", "admin").await;
    assert_eq!(switch(&owner, &org).await.status, 200);
    let res =
        owner.json(Method::PATCH, &format!("/auth/api/v1/organizations/{org}"), &json!({"name": "Acme Inc"})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let revoke = format!("/auth/api/v1/organizations/{org}/invitations/{}/revoke", invitation_id(&other));
    let res = owner.send(Method::POST, &revoke, None, &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    // Ownership goes to the joiner and back (the internal API, as the Go SDK calls it): the
    // joiner is an admin now; they leave; the owner deletes the organization.
    let jid = user_id(&app, "joiner@example.com").await;
    assert_eq!(sdk::transfer(&app, &org, &oid, &jid).await.status, 204);
    assert_eq!(sdk::transfer(&app, &org, &jid, &oid).await.status, 204);
    let res = c.post(&format!("/auth/api/v1/organizations/{org}/leave")).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(sdk::delete_organization(&app, &org, &oid).await.status, 204);
    drain(&app).await;

    // Each body matches its event's payload in webhooks.yaml (`Receiver::deliveries` checks).
    let got = receiver.deliveries();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for d in &got {
        assert!(d.verify(SECRET));
        let kind = d.header("x-authara-event").to_owned();
        assert_eq!(d.json()["type"], kind.as_str());
        *seen.entry(kind).or_default() += 1;
    }
    let organization_events: std::collections::BTreeSet<String> =
        seen.keys().filter(|k| k.starts_with("organization.")).cloned().collect();
    assert_eq!(organization_events, emitted_types("organization."), "every organization event we emit, seen");
    for (kind, n) in [
        ("organization.created", 3),
        ("organization.updated", 1),
        ("organization.membership.created", 4),
        ("organization.invitation.created", 2),
        ("organization.invitation.accepted", 1),
        ("organization.invitation.revoked", 1),
        ("organization.membership.updated", 4),
        ("organization.membership.deleted", 2),
        ("organization.deleted", 1),
        ("user.created", 2),
    ] {
        assert_eq!(seen.get(kind).copied().unwrap_or(0), n, "{kind}: {seen:?}");
    }
    let joined = got
        .iter()
        .map(|d| d.json())
        .find(|b| b["type"] == "organization.membership.created" && b["data"]["is_initial_membership"] == false)
        .unwrap();
    assert_eq!(joined["data"]["organization_id"], org.as_str());
    assert_eq!(joined["data"]["invitation_id"], invitation_id(&invited).as_str());
    let updated = got.iter().map(|d| d.json()).find(|b| b["type"] == "organization.updated").unwrap();
    assert_eq!(updated["data"]["name"], "Acme Inc");
    let of = |kind: &str, user: &str| {
        got.iter().map(|d| d.json()).filter(|b| b["type"] == kind && b["data"]["user_id"] == user).collect::<Vec<_>>()
    };
    let roles = |kind: &str, user: &str| of(kind, user).iter().map(|b| b["data"]["role"].clone()).collect::<Vec<_>>();
    let mut joiner_roles = roles("organization.membership.updated", &jid);
    joiner_roles.sort_by_key(|r| r.to_string());
    assert_eq!(joiner_roles, [json!("admin"), json!("owner")], "the joiner became owner, then admin");
    let left = of("organization.membership.deleted", &jid);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["data"], json!({"organization_id": org, "user_id": jid, "role": "admin"}));
    let last = of("organization.membership.deleted", &oid);
    assert_eq!(last.len(), 1, "the deletion ends the owner's membership too");
    assert_eq!(last[0]["data"]["role"], "owner");
    let deleted = got.iter().map(|d| d.json()).find(|b| b["type"] == "organization.deleted").unwrap();
    assert_eq!(deleted["data"]["organization_id"], org.as_str());
}

/// A receiver that answers `POST /hooks` with a 307 to wherever `target` says, and records what
/// reaches `POST /moved`.
struct Redirector {
    url: String,
    addr: std::net::SocketAddr,
    target: std::sync::Arc<std::sync::Mutex<String>>,
    moved: std::sync::Arc<std::sync::Mutex<Vec<crate::receiver::Delivery>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Redirector {
    async fn start() -> Redirector {
        use axum::http::{HeaderMap, StatusCode, header::LOCATION};
        let target: std::sync::Arc<std::sync::Mutex<String>> = std::sync::Arc::default();
        let moved: std::sync::Arc<std::sync::Mutex<Vec<crate::receiver::Delivery>>> = std::sync::Arc::default();
        let (t, m) = (target.clone(), moved.clone());
        let app = axum::Router::new()
            .route(
                "/hooks",
                axum::routing::post(move || {
                    let to = t.lock().unwrap().clone();
                    async move { (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, to)]) }
                }),
            )
            .route(
                "/moved",
                axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                    m.lock().unwrap().push(crate::receiver::Delivery { headers, body });
                    async { StatusCode::NO_CONTENT }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Redirector { url: format!("http://{addr}/hooks"), addr, target, moved, _task: task }
    }

    fn redirect_to(&self, to: &str) {
        *self.target.lock().unwrap() = to.to_owned();
    }
}

/// A redirect is followed only to the configured URL's own origin (scheme, host and port): a
/// signed body never goes to another port or scheme of the same host; the delivery fails with
/// the redirect's status instead.
async fn redirects_never_leave_the_configured_origin(engine: Engine) {
    let elsewhere = Receiver::start().await;
    let hooks = Redirector::start().await;
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_WEBHOOK_URL", &hooks.url),
            ("AUTHARA_WEBHOOK_SECRET", SECRET),
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
        ],
    )
    .await;
    let port = hooks.addr.port();
    for (i, (to, what)) in [
        (elsewhere.url.clone(), "another port of the same host"),
        (format!("https://127.0.0.1:{port}/moved"), "another scheme"),
        (format!("http://localhost:{port}/moved"), "another host name"),
    ]
    .into_iter()
    .enumerate()
    {
        hooks.redirect_to(&to);
        app.signed_in(&format!("redirected{i}@example.com"), PW).await;
        assert_eq!(drain(&app).await, [Outcome::Failed], "{what}: not followed, and not retried");
        let row = &app.services.webhooks().recent(1).await.unwrap()[0];
        assert_eq!(row.response_status, Some(307), "{what}");
        assert!(row.last_error.as_deref().unwrap().starts_with("HTTP 307"), "{what}: {:?}", row.last_error);
    }
    assert!(elsewhere.deliveries().is_empty(), "nothing reached another port");
    assert!(hooks.moved.lock().unwrap().is_empty());

    // The same origin: followed, signed body and all.
    hooks.redirect_to("/moved");
    app.signed_in("followed@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Delivered]);
    let moved = hooks.moved.lock().unwrap().clone();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].verify(SECRET));
    crate::contract::validate_webhook(&moved[0].body);
}

/// A receiver's URL keeps its keys in the path or the query: a failed delivery records why it
/// failed (the console, `authara webhooks list`, the log) without them.
async fn failures_keep_the_urls_path_and_query_out_of_logs_and_the_console(engine: Engine) {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/in/k3y-in-path?token=qs-secret");
    let secrets = ["k3y-in-path", "qs-secret"];
    let settings = [
        ("AUTHARA_WEBHOOK_URL", url.as_str()),
        ("AUTHARA_WEBHOOK_SECRET", SECRET),
        ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
        ("AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS", "2"),
        ("AUTHARA_WEBHOOK_RETRY_DELAYS", "1s"),
    ];

    // The real server: its log lines and the command line.
    let db = TestDb::new(engine, true).await;
    let env = crate::harness::server_env(&db, &settings);
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    sign_up_on(&server, "leaky@example.com").await;
    let mut waited = 0;
    while server.logs().matches("webhook delivery failed").count() < 2 {
        assert!(waited < 200, "two failed attempts within 10 s: {}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let (exit, logs) = server.terminate().await;
    assert!(exit.success(), "{logs}");
    let (code, listed, err) = crate::harness::run_cli(&["webhooks", "list"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{err}");
    assert!(listed.contains("connection failed"), "the reason stays: {listed}");
    for s in secrets {
        assert!(!logs.contains(s), "{s} in the log: {logs}");
        assert!(!listed.contains(s), "{s} in `webhooks list`: {listed}");
    }

    // The console.
    let app = TestApp::start_with(engine, &settings).await;
    app.signed_in("leaky@example.com", PW).await;
    assert_eq!(drain(&app).await, [Outcome::Retrying]);
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    let admin = app.csrf_client().await;
    let res =
        admin.json(Method::POST, "/auth/api/v1/login", &json!({"email": "root@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    let page = admin.get("/auth/admin/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("connection failed"), "{}", page.text());
    for s in secrets {
        assert!(!page.text().contains(s), "{s} on the console");
    }
}

on_both_engines!(
    redirects_never_leave_the_configured_origin,
    failures_keep_the_urls_path_and_query_out_of_logs_and_the_console,
    scenario_organization_events_arrive_with_the_contracts_data,
    signup_events_arrive_signed_with_the_contracts_envelope,
    every_user_event_arrives_once_and_signed,
    a_refused_change_sends_nothing,
    only_enabled_events_are_delivered,
    failures_are_retried_then_visible_and_redeliverable,
    a_429_and_a_timeout_are_retried_and_a_users_events_stay_in_order,
    internal_events_are_never_delivered,
    only_a_kilobyte_of_an_answer_is_read,
    an_unreachable_receiver_is_retried_then_fails,
    a_delivery_interrupted_by_a_crash_is_delivered_after_restart,
);

/// The real binary on `db` with these settings.
async fn hooked_server(db: &TestDb, settings: &[(&str, &str)]) -> Server {
    Server::start(&["serve"], &crate::harness::server_env(db, settings), db.data_dir()).await
}

/// A direct signup on the real binary (`user.created`).
async fn sign_up_on(server: &Server, email: &str) {
    let script = crate::harness::Script::new(server).await;
    let (status, body) =
        script.post(server, "/auth/api/v1/signup/direct", &[], &json!({"email": email, "password": PW})).await;
    assert_eq!(status, 201, "{body}");
}

/// Deliveries go straight to the receiver whatever `HTTP_PROXY`/`HTTPS_PROXY` say: through a
/// proxy, the private-address check would see only the proxy's address.
#[tokio::test]
async fn deliveries_ignore_the_proxy_variables() {
    let receiver = Receiver::start().await;
    let db = TestDb::new(Engine::Sqlite, true).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let server = hooked_server(
        &db,
        &[
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
            ("AUTHARA_WEBHOOK_URL", receiver.url.as_str()),
            ("AUTHARA_WEBHOOK_SECRET", SECRET),
            ("HTTP_PROXY", dead.as_str()),
            ("HTTPS_PROXY", dead.as_str()),
            ("ALL_PROXY", dead.as_str()),
            ("http_proxy", dead.as_str()),
        ],
    )
    .await;
    sign_up_on(&server, "proxied@example.com").await;
    let mut waited = 0;
    while receiver.deliveries().is_empty() {
        assert!(waited < 100, "not delivered past the dead proxy: {}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let (exit, logs) = server.terminate().await;
    assert!(exit.success(), "{logs}");
}

/// Two instances sharing PostgreSQL never deliver one event twice.
#[tokio::test]
async fn two_instances_on_one_postgres_deliver_each_event_once() {
    let receiver = Receiver::start().await;
    let app = TestApp::start_with_env(Engine::Postgres, &receiver.env(), &[]).await;
    for i in 0..8 {
        app.signed_in(&format!("pair{i}@example.com"), PW).await;
    }
    // A slow receiver keeps each delivery in flight long enough that both instances are at work.
    receiver.set_delay(Duration::from_millis(20));
    let other = app.second_instance().await;
    let run = |s: authara::services::Services| async move {
        let mut n = 0;
        while run_once(&s).await.unwrap() != Outcome::Idle {
            n += 1;
        }
        n
    };
    let (a, b) = tokio::join!(tokio::spawn(run(app.services.clone())), tokio::spawn(run(other)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a > 0 && b > 0, "both instances delivered some: {a} and {b}");
    assert_eq!(a + b, 24, "24 events between the two ({a} + {b})");
    let ids: std::collections::HashSet<String> =
        receiver.deliveries().iter().map(|d| d.header("x-authara-delivery").to_owned()).collect();
    assert_eq!((ids.len(), receiver.deliveries().len()), (24, 24), "each delivered once");
}

/// A server killed while a delivery is in flight delivers it after a restart, under the same id.
async fn a_delivery_interrupted_by_a_crash_is_delivered_after_restart(engine: Engine) {
    let receiver = Receiver::start().await;
    receiver.then(&[Answer::Hang]);
    let db = TestDb::new(engine, true).await;
    let mut env = crate::harness::server_env(
        &db,
        &[
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
            ("AUTHARA_WEBHOOK_URL", receiver.url.as_str()),
            ("AUTHARA_WEBHOOK_SECRET", SECRET),
            ("AUTHARA_WEBHOOK_TIMEOUT", "30s"),
            ("AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER", "60s"),
        ],
    );
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    sign_up_on(&server, "crash@example.com").await;
    let mut waited = 0;
    while receiver.deliveries().is_empty() {
        assert!(waited < 100, "the delivery started");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    server.kill().await;

    env.insert("AUTHARA_WEBHOOK_TIMEOUT".into(), "1s".into());
    env.insert("AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER".into(), "2s".into());
    env.insert("AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL".into(), "1s".into());
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let mut waited = 0;
    while receiver.deliveries().len() < 2 {
        assert!(waited < 300, "redelivered after the restart: {}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let got = receiver.deliveries();
    assert_eq!(got[0].header("x-authara-delivery"), got[1].header("x-authara-delivery"), "the same delivery");
    assert!(got[1].verify(SECRET));
    server.terminate().await;
}
