//! Webhooks delivered by the real server to an axum receiver using the `Webhook` extractor:
//! genuine deliveries are accepted and typed; tampered, unsigned and late replays of them are
//! refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authara_sdk::webhooks::{Event, Webhook, WebhookVerifier};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;

use crate::axum_app::serve;
use crate::harness::{Alg, ManualClock, Server, client, eventually, server_env};

const SECRET: &str = "whsec-sdk-test-secret";

#[derive(Clone, Default)]
struct Log {
    events: Arc<Mutex<Vec<Webhook>>>,
    /// Every request as received, with the status it got.
    raw: Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>>,
}

async fn receive(State(log): State<Log>, hook: Webhook) -> StatusCode {
    log.events.lock().unwrap().push(hook);
    StatusCode::NO_CONTENT
}

/// Keeps a copy of each request and its answer, then lets the extractor see it unchanged.
async fn record(State(log): State<Log>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let headers = parts.headers.clone();
    let res = next.run(Request::from_parts(parts, Body::from(bytes.clone()))).await;
    log.raw.lock().unwrap().push((headers, bytes, res.status().as_u16()));
    res
}

/// Sends a recorded request again (its headers as recorded, `body` as given): the status.
async fn post_raw(url: &str, headers: &HeaderMap, body: Bytes) -> u16 {
    post_raw_reply(url, headers, body).await.0
}

async fn post_raw_reply(url: &str, headers: &HeaderMap, body: Bytes) -> (u16, String) {
    let mut headers = headers.clone();
    headers.remove("content-length");
    headers.remove("host");
    let res = client().post(url).headers(headers).body(body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn deliveries_of_the_real_server_are_verified_and_typed_and_replays_refused() {
    let log = Log::default();
    let clock = ManualClock::now();
    let verifier = WebhookVerifier::new(SECRET).unwrap().clock(clock.clone());
    let receiver = Router::new()
        .route("/hooks", post(receive))
        .layer(middleware::from_fn_with_state(log.clone(), record))
        .layer(verifier.layer())
        .with_state(log.clone());
    let hooks = format!("{}/hooks", serve(receiver).await);

    let mut env = server_env(Alg::Hs256);
    env.insert("AUTHARA_WEBHOOK_URL".into(), hooks.clone());
    env.insert("AUTHARA_WEBHOOK_SECRET".into(), SECRET.into());
    let server = Server::start_with(env).await;
    let user = server.sign_up("hooked@example.com").await.user_id;

    let arrived = eventually(Duration::from_secs(15), || {
        log.events
            .lock()
            .unwrap()
            .iter()
            .any(|h| matches!(&h.event.event, Event::UserCreated(u) if u.user_id.to_string() == user))
    })
    .await;
    assert!(arrived, "user.created arrives: {:#?}", server.logs());
    assert!(
        eventually(Duration::from_secs(15), || {
            log.events.lock().unwrap().iter().any(|h| {
                matches!(&h.event.event, Event::MembershipCreated(m)
                if m.user_id.to_string() == user && m.is_initial_membership)
            })
        })
        .await,
        "the first membership arrives typed"
    );
    let (headers, body, status) = log.raw.lock().unwrap()[0].clone();
    assert_eq!(status, 204, "genuine deliveries are accepted");
    for hook in log.events.lock().unwrap().iter() {
        assert_eq!(hook.delivery_id.as_deref(), Some(hook.event.id.as_str()), "the delivery id is the envelope's");
        assert!(!matches!(hook.event.event, Event::Other { .. }), "{:?}", hook.event);
    }

    // The same delivery again, at once: still signed and in the window (deduplicate on the id).
    assert_eq!(post_raw(&hooks, &headers, body.clone()).await, 204);
    // Tampered: one byte of the body, the timestamp, a signature.
    let mut tampered = body.to_vec();
    let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
    tampered[at] = if tampered[at] == b'9' { b'8' } else { tampered[at] + 1 };
    assert_eq!(post_raw(&hooks, &headers, tampered.into()).await, 401);
    let mut moved = headers.clone();
    let ts: i64 = headers["x-authara-timestamp"].to_str().unwrap().parse().unwrap();
    moved.insert("x-authara-timestamp", (ts + 1).to_string().parse().unwrap());
    assert_eq!(post_raw(&hooks, &moved, body.clone()).await, 401);
    let mut unsigned = headers.clone();
    unsigned.remove("x-authara-signature-v2");
    assert_eq!(post_raw(&hooks, &unsigned, body.clone()).await, 401, "the timestamped signature is required");
    // Replayed later than the tolerance (5 min) after its timestamp (the clock started before
    // the server did, so the delivery was signed some seconds after the clock's start).
    let behind_ms = (ts * 1000 - authara_sdk::Clock::now_ms(&*clock)).max(0);
    clock.advance(Duration::from_millis(u64::try_from(behind_ms).unwrap()) + Duration::from_secs(301));
    let (status, reply) = post_raw_reply(&hooks, &headers, body).await;
    assert_eq!(status, 401);
    let envelope: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(envelope["error"]["code"], "invalid_signature");
}

#[tokio::test]
async fn a_body_over_the_limit_or_not_an_event_is_refused() {
    let verifier = WebhookVerifier::new(SECRET).unwrap().max_body_bytes(64);
    let receiver = Router::new().route("/hooks", post(receive)).layer(verifier.layer()).with_state(Log::default());
    let hooks = format!("{}/hooks", serve(receiver).await);
    let res = client().post(&hooks).body(vec![b' '; 100]).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 413);

    let verifier = WebhookVerifier::new(SECRET).unwrap();
    let receiver = Router::new().route("/hooks", post(receive)).layer(verifier.layer()).with_state(Log::default());
    let hooks = format!("{}/hooks", serve(receiver).await);
    // Signed correctly, but not an envelope: the sender holds the secret, the body is wrong.
    let ts = (authara_sdk::Clock::now_ms(&authara_sdk::SystemClock) / 1000).to_string();
    let body = b"[1,2,3]";
    let sign = |msg: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
        let tag = ring::hmac::sign(&key, msg);
        format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    let res = client()
        .post(&hooks)
        .header("x-authara-timestamp", &ts)
        .header("x-authara-signature-v2", sign(format!("{ts}.[1,2,3]").as_bytes()))
        .header("x-authara-signature", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    let bare = Router::new().route("/hooks", post(receive)).with_state(Log::default());
    let res = client().post(format!("{}/hooks", serve(bare).await)).body("{}").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 500, "no verifier installed is the application's bug, not the sender's");
}
