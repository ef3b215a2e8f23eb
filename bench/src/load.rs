//! A closed-loop HTTP load generator: `conns` keep-alive connections, each sending its next
//! request as soon as the previous answer arrives, for a fixed time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// One request to send.
pub struct Req {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl Req {
    pub fn get(path: &str) -> Self {
        Req { method: reqwest::Method::GET, path: path.to_owned(), headers: Vec::new(), body: None }
    }

    pub fn post_json(path: &str, body: String) -> Self {
        Req {
            method: reqwest::Method::POST,
            path: path.to_owned(),
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("cookie", "authara_csrf=bench-csrf".to_owned()),
                ("x-csrf-token", "bench-csrf".to_owned()),
            ],
            body: Some(body),
        }
    }
}

/// Results of one run.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub ok: u64,
    pub errors: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

/// Per-connection state: builds the next request and reads the answer (for stateful flows).
pub trait Conn: Send + 'static {
    fn next(&mut self) -> Req;
    /// Returns false when the answer is an error.
    fn answer(&mut self, status: u16, headers: &HeaderMap) -> bool {
        let _ = headers;
        (200..300).contains(&status)
    }
}

/// Drives `conns` connections for `duration` (after `warmup`) and merges their latencies.
pub async fn run<C: Conn>(base: &str, conns: Vec<C>, warmup: Duration, duration: Duration) -> Stats {
    let stop_at = Instant::now() + warmup + duration;
    let measure_from = Instant::now() + warmup;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut conn in conns {
        let base = base.to_owned();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default();
            let mut latencies: Vec<u32> = Vec::with_capacity(100_000);
            while Instant::now() < stop_at {
                let req = conn.next();
                let mut rb = client.request(req.method, format!("{base}{}", req.path));
                for (k, v) in req.headers {
                    rb = rb.header(k, v);
                }
                if let Some(b) = req.body {
                    rb = rb.body(b);
                }
                let started = Instant::now();
                let ok = match rb.send().await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let headers = res.headers().clone();
                        let _ = res.bytes().await;
                        conn.answer(status, &headers)
                    }
                    Err(_) => false,
                };
                if started >= measure_from {
                    if ok {
                        latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            let i = ((all.len() as f64 - 1.0) * p).round() as usize;
            f64::from(all[i]) / 1000.0
        }
    };
    Stats {
        ok: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs: duration.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}
