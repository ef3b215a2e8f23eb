//! A webhook receiver for tests: records what arrives, answers statuses from a script, and
//! verifies signatures exactly as `contract/webhooks.yaml` describes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

/// One received request.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The contract's check: `sha256=` + lowercase hex HMAC-SHA256 of the raw body, compared in
    /// constant time; and the timestamped v2 signature over `<timestamp>.<body>`.
    pub fn verify(&self, secret: &str) -> bool {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let check = |header: &str, message: &[u8]| {
            let Some(hex) = self.header(header).strip_prefix("sha256=") else { return false };
            let Some(tag) = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect::<Option<Vec<u8>>>()
            else {
                return false;
            };
            ring::hmac::verify(&key, message, &tag).is_ok()
        };
        let v2 = format!("{}.{}", self.header("x-authara-timestamp"), String::from_utf8_lossy(&self.body));
        check("x-authara-signature", &self.body) && check("x-authara-signature-v2", v2.as_bytes())
    }
}

/// What the receiver answers next.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answer (the request hangs until the client gives up).
    Hang,
}

pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Delivery>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    delay: Arc<Mutex<Duration>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers 204 unless a scripted answer is queued.
    pub async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let (r, sc, d) = (received.clone(), script.clone(), delay.clone());
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (r, sc, d) = (r.clone(), sc.clone(), d.clone());
                async move {
                    let wait = *d.lock().unwrap();
                    tokio::time::sleep(wait).await;
                    r.lock().unwrap().push(Delivery { headers, body });
                    let next = sc.lock().unwrap().pop_front();
                    match next {
                        Some(Answer::Hang) => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            StatusCode::NO_CONTENT
                        }
                        Some(Answer::Status(s)) => StatusCode::from_u16(s).unwrap(),
                        None => StatusCode::NO_CONTENT,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, received, script, delay, _task: task }
    }

    /// Makes every answer take `delay`, so that several delivering workers are surely at work
    /// at once.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn then(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    /// What arrived, in order; each body checked against its event's payload in
    /// `contract/webhooks.yaml` (as every API answer is against the OpenAPI contract).
    pub fn deliveries(&self) -> Vec<Delivery> {
        let got = self.received.lock().unwrap().clone();
        for d in &got {
            crate::contract::validate_webhook(&d.body);
        }
        got
    }

    /// The environment that points authara at this receiver.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("AUTHARA_WEBHOOK_URL", self.url.clone()), ("AUTHARA_WEBHOOK_SECRET", SECRET.to_owned())]
    }
}

pub const SECRET: &str = "whsec-test-0123456789-abcdefghijklmnopqrstuvwxyz";
