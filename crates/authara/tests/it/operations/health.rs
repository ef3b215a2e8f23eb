//! `GET /auth/health`: a real database query, 503 when the database is gone; the probes
//! `/auth/health/live` and `/auth/health/ready`.

use crate::app::send_checked;
use crate::harness::{Engine, Server, TestDb, client, on_both_engines, run_cli};

async fn health_reports_database_cache_and_keys(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    let res = send_checked(client().get(server.url("/auth/health"))).await;
    assert_eq!(res.status, 200);
    assert!(res.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let body = res.json();
    assert_eq!(body["status"], "healthy");
    let db_part = &body["components"]["database"];
    assert_eq!(db_part["status"], "up");
    assert_eq!(db_part["kind"], if engine == Engine::Sqlite { "sqlite" } else { "postgres" });
    assert!(db_part["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(body["components"]["cache"]["status"], "up");
    assert_eq!(body["components"]["signing_keys"]["status"], "up");
    server.terminate().await;
}

#[tokio::test]
async fn health_is_503_when_the_database_is_unreachable() {
    let db = TestDb::new(Engine::Postgres, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    assert_eq!(send_checked(client().get(server.url("/auth/health"))).await.status, 200);

    db.take_down().await;
    let res = send_checked(client().get(server.url("/auth/health"))).await;
    assert_eq!(res.status, 503);
    let body = res.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["components"]["database"]["status"], "down");
    let (status, _) = server.terminate().await;
    assert!(status.success());
}

/// The probes: live answers without looking at anything, ready once the database, schema and
/// keys are there; neither nor `/auth/health` names the active signing key.
async fn probes_answer_live_and_ready(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let (code, key, _) = run_cli(&["keys", "generate"], &db.env(), db.data_dir()).await;
    assert_eq!(code, 0);
    let kid = key.trim().split(':').next().unwrap().to_owned();
    let mut env = db.env();
    env.insert("AUTHARA_JWT_KEYS".into(), key.trim().to_owned());
    env.insert("AUTHARA_JWT_ACTIVE_KEY_ID".into(), kid.clone());
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let live = send_checked(client().get(server.url("/auth/health/live"))).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.json()["status"], "live");
    let ready = send_checked(client().get(server.url("/auth/health/ready"))).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), serde_json::json!({"status": "ready"}));
    assert_eq!(ready.headers["cache-control"], "no-store");

    let health = send_checked(client().get(server.url("/auth/health"))).await;
    let body = health.json();
    assert_eq!(body["components"]["signing_keys"]["status"], "up");
    assert_eq!(body["components"]["signing_keys"]["detail"], "1 key(s)");
    assert!(!String::from_utf8_lossy(&health.body).contains(&kid), "the active key id {kid} is not public: {body}");
    server.terminate().await;
}

/// A database whose schema is behind this binary (a migration row gone, as after restoring an
/// older backup under a running server) is not ready, and says which check failed; live stays 200.
async fn ready_is_503_naming_migrations_when_the_schema_is_behind(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    assert_eq!(send_checked(client().get(server.url("/auth/health/ready"))).await.status, 200);

    let table = if engine == Engine::Sqlite { "authara_schema_version" } else { "authara.authara_schema_version" };
    db.raw_sql(&format!("DELETE FROM {table} WHERE version = (SELECT MAX(version) FROM {table})")).await;
    let res = send_checked(client().get(server.url("/auth/health/ready"))).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.json(), serde_json::json!({"status": "not_ready", "failed": "migrations"}));
    assert_eq!(send_checked(client().get(server.url("/auth/health/live"))).await.status, 200);
    server.terminate().await;
}

on_both_engines!(
    health_reports_database_cache_and_keys,
    probes_answer_live_and_ready,
    ready_is_503_naming_migrations_when_the_schema_is_behind
);

/// With the database gone, ready says `database` while live still answers 200 (a liveness
/// probe must not restart an instance for an outage it cannot fix).
#[tokio::test]
async fn ready_is_503_naming_the_database_when_it_is_gone_and_live_stays_200() {
    let db = TestDb::new(Engine::Postgres, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    assert_eq!(send_checked(client().get(server.url("/auth/health/ready"))).await.status, 200);

    db.take_down().await;
    let res = send_checked(client().get(server.url("/auth/health/ready"))).await;
    assert_eq!(res.status, 503);
    assert_eq!(res.json(), serde_json::json!({"status": "not_ready", "failed": "database"}));
    let live = send_checked(client().get(server.url("/auth/health/live"))).await;
    assert_eq!(live.status, 200);
    let (status, _) = server.terminate().await;
    assert!(status.success());
}

/// A cache that is down leaves health `degraded` and the instance still ready.
#[tokio::test]
async fn a_degraded_cache_is_still_ready() {
    let db = TestDb::new(Engine::Postgres, true).await;
    // A port nothing listens on: bound then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut env = db.env();
    env.insert("AUTHARA_CACHE_PROVIDER".into(), "redis".into());
    env.insert("AUTHARA_REDIS_HOST".into(), "127.0.0.1".into());
    env.insert("AUTHARA_REDIS_PORT".into(), port.to_string());
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body = send_checked(client().get(server.url("/auth/health"))).await.json();
        if body["status"] == "degraded" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "health never degraded: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let res = send_checked(client().get(server.url("/auth/health/ready"))).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["status"], "ready");
    server.terminate().await;
}
