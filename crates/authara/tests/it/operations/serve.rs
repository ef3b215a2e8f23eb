//! `authara serve` as a user runs it: startup, configuration errors, schema refusal,
//! request ids and headers, graceful shutdown, `healthcheck`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use authara::clock::SystemClock;

use crate::app::{send_checked, try_send_checked};
use crate::harness::{Engine, Server, TestDb, client, on_both_engines, run_cli};

#[tokio::test]
async fn no_config_start_serves_health_from_a_fresh_data_dir() {
    let cwd = tempfile::tempdir().unwrap();
    let env = HashMap::new();
    let server = Server::start(&["serve", "--migrate"], &env, cwd.path()).await;
    let res = send_checked(client().get(server.url("/auth/health"))).await;
    assert_eq!(res.status, 200);
    let body = res.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["components"]["database"]["kind"], "sqlite");
    assert!(cwd.path().join("data/authara.db").exists(), "SQLite file in ./data");
    let key_file = cwd.path().join("data/dev-jwt-keys");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");
    assert!(logs.contains("generated a development signing key"), "{logs}");
    assert!(!logs.contains(key.trim().split(':').nth(1).unwrap()), "the secret is never printed");

    // Second start: same key, nothing generated.
    let server = Server::start(&["serve"], &env, cwd.path()).await;
    let (_, logs) = server.terminate().await;
    assert!(!logs.contains("generated a development signing key"), "{logs}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key, "the dev key is never regenerated");
}

async fn serve_refuses_a_schema_that_is_not_migrated(engine: Engine) {
    let db = TestDb::new(engine, false).await;
    let (code, out, err) = run_cli(&["serve"], &db.env(), db.data_dir()).await;
    assert_ne!(code, 0, "{out}{err}");
    let required = format!("version {}", authara::store::migrate::required_version());
    assert!(err.contains("version 0") && err.contains(&required), "names both versions: {err}");
    assert!(err.contains("authara migrate"), "names the command to run: {err}");

    let server = Server::start(&["serve", "--migrate"], &db.env(), db.data_dir()).await;
    let res = send_checked(client().get(server.url("/auth/health"))).await;
    assert_eq!(res.status, 200);
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");
}

async fn sigterm_stops_the_server_cleanly(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    let addr = server.addr.clone();
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "exit status {status:?}: {logs}");
    assert!(logs.contains("shutting down") && logs.contains("stopped"), "{logs}");
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "no longer accepting");
}

async fn healthcheck_exits_zero_only_when_the_server_is_healthy(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut env = db.env();
    env.insert("AUTHARA_BIND".into(), format!("127.0.0.1:{port}"));
    let (code, _, _) = run_cli(&["healthcheck"], &env, db.data_dir()).await;
    assert_ne!(code, 0, "nothing listens yet");

    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let (code, out, err) = run_cli(&["healthcheck"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    if engine == Engine::Postgres {
        db.take_down().await;
        let (code, out, _) = run_cli(&["healthcheck"], &env, db.data_dir()).await;
        assert_ne!(code, 0, "database gone: {out}");
    }
    server.terminate().await;
}

// Security review finding: the SQLite files were readable by other users.
/// The embedded database and its directory are readable by this user only, and dev mode off
/// loopback says so at start.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_and_dev_mode_warns_off_loopback() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = TestDb::new(Engine::Sqlite, false).await;
    let data = db.data_dir().join("fresh-data");
    let mut env = std::collections::HashMap::new();
    env.insert("AUTHARA_DATA_DIR".to_owned(), data.display().to_string());
    env.insert("AUTHARA_BIND".to_owned(), "0.0.0.0:0".to_owned());
    let server = Server::start(&["serve", "--migrate"], &env, db.data_dir()).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("authara.db")), 0o600, "the database");
    assert_eq!(mode(&data.join("authara.db-wal")), 0o600, "its write-ahead log");
    let (_, logs) = server.terminate().await;
    assert!(logs.lines().any(|l| l.contains("WARN") && l.contains("APP_ENV=prod")), "{logs}");
}

on_both_engines!(
    serve_refuses_a_schema_that_is_not_migrated,
    sigterm_stops_the_server_cleanly,
    healthcheck_exits_zero_only_when_the_server_is_healthy,
);

