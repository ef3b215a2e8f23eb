//! `webhook-latency`: on an idle server, the time from a committed change (the signup's 201
//! arrives) to its `user.created` webhook reaching a receiver on 127.0.0.1; median and p99 over
//! N sequential signups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::Opts;
use crate::workloads::start_server;

pub async fn latency(opts: &Opts, events: usize) -> anyhow::Result<()> {
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let recorded = arrivals.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |body: axum::body::Bytes| {
            let recorded = recorded.clone();
            async move {
                let at = Instant::now();
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(user) = v["data"]["user_id"].as_str()
                {
                    recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(user.to_owned(), at);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let env = [
        ("AUTHARA_WEBHOOK_URL", url.as_str()),
        ("AUTHARA_WEBHOOK_SECRET", "bench-secret-0123456789-abcdefghijklmnop"),
        ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "1024"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
        ("AUTHARA_PASSWORD_HASH_PARALLELISM", "1"),
    ];
    let (server, _) = start_server(opts, "sqlite", &env).await?;
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(events);
    for i in 0..events {
        let res = http
            .post(format!("{}/auth/api/v1/signup/direct", server.base))
            .header("cookie", "authara_csrf=bench")
            .header("x-csrf-token", "bench")
            .json(&serde_json::json!({"email": format!("hook{i}@bench.local"), "password": "violet-harbor-tangent"}))
            .send()
            .await?;
        let committed = Instant::now();
        anyhow::ensure!(res.status() == 201, "signup answered {}", res.status());
        let body: serde_json::Value = res.json().await?;
        let user = body["user"]["id"].as_str().context("user id")?.to_owned();
        let arrived = loop {
            if let Some(at) = arrivals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&user) {
                break *at;
            }
            anyhow::ensure!(committed.elapsed() < Duration::from_secs(10), "no webhook for {user}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived.saturating_duration_since(committed).as_secs_f64() * 1000.0);
    }
    server.stop().await;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "webhook-latency events {events} median_ms {:.2} p99_ms {:.2} max_ms {:.2}",
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}
