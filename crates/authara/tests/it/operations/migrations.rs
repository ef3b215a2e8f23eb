//! Embedded migrations on both engines: up, status, idempotence, refusal of newer schemas.

use std::collections::BTreeSet;

use authara::store::migrate::{MIGRATIONS, required_version};

use crate::harness::{Engine, TestDb, on_both_engines, run_cli};

async fn migrate_up_then_status_then_noop(engine: Engine) {
    let db = TestDb::new(engine, false).await;
    let env = db.env();

    let (code, out, err) = run_cli(&["migrate", "status"], &env, db.data_dir()).await;
    assert_ne!(code, 0, "status must fail on an unmigrated database: {out}{err}");
    assert!(out.contains("current version: 0"), "{out}");
    assert!(out.contains(&format!("pending  1 {}", MIGRATIONS[0].name)), "{out}");

    let (code, out, err) = run_cli(&["migrate"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied 1 init"), "{out}");

    let (code, out, err) = run_cli(&["migrate", "status"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("current version: {}", required_version())), "{out}");
    assert!(!out.contains("pending"), "{out}");

    // Second run: a no-op that says so.
    let (code, out, err) = run_cli(&["migrate"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("up to date"), "{out}");
    assert!(!out.contains("applied"), "{out}");
    let status = db.store().await.migration_status().await.unwrap();
    assert_eq!(status.applied.len(), MIGRATIONS.len());
}

async fn a_newer_database_is_refused_and_left_untouched(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    db.raw_sql("INSERT INTO authara_schema_version (version, name, applied_at_ms) VALUES (999, 'future', 0)").await;

    let env = db.env();
    for args in [&["migrate"][..], &["serve", "--migrate"], &["serve"]] {
        let (code, out, err) = run_cli(args, &env, db.data_dir()).await;
        assert_ne!(code, 0, "{args:?} must refuse a newer database: {out}{err}");
        assert!(err.contains("999") && err.contains(&required_version().to_string()), "{args:?}: {err}");
        assert!(err.contains("newer"), "{args:?}: {err}");
    }
    let status = db.store().await.migration_status().await.unwrap();
    assert_eq!(status.current, 999, "the database was left as it was");
    assert_eq!(status.applied.len(), MIGRATIONS.len() + 1);
}

async fn a_database_missing_an_earlier_migration_is_refused(engine: Engine) {
    // Versions may leave gaps (a reserved number lands later): the highest applied version
    // alone does not prove the schema complete.
    let db = TestDb::new(engine, true).await;
    let skipped = &MIGRATIONS[MIGRATIONS.len() - 2];
    db.raw_sql(&format!("DELETE FROM authara_schema_version WHERE version = {}", skipped.version)).await;
    let (code, out, err) = run_cli(&["serve"], &db.env(), db.data_dir()).await;
    assert_ne!(code, 0, "serve must refuse: {out}{err}");
    assert!(err.contains(&format!("missing: {} {}", skipped.version, skipped.name)), "{err}");
    let (_, out, _) = run_cli(&["migrate", "status"], &db.env(), db.data_dir()).await;
    assert!(out.contains(&format!("pending  {} {}", skipped.version, skipped.name)), "{out}");
}

on_both_engines!(
    migrate_up_then_status_then_noop,
    a_newer_database_is_refused_and_left_untouched,
    a_database_missing_an_earlier_migration_is_refused,
);

fn files(engine: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(engine);
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

#[test]
fn both_engines_have_the_same_migrations_and_all_are_embedded() {
    let sqlite = files("sqlite");
    let postgres = files("postgres");
    assert_eq!(sqlite, postgres, "migrations/sqlite and migrations/postgres must hold the same files");
    let embedded: BTreeSet<String> = MIGRATIONS.iter().map(|m| format!("{}_{}.sql", m.version, m.name)).collect();
    assert_eq!(embedded, sqlite, "every migration file must be listed in store::migrate::MIGRATIONS");
    let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "versions ascend: {versions:?}");
}

#[tokio::test]
async fn both_engines_end_with_the_same_tables_and_columns() {
    let lite = TestDb::new(Engine::Sqlite, true).await;
    let pg = TestDb::new(Engine::Postgres, true).await;

    let store = lite.store().await;
    drop(store);
    let mut conn = lite.sqlite_connection().await;
    let lite_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect();

    let mut pgc = crate::harness::pg_connect(pg.pg_database.as_deref().unwrap()).await;
    let pg_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'authara'",
    )
    .fetch_all(&mut pgc)
    .await
    .unwrap()
    .into_iter()
    .collect();

    assert!(!lite_cols.is_empty());
    assert_eq!(lite_cols, pg_cols, "tables and columns differ between engines");
}
