//! `GET /auth/health`: a real database query, 503 when the database is gone.

use crate::app::send_checked;
use crate::harness::{Engine, Server, TestDb, client, on_both_engines};

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

on_both_engines!(health_reports_database_cache_and_keys);

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
