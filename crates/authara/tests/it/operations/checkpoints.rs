//! SQLite's write-ahead log is copied into the database file by a connection of its own, not by
//! whichever sign-in's commit crosses the threshold: what a request writes reaches the database
//! file within moments, with no commit doing it (the writers' own checkpoint waits for 40 MB).

use std::time::{Duration, Instant};

use sqlx::Connection as _;

use crate::app::TestApp;
use crate::harness::Engine;

/// Users with `email` in the database file alone (a copy of it without its WAL), or `None`
/// when the copy caught a checkpoint half-written.
async fn users_in_file_alone(data: &std::path::Path, email: &str) -> Option<i64> {
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(data.join("authara.db"), copy.path().join("authara.db")).ok()?;
    let url = format!("sqlite://{}?mode=ro", copy.path().join("authara.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.ok()?;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1").bind(email).fetch_one(&mut c).await.ok();
    let _ = c.close().await;
    n
}

#[tokio::test]
async fn writes_reach_the_database_file_without_a_commit_checkpointing() {
    let app = TestApp::start_with(Engine::Sqlite, &[]).await;
    let data = app.db.data_dir().to_owned();
    let _ = app.signed_in("wal@example.com", crate::harness::PW).await;
    assert!(std::fs::metadata(data.join("authara.db-wal")).unwrap().len() > 0, "the sign-up went to the WAL");
    let started = Instant::now();
    loop {
        if users_in_file_alone(&data, "wal@example.com").await == Some(1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the sign-up never reached the database file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
