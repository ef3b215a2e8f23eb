//! Operations through the real binary, on both engines: `import` (every hash format signs in and
//! is upgraded; problems with their line numbers, nothing half-written; `--undo`), `backup` and
//! `restore` under a signup load, scheduled backups, `migrate --check`, the SQLite snapshot
//! before migrating, and a migration killed with SIGKILL.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Engine, Server, TestDb, on_both_engines, run_cli};

use crate::harness::PW;
use crate::harness::{Script, server_env};

/// Fast argon2id for the rehash, generous limits for the loads below.
fn env(db: &TestDb) -> HashMap<String, String> {
    server_env(
        db,
        &[
            ("AUTHARA_ORG_MODE", "multi"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "100000"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "100000"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "100000"),
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "100000"),
        ],
    )
}

/// `POST path` with a JSON body under the double-submit CSRF check; the status.
async fn post(server: &Server, path: &str, body: &Value) -> u16 {
    Script::new(server).await.post(server, path, &[], body).await.0
}

async fn login(server: &Server, email: &str, password: &str) -> u16 {
    post(server, "/auth/api/v1/login", &json!({"email": email, "password": password})).await
}

/// One number read with SQL of its own (a count, a time).
async fn count(db: &TestDb, sql: &str) -> i64 {
    match &db.pg_database {
        None => {
            let mut c = db.sqlite_connection().await;
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Some(name) => {
            let mut c = crate::harness::pg_connect(name).await;
            sqlx::raw_sql("SET search_path = authara").execute(&mut c).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

fn write(dir: &Path, name: &str, lines: &[Value]) -> String {
    let path = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// One user per accepted hash format, each with a vector computed elsewhere (the unit tests of
/// services/password.rs name their sources).
fn hash_vectors() -> Vec<(&'static str, &'static str, String)> {
    // The reference's format: argon2id t=1, m=1024, p=1, built as the reference builds it.
    let salt = b"0123456789abcdef";
    let params = argon2::Params::new(1024, 1, 1, Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(PW.as_bytes(), salt, &mut key)
        .unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let reference = format!("$argon2id$v=1$t=1$m=1024$p=1${}${}", b64.encode(salt), b64.encode(key));
    let fixed: Vec<(&'static str, &'static str, &'static str)> = vec![
        ("bcrypt@example.com", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
        ("bcrypt-y@example.com", "U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
        (
            "scrypt@example.com",
            "password",
            "$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA",
        ),
        (
            "firebase@example.com",
            "user1password",
            "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
        ),
        ("django@example.com", "lètmein", "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo="),
        (
            "argon2i@example.com",
            "password",
            "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA",
        ),
    ];
    let mut all: Vec<(&'static str, &'static str, String)> =
        fixed.into_iter().map(|(e, p, h)| (e, p, h.to_owned())).collect();
    all.push(("reference@example.com", PW, reference));
    all
}

async fn scenario_every_imported_hash_format_signs_in_and_is_upgraded(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = env(&db);
    let vectors = hash_vectors();
    let mut lines: Vec<Value> = vectors
        .iter()
        .map(|(email, _, hash)| json!({"email": email, "password_hash": hash, "email_verified": true}))
        .collect();
    lines.push(json!({
        "email": "Owner@Example.com", "username": "acme_owner", "created_at": "2020-01-02T03:04:05Z",
        "roles": ["admin"], "organizations": [{"name": "Acme", "role": "owner"}],
        "identities": [{"provider": "google", "subject": "1234567890", "email": "owner@gmail.com"}],
        "password_hash": vectors[0].2.clone(),
    }));
    lines.push(json!({"email": "member@example.com", "organizations": [{"name": "Acme"}]}));
    let file = write(db.data_dir(), "users.jsonl", &lines);

    let (code, out, err) = run_cli(&["import", "--from", &file, "--dry-run"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("dry run") && out.contains("would import 9 user(s)"), "{out}");
    assert!(out.contains("bcrypt 3") && out.contains("firebase-scrypt 1") && out.contains("none 1"), "{out}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 0, "a dry run writes nothing");

    let (code, out, err) = run_cli(&["import", "--from", &file], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 9 user(s), 10 organization(s)"), "9 personal + Acme: {out}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users WHERE import_batch IS NOT NULL").await, 9);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM events WHERE type <> 'users.imported'").await,
        0,
        "no per-user domain events (docs/operations.md), one for the batch"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'users.imported'").await, 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id WHERE o.name = 'Acme'").await,
        2
    );
    // Each membership's copy of its member's account (what the member lists show) is written.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM organization_memberships m JOIN users u ON u.id = m.user_id \
                    WHERE m.member_email = u.email AND m.member_username = u.username"
        )
        .await,
        count(&db, "SELECT COUNT(*) FROM organization_memberships").await
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users WHERE email_verified_at_ms IS NOT NULL").await, 7);
    assert_eq!(
        count(&db, "SELECT created_at_ms FROM users WHERE email = 'owner@example.com'").await,
        1_577_934_245_000,
        "created_at is kept"
    );

    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let store = db.store().await;
    for (email, password, hash) in &vectors {
        assert_eq!(login(&server, email, "wrong-password-1").await, 401, "{email}: a wrong password is refused");
        assert_eq!(login(&server, email, password).await, 200, "{email} signs in with the imported hash");
        let user = store.user_by_email(&authara::domain::EmailAddress::parse(email).unwrap()).await.unwrap().unwrap();
        let mut now = hash.clone();
        for _ in 0..250 {
            now = store.password_hash(user.id).await.unwrap().unwrap();
            if now != *hash {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(now.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{email}: upgraded to our argon2id: {now}");
        assert_eq!(login(&server, email, password).await, 200, "{email} signs in with the upgraded hash");
    }
    assert_eq!(login(&server, "owner@example.com", "U*U").await, 200);
    store.close().await;
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");
}

async fn import_problems_name_their_lines_and_write_nothing(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = env(&db);
    let path = db.data_dir().join("bad.jsonl");
    let text = [
        r#"{"email":"ok@example.com"}"#,
        r#"{"email":"broken@example.com""#,
        r#"{"email":"extra@example.com","nickname":"x"}"#,
        r#"{"email":"OK@example.com"}"#,
        r#"{"email":"md5@example.com","password_hash":"5f4dcc3b5aa765d61d8327deb882cf99"}"#,
        r#"{"email":"costly@example.com","password_hash":"$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}"#,
        "",
        r#"{"email":"fine@example.com"}"#,
    ]
    .join("\n");
    std::fs::write(&path, text).unwrap();
    let file = path.display().to_string();
    for args in [&["import", "--from", &file, "--dry-run"][..], &["import", "--from", &file]] {
        let (code, out, err) = run_cli(args, &env, db.data_dir()).await;
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        for want in [
            "line 2: invalid JSON",
            "line 3: invalid JSON: unknown field `nickname`",
            "line 4: duplicate email ok@example.com (first on line 1)",
            "line 5: password_hash: unknown password hash format",
            "line 6: password_hash: bcrypt hash parameters out of bounds",
            "5 problem(s); nothing was written",
        ] {
            assert!(out.contains(want), "{args:?}: missing {want:?} in {out}");
        }
        assert!(!out.contains("line 1:") && !out.contains("line 8:"), "{out}");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 0, "nothing half-written");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM import_batches").await, 0);

    // An email that has an account already is a problem of its line too.
    let first = write(db.data_dir(), "one.jsonl", &[json!({"email": "taken@example.com"})]);
    assert_eq!(run_cli(&["import", "--from", &first], &env, db.data_dir()).await.0, 0);
    let again = write(
        db.data_dir(),
        "two.jsonl",
        &[json!({"email": "new@example.com"}), json!({"email": "TAKEN@example.com"})],
    );
    let (code, out, _) = run_cli(&["import", "--from", &again], &env, db.data_dir()).await;
    assert_eq!(code, 1);
    assert!(out.contains("line 2: an account with email taken@example.com already exists"), "{out}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 1);
}

async fn undo_removes_exactly_what_the_batch_added(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = env(&db);
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    assert_eq!(
        post(&server, "/auth/api/v1/signup/direct", &json!({"email": "native@example.com", "password": PW})).await,
        201
    );
    let mut lines: Vec<Value> = (0..2499)
        .map(|i| json!({"email": format!("u{i}@example.com"), "organizations": [{"name": format!("Team {}", i % 7)}]}))
        .collect();
    let django = "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=";
    lines.push(json!({"email": "imported@example.com", "password_hash": django}));
    let file = write(db.data_dir(), "many.jsonl", &lines);
    let (code, out, err) = run_cli(&["import", "--from", &file], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 2500 user(s), 2507 organization(s)"), "{out}");
    let batch = out.split("batch ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 2501);
    assert_eq!(login(&server, "imported@example.com", "lètmein").await, 200, "an imported user signs in");
    // A signup after the import is not the batch's.
    assert_eq!(
        post(&server, "/auth/api/v1/signup/direct", &json!({"email": "later@example.com", "password": PW})).await,
        201
    );

    let (code, out, err) = run_cli(&["import", "--undo", &batch], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed 2500 user(s) and 2507 organization(s)"), "{out}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM organizations").await, 2, "the two signups' own organizations");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM import_batches").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM ended_sessions").await,
        1,
        "the imported user's session went with them, and the revocation feed names it"
    );
    assert_eq!(login(&server, "imported@example.com", "lètmein").await, 401);
    assert_eq!(login(&server, "native@example.com", PW).await, 200);
    assert_eq!(login(&server, "later@example.com", PW).await, 200);
    let (code, _, err) = run_cli(&["import", "--undo", &batch], &env, db.data_dir()).await;
    assert_eq!(code, 1, "an unknown batch is an error");
    assert!(err.contains("no import batch"), "{err}");
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");
}

async fn scenario_a_backup_under_signup_load_restores_every_committed_user(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = env(&db);
    let server = std::sync::Arc::new(Server::start(&["serve"], &env, db.data_dir()).await);
    // Signups keep coming while the snapshot is taken.
    let load = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut committed = Vec::new();
            let started = std::time::Instant::now();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(4) {
                let email = format!("load{i}@example.com");
                if post(&server, "/auth/api/v1/signup/direct", &json!({"email": email, "password": PW})).await == 201 {
                    committed.push((std::time::Instant::now(), email));
                }
                i += 1;
            }
            committed
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snapshot = db.data_dir().join("snapshot.backup");
    let snap = snapshot.display().to_string();
    let before_backup = std::time::Instant::now();
    let (code, out, err) = run_cli(&["backup", "--to", &snap], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    let committed = load.await.unwrap();
    let in_snapshot: Vec<&String> = committed.iter().filter(|(t, _)| *t < before_backup).map(|(_, e)| e).collect();
    assert!(in_snapshot.len() >= 5, "signups committed before the backup: {}", in_snapshot.len());
    assert!(committed.len() > in_snapshot.len(), "signups went on during the backup");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (code, _, err) = run_cli(&["backup", "--to", &snap], &env, db.data_dir()).await;
    assert_ne!(code, 0, "an existing file is never overwritten");
    assert!(err.contains("exists already"), "{err}");

    // Restore refuses while the server has the database open.
    let (code, out, err) = run_cli(&["restore", "--from", &snap], &env, db.data_dir()).await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("in use"), "{err}");
    let server = std::sync::Arc::into_inner(server).unwrap();
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");

    let (code, out, err) = run_cli(&["restore", "--from", &snap], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("kept as"), "what it replaced is kept: {out}");
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    for email in &in_snapshot {
        assert_eq!(login(&server, email, PW).await, 200, "{email} was committed before the backup");
    }
    let restored = count(&db, "SELECT COUNT(*) FROM users").await as usize;
    assert!(restored >= in_snapshot.len() && restored <= committed.len(), "{restored}");
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");
}

async fn restore_refuses_a_snapshot_from_a_newer_schema(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = env(&db);
    let current = db.data_dir().join("current.backup").display().to_string();
    let (code, out, err) = run_cli(&["backup", "--to", &current], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run_cli(&["restore", "--from", &current], &env, db.data_dir()).await;
    assert_eq!(code, 0, "a snapshot of this version restores: {out}{err}");
    // A snapshot taken by a newer release (its schema has a migration this binary lacks).
    db.raw_sql("INSERT INTO authara_schema_version (version, name, applied_at_ms) VALUES (999, 'future', 0)").await;
    let future = db.data_dir().join("future.backup");
    match engine {
        Engine::Sqlite => {
            let store = db.store().await;
            authara::services::backup::private_empty_file(&future).unwrap();
            store.sqlite_snapshot(&future).await.unwrap();
            store.close().await;
        }
        Engine::Postgres => {
            let status = std::process::Command::new(authara::services::backup::pg_tool("pg_dump"))
                .env("PGHOST", &env["POSTGRESQL_HOST"])
                .env("PGPORT", &env["POSTGRESQL_PORT"])
                .env("PGUSER", &env["POSTGRESQL_USERNAME"])
                .env("PGDATABASE", &env["POSTGRESQL_DATABASE"])
                .args(["--format=custom", "--schema=authara", "--file"])
                .arg(&future)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    db.raw_sql("DELETE FROM authara_schema_version WHERE version = 999").await;
    let (code, out, err) = run_cli(&["restore", "--from", &future.display().to_string()], &env, db.data_dir()).await;
    assert_ne!(code, 0, "{out}{err}");
    let required = authara::store::migrate::required_version().to_string();
    assert!(err.contains("999") && err.contains(&required) && err.contains("newer"), "names both versions: {err}");
    let (code, _, _) = run_cli(&["migrate", "--check"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "the database was left as it was");
}

async fn scheduled_backups_keep_the_newest(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let mut env = env(&db);
    let dir = db.data_dir().join("backups");
    env.insert("AUTHARA_BACKUP_DIR".into(), dir.display().to_string());
    env.insert("AUTHARA_BACKUP_INTERVAL".into(), "1s".into());
    env.insert("AUTHARA_BACKUP_KEEP".into(), "2".into());
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let ext = if engine == Engine::Sqlite { ".db" } else { ".pgdump" };
    let list = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.retain(|n| n.starts_with("authara-") && n.ends_with(ext));
        names.sort();
        names
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        seen.extend(list());
        if seen.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.len() >= 4, "a snapshot each second: {seen:?}\n{}", server.logs());
    assert!(list().len() <= 2, "the newest two are kept: {:?}", list());
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "{logs}");
    assert!(logs.contains("backup written"), "{logs}");
}

/// What `migrate --check` lists for a database at `version`: every later migration, one a line.
fn pending_after(version: i64) -> String {
    authara::store::migrate::MIGRATIONS
        .iter()
        .filter(|m| m.version > version)
        .map(|m| format!("{} {}\n", m.version, m.name))
        .collect()
}

async fn migrate_check_lists_pending_migrations_and_exits_3(engine: Engine) {
    let db = TestDb::new(engine, false).await;
    let env = env(&db);
    let store = db.store().await;
    store.migrate_to(0, Some(11)).await.unwrap();
    store.close().await;
    let (code, out, err) = run_cli(&["migrate", "--check"], &env, db.data_dir()).await;
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(out, pending_after(11), "one pending migration a line");
    let (code, out, err) = run_cli(&["migrate"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    if engine == Engine::Sqlite {
        let line = out.lines().find(|l| l.starts_with("snapshot before migrating: ")).expect(&out);
        let snapshot = Path::new(line.trim_start_matches("snapshot before migrating: "));
        assert!(snapshot.file_name().unwrap().to_str().unwrap().starts_with("authara.db.pre-migrate-v11-"), "{line}");
        let info = authara::store::backup::inspect_sqlite_snapshot(snapshot).await.unwrap();
        assert_eq!(info.version(), 11, "the snapshot is the database before migrating");
    } else {
        assert!(!out.contains("snapshot"), "{out}");
    }
    let (code, out, _) = run_cli(&["migrate", "--check"], &env, db.data_dir()).await;
    assert_eq!((code, out.as_str()), (0, ""));
    db.raw_sql(
        "INSERT INTO authara_schema_version (version, name, applied_at_ms) VALUES (15, 'from_a_newer_release', 0)",
    )
    .await;
    let (code, _, err) = run_cli(&["migrate", "--check"], &env, db.data_dir()).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("15 from_a_newer_release"), "{err}");
    let (code, _, err) = run_cli(&["serve"], &env, db.data_dir()).await;
    assert_ne!(code, 0);
    assert!(err.contains("15 from_a_newer_release") && err.contains("newer authara"), "{err}");
}

#[tokio::test]
async fn sqlite_keeps_the_last_n_pre_migration_snapshots() {
    let db = TestDb::new(Engine::Sqlite, false).await;
    let mut vars = env(&db);
    vars.insert("AUTHARA_MIGRATE_SNAPSHOTS_KEEP".into(), "2".into());
    let (config, _) = authara::config::load_from_map(&vars).unwrap();
    let store = db.store().await;
    store.migrate_to(0, Some(11)).await.unwrap();
    let mut taken = Vec::new();
    for second in 0..3 {
        let path =
            authara::app::snapshot_before_migrate(&store, &config, 1_700_000_000_000 + second * 1000).await.unwrap();
        taken.push(path.expect("a snapshot while migrations are pending"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.migrate(0).await.unwrap();
    assert!(authara::app::snapshot_before_migrate(&store, &config, 0).await.unwrap().is_none(), "nothing pending");
    store.close().await;
    let left: Vec<bool> = taken.iter().map(|p| p.exists()).collect();
    assert_eq!(left, [false, true, true], "the newest two are kept");
}

/// SIGKILL while the migrations run: the database is left as it was (the previous release's
/// schema, which that release starts on), and the next run finishes.
async fn scenario_a_migration_killed_midway_leaves_the_previous_schema(engine: Engine) {
    let db = TestDb::new(engine, false).await;
    let mut env = env(&db);
    env.insert("AUTHARA_MIGRATE_SNAPSHOTS_KEEP".into(), "0".into());
    let store = db.store().await;
    store.migrate_to(0, Some(11)).await.unwrap();
    store.close().await;
    // Enough rows that migration 20's index takes a while.
    db.raw_sql(match engine {
        Engine::Sqlite => {
            "INSERT INTO users (id, email, username, username_normalized, created_at_ms, updated_at_ms) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) \
             SELECT randomblob(16), 'u' || i || '@example.com', 'u' || i, 'u' || i, 0, 0 FROM n"
        }
        Engine::Postgres => {
            "INSERT INTO authara.users (id, email, username, username_normalized, created_at_ms, updated_at_ms) \
             SELECT gen_random_uuid(), 'u' || i || '@example.com', 'u' || i, 'u' || i, 0, 0 FROM generate_series(1, 200000) i"
        }
    })
    .await;
    let mut killed_midway = false;
    match engine {
        Engine::Postgres => {
            // Hold a lock migration 12 needs: the migrator blocks inside its transaction.
            let mut blocker = crate::harness::pg_connect(db.pg_database.as_deref().unwrap()).await;
            sqlx::raw_sql("BEGIN; LOCK TABLE authara.users IN SHARE MODE").execute(&mut blocker).await.unwrap();
            let mut child = crate::harness::command(&["migrate"], &env, db.data_dir()).spawn().unwrap();
            let mut watcher = crate::harness::pg_connect(db.pg_database.as_deref().unwrap()).await;
            for _ in 0..400 {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'users' AND NOT l.granted",
                )
                .fetch_one(&mut watcher)
                .await
                .unwrap();
                if waiting > 0 {
                    killed_midway = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            child.kill().await.unwrap();
            child.wait().await.unwrap();
            sqlx::raw_sql("ROLLBACK").execute(&mut blocker).await.unwrap();
        }
        Engine::Sqlite => {
            // The migrator holds SQLite's write lock from BEGIN IMMEDIATE to COMMIT: kill it as
            // soon as a probe finds the lock taken.
            use sqlx::Connection as _;
            let path = db.data_dir().join("authara.db");
            let mut child = crate::harness::command(&["migrate"], &env, db.data_dir()).spawn().unwrap();
            let url = format!("sqlite://{}", path.display());
            let mut probe = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("PRAGMA busy_timeout = 0").execute(&mut probe).await.unwrap();
            for _ in 0..20_000 {
                match sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK").execute(&mut probe).await {
                    Err(_) => {
                        child.start_kill().unwrap();
                        killed_midway = true;
                        break;
                    }
                    Ok(_) => tokio::task::yield_now().await,
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
            child.wait().await.unwrap();
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut probe).await;
        }
    }
    assert!(killed_midway, "the migrator was caught inside its transaction");
    let status = db.store().await.migration_status().await.unwrap();
    // Killed before the commit (PostgreSQL: certainly; SQLite: unless the commit won the race,
    // in which case everything is applied): never part of the migrations.
    let versions: Vec<i64> = status.applied.iter().map(|(v, _)| *v).collect();
    let old: Vec<i64> = authara::store::migrate::MIGRATIONS.iter().map(|m| m.version).filter(|v| *v <= 11).collect();
    let all: Vec<i64> = authara::store::migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert!(versions == old || versions == all, "all or nothing: {versions:?}");
    if engine == Engine::Postgres {
        assert_eq!(versions, old, "the previous release's schema");
    }
    if versions == old {
        // The previous release's schema is intact: no column or table of 12 or 20.
        let columns = count(&db, "SELECT COUNT(*) FROM users WHERE 1 = 1").await;
        assert_eq!(columns, 200_000);
        let (code, out, _) = run_cli(&["migrate", "--check"], &env, db.data_dir()).await;
        assert_eq!((code, out), (3, pending_after(11)));
    }
    let server = Server::start(&["serve", "--migrate"], &env, db.data_dir()).await;
    let (status, logs) = server.terminate().await;
    assert!(status.success(), "the new release finishes: {logs}");
    let (code, _, _) = run_cli(&["migrate", "--check"], &env, db.data_dir()).await;
    assert_eq!(code, 0);
}

on_both_engines!(
    scenario_every_imported_hash_format_signs_in_and_is_upgraded,
    import_problems_name_their_lines_and_write_nothing,
    undo_removes_exactly_what_the_batch_added,
    scenario_a_backup_under_signup_load_restores_every_committed_user,
    restore_refuses_a_snapshot_from_a_newer_schema,
    scheduled_backups_keep_the_newest,
    migrate_check_lists_pending_migrations_and_exits_3,
    scenario_a_migration_killed_midway_leaves_the_previous_schema,
);
