//! `AUTHARA_METRICS_BIND`: the Prometheus metrics of the real binary, on their own listener.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::{TestClient, send_checked};
use crate::harness::{Engine, Server, TestDb, client, on_both_engines};

const PW: &str = "violet-harbor-tangent";

/// The exposition's samples: series (name and labels as written) to value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

struct Scraper(String);

impl Scraper {
    async fn scrape(&self) -> HashMap<String, f64> {
        let res = send_checked(client().get(&self.0)).await;
        assert_eq!(res.status, 200);
        let ct = res.headers["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        let text = res.text();
        assert!(text.ends_with("# EOF\n"), "a complete exposition");
        samples(&text)
    }
}

fn get(s: &HashMap<String, f64>, series: &str) -> f64 {
    s.get(series).copied().unwrap_or(0.0)
}

/// The real binary with metrics on their own port, rotating every refresh with a 1 s grace.
/// The metrics listener takes a port of the kernel's choosing (no port picked ahead and raced for
/// by other tests' listeners); the server logs where it bound.
async fn metered(engine: Engine) -> (TestDb, Server, Scraper) {
    let db = TestDb::new(engine, true).await;
    let mut env = db.env();
    env.insert("AUTHARA_METRICS_BIND".into(), "127.0.0.1:0".into());
    env.insert("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL".into(), "always".into());
    env.insert("AUTHARA_REFRESH_TOKEN_REUSE_GRACE".into(), "1s".into());
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let logs = server.logs();
    let url = logs
        .split("metrics on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|u| u.trim_end_matches(['"', ',']).to_owned())
        .unwrap_or_else(|| panic!("the metrics listener's address is logged: {logs}"));
    (db, server, Scraper(url))
}

/// A fresh instance (it has answered the harness' health polls only) exports its gauges, on its
/// own listener only.
async fn a_fresh_instance_exports_its_gauges_and_never_on_the_public_port(engine: Engine) {
    let (_db, server, m) = metered(engine).await;
    let fresh = m.scrape().await;
    assert!(fresh.len() < 200, "{} series on a fresh instance", fresh.len());
    for name in [
        "authara_password_hash_queue_depth",
        "authara_password_hash_wait_seconds_count",
        "authara_cache_up",
        "authara_db_pool_connections{state=\"in_use\"}",
        "authara_db_pool_connections{state=\"idle\"}",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(fresh.contains_key(name), "{name} is exported: {:?}", fresh.keys());
    }
    assert_eq!(get(&fresh, "authara_cache_up"), 1.0, "the memory cache is up");
    assert!(get(&fresh, "process_resident_memory_bytes") > 1e6);
    let pool = get(&fresh, "authara_db_pool_connections{state=\"idle\"}")
        + get(&fresh, "authara_db_pool_connections{state=\"in_use\"}");
    assert!(pool >= 1.0, "the pool holds a connection (idle, or serving a health poll)");
    // The harness polls until the server answers at all: a poll on a loaded machine may have met
    // a slow database and answered 503, and is counted all the same.
    let health_polls: f64 = ["2xx", "5xx"]
        .iter()
        .map(|class| {
            get(
                &fresh,
                &format!("authara_http_requests_total{{route=\"/auth/health\",method=\"GET\",status=\"{class}\"}}"),
            )
        })
        .sum();
    assert!(
        health_polls >= 1.0,
        "the health polls: {:?}",
        fresh.keys().filter(|k| k.starts_with("authara_http")).collect::<Vec<_>>()
    );
    for path in ["/metrics", "/auth/metrics"] {
        assert_eq!(send_checked(client().get(server.url(path))).await.status, 404, "{path}");
    }
    server.terminate().await;
}

async fn metrics_count_requests_sign_ins_and_refreshes(engine: Engine) {
    let (_db, server, m) = metered(engine).await;
    let c = TestClient::new(&server.base);
    c.fetch_csrf().await;
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "m@example.com", "password": PW})).await;
    assert!(res.status < 300, "{}", res.text());
    let after_signup = m.scrape().await;
    for state in ["pending", "sending", "sent", "failed"] {
        let series = format!("authara_outbox_jobs{{state=\"{state}\"}}");
        assert!(after_signup.contains_key(&series), "the outbox is read: {series}");
    }

    let res = c
        .json(Method::POST, "/auth/api/v1/login", &json!({"email": "m@example.com", "password": "wrong-password-1"}))
        .await;
    assert_eq!(res.status, 401);
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "m@example.com", "password": PW})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let t0 = c.cookie("authara_refresh").unwrap();
    let res = c.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 200);
    // The consumed token again, inside the grace window, then after it: a reuse.
    let body = |t: &str| json!({"refresh_token": t});
    let other = TestClient::new(&server.base);
    assert_eq!(other.json(Method::POST, "/auth/api/v1/tokens/refresh", &body(&t0)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(other.json(Method::POST, "/auth/api/v1/tokens/refresh", &body(&t0)).await.status, 401);

    let s = m.scrape().await;
    let moved = |series: &str| get(&s, series) - get(&after_signup, series);
    assert_eq!(moved("authara_sign_ins_total{method=\"password\",result=\"bad_credentials\"}"), 1.0);
    assert_eq!(moved("authara_sign_ins_total{method=\"password\",result=\"success\"}"), 1.0);
    assert_eq!(get(&s, "authara_refresh_total{result=\"rotated\"}"), 1.0);
    assert_eq!(get(&s, "authara_refresh_total{result=\"grace\"}"), 1.0);
    assert_eq!(get(&s, "authara_refresh_total{result=\"reuse_detected\"}"), 1.0);
    let login = "route=\"/auth/api/v1/login\",method=\"POST\"";
    assert_eq!(get(&s, &format!("authara_http_requests_total{{{login},status=\"4xx\"}}")), 1.0);
    assert_eq!(get(&s, &format!("authara_http_requests_total{{{login},status=\"2xx\"}}")), 1.0);
    assert_eq!(get(&s, &format!("authara_http_request_duration_seconds_count{{{login},status=\"2xx\"}}")), 1.0);
    assert!(get(&s, &format!("authara_http_request_duration_seconds_sum{{{login},status=\"2xx\"}}")) > 0.0);
    let signup = "route=\"/auth/api/v1/signup/direct\",method=\"POST\",status=\"2xx\"";
    assert_eq!(get(&s, &format!("authara_http_request_duration_seconds_count{{{signup}}}")), 1.0);
    assert!(get(&s, "authara_password_hash_wait_seconds_count") >= 2.0, "the signup's hash and the logins'");
    assert!(s.keys().all(|k| !k.contains("m@example.com")), "no email reaches a label");
    assert!(s.len() < 200, "{} series after the flows", s.len());
    server.terminate().await;
}

/// Unknown paths share one label value: no path reaches a label.
async fn unknown_paths_share_one_label(engine: Engine) {
    let (_db, server, m) = metered(engine).await;
    send_checked(client().get(server.url("/auth/api/v1/no-such-thing-123"))).await;
    send_checked(client().get(server.url("/auth/api/v1/no-such-thing-456"))).await;
    let s = m.scrape().await;
    assert!(s.keys().all(|k| !k.contains("no-such-thing")));
    let unmatched = "authara_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"}";
    assert_eq!(get(&s, unmatched), 2.0, "both unknown paths, under one label");
    server.terminate().await;
}

on_both_engines!(
    a_fresh_instance_exports_its_gauges_and_never_on_the_public_port,
    metrics_count_requests_sign_ins_and_refreshes,
    unknown_paths_share_one_label,
);

#[tokio::test]
async fn the_metrics_listener_is_off_by_default_and_refuses_the_public_port() {
    let db = TestDb::new(Engine::Sqlite, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    let (_, logs) = server.terminate().await;
    assert!(!logs.contains("metrics on"), "{logs}");

    let mut env = db.env();
    env.insert("AUTHARA_BIND".into(), "127.0.0.1:18080".into());
    env.insert("AUTHARA_METRICS_BIND".into(), "0.0.0.0:18080".into());
    let (code, _, err) = crate::harness::run_cli(&["serve"], &env, db.data_dir()).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AUTHARA_METRICS_BIND"), "{err}");
}