#[tokio::test]
async fn invalid_configuration_lists_every_problem_and_exits_2() {
    let cwd = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = [
        ("APP_ENV", "prod"),
        ("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "ten"),
        ("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "5 minutes"),
        ("AUTHARA_ORG_MODE", "teams"),
        ("POSTGRESQL_HOST", "db.internal"),
        ("AUTHARA_EMAIL_PROVIDER", "smtp"),
        ("AUTHARA_BIND", "nowhere"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (code, out, err) = run_cli(&["serve"], &env, cwd.path()).await;
    assert_eq!(code, 2, "{out}{err}");
    for needle in [
        "AUTHARA_ACCESS_TOKEN_TTL_MINUTES",
        "AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW",
        "AUTHARA_ORG_MODE",
        "POSTGRESQL_PORT is required",
        "POSTGRESQL_DATABASE is required",
        "POSTGRESQL_USERNAME is required",
        "AUTHARA_EMAIL_FROM is required",
        "AUTHARA_EMAIL_SMTP_HOST is required",
        "AUTHARA_JWT_KEYS is required",
        "AUTHARA_JWT_ISSUER is required",
        "PUBLIC_URL is required",
        "AUTHARA_BIND",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!cwd.path().join("data").exists(), "nothing was created by a refused start");
}

#[tokio::test]
async fn responses_carry_request_ids_and_security_headers() {
    let db = TestDb::new(Engine::Sqlite, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    let c = client();

    let res = send_checked(c.get(server.url("/auth/health")).header("X-Request-Id", "gw-1234")).await;
    assert_eq!(res.headers["x-request-id"], "gw-1234", "a gateway's id flows through");
    for (h, v) in
        [("x-frame-options", "DENY"), ("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin")]
    {
        assert_eq!(res.headers[h], v);
    }
    let csp = res.headers["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-eval"), "{csp}");

    let res = send_checked(c.get(server.url("/auth/health")).header("X-Request-Id", "bad id\twith junk")).await;
    let generated = res.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a malformed id is replaced by a generated one: {generated}");

    let res = send_checked(c.get(server.url("/auth/api/v1/nope"))).await;
    assert_eq!(res.status, 404);
    assert!(res.headers.contains_key("x-request-id"));
    assert_eq!(res.headers["x-frame-options"], "DENY");
    assert_eq!(res.error_code(), "not_found");

    let res = send_checked(c.post(server.url("/auth/health"))).await;
    assert_eq!(res.status, 405);
    let res = send_checked(c.get(server.url("/elsewhere"))).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.text(), "404 page not found");

    let version = send_checked(c.get(server.url("/auth/version"))).await.json();
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));

    let (_, logs) = server.terminate().await;
    assert!(logs.contains("gw-1234"), "the request id is on the request's log lines");
}

/// Shutdown waits for a request already being handled, and stops accepting new ones.
#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_request() {
    let db = TestDb::new(Engine::Sqlite, true).await;
    let mut vars: HashMap<String, String> = db.env();
    vars.insert("AUTHARA_BIND".into(), "127.0.0.1:0".into());
    let (config, _) = authara::config::load_from_map(&vars).unwrap();
    let app = authara::app::App::open(Arc::new(config), Arc::new(SystemClock), false).await.unwrap();
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || {
            let entered_tx = entered_tx.clone();
            async move {
                if let Some(tx) = entered_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(700)).await;
                "done"
            }
        }),
    );
    let router = slow.merge(app.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(authara::http::server::serve(
        listener,
        router,
        async move {
            let _ = stop_rx.await;
        },
        authara::http::server::Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_ip: 64,
            first_request_timeout: Duration::from_secs(5),
            drain: Duration::from_secs(5),
        },
    ));

    let in_flight = tokio::spawn(async move { try_send_checked(client().get(format!("http://{addr}/slow"))).await });
    entered_rx.await.unwrap();
    stop_tx.send(()).unwrap();
    let res = in_flight.await.unwrap().expect("the in-flight request completes");
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "done");
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn prod_logs_are_json_lines_carrying_the_request_id() {
    let db = TestDb::new(Engine::Sqlite, true).await;
    let mut env = db.env();
    for (k, v) in crate::harness::PROD {
        env.insert(k.into(), v.into());
    }
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    // Failures are logged at info (successes only at debug).
    let res = send_checked(
        client().get(server.url("/auth/api/v1/user?token=SHOULD-NOT-BE-LOGGED")).header("X-Request-Id", "req-42"),
    )
    .await;
    assert_eq!(res.status, 401);
    let (_, logs) = server.terminate().await;
    let lines: Vec<serde_json::Value> =
        logs.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty(), "{logs}");
    let access = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "req-42")
        .unwrap_or_else(|| panic!("an access log line with the id: {logs}"));
    assert_eq!(access["fields"]["status"], 401);
    assert!(!logs.contains("SHOULD-NOT-BE-LOGGED"), "query strings are not logged");
    assert!(!logs.contains("MDEyMzQ1Njc4"), "keys are not logged");
}

/// In prod, a plain http webhook URL (deliveries and their signatures in clear text) and an
/// internal API token under 32 characters stop the start, naming the variables but not their
/// values; `AUTHARA_WEBHOOK_ALLOW_HTTP=true` lets the http URL through, and the start says so.
#[tokio::test]
async fn prod_refuses_plain_http_webhooks_and_short_internal_tokens() {
    let db = TestDb::new(Engine::Sqlite, true).await;
    let mut env = db.env();
    for (k, v) in crate::harness::PROD.into_iter().chain([
        ("AUTHARA_WEBHOOK_URL", "http://hooks.internal:8080/in/k3y-in-path"),
        ("AUTHARA_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef"),
        ("AUTHARA_INTERNAL_API_TOKEN", "short-internal-token"),
    ]) {
        env.insert(k.into(), v.into());
    }
    let (code, out, err) = run_cli(&["serve"], &env, db.data_dir()).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("AUTHARA_WEBHOOK_URL: must use https when APP_ENV=prod"), "{err}");
    assert!(err.contains("AUTHARA_INTERNAL_API_TOKEN: must be at least 32 characters when APP_ENV=prod"), "{err}");
    assert!(!err.contains("k3y-in-path") && !err.contains("short-internal-token"), "values stay out: {err}");

    env.insert("AUTHARA_INTERNAL_API_TOKEN".into(), "a-long-enough-internal-token-0123".into());
    env.insert("AUTHARA_WEBHOOK_ALLOW_HTTP".into(), "true".into());
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let (exit, logs) = server.terminate().await;
    assert!(exit.success(), "{logs}");
    assert!(logs.contains("AUTHARA_WEBHOOK_ALLOW_HTTP=true: webhooks go to a plain http:// URL in prod"), "{logs}");
    assert!(!logs.contains("k3y-in-path"), "the URL is not logged: {logs}");
}
