//! Test harness: databases on both engines, the real binary, and an HTTP client.
//!
//! PostgreSQL is the throwaway cluster `scripts/test` starts (AUTHARA_TEST_PG_*). A missing
//! cluster is a failure, not a skip. One migrated template database is made per run; each test
//! gets its own copy (`CREATE DATABASE … TEMPLATE`), or an empty database when it tests
//! migrations themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authara::store::Store;
use serde_json::Value;
use sqlx::Connection as _;
use tokio::io::AsyncBufReadExt as _;

use crate::app::send_checked;

/// The password every test account uses (long enough for every policy).
pub const PW: &str = "violet-harbor-tangent";

/// What `APP_ENV=prod` requires, with a test key: add to an environment to start in prod.
pub const PROD: [(&str, &str); 5] = [
    ("APP_ENV", "prod"),
    ("AUTHARA_JWT_KEYS", "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="),
    ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
    ("AUTHARA_JWT_ISSUER", "https://app.example.com"),
    ("PUBLIC_URL", "https://app.example.com"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Emits one `#[tokio::test]` per engine for each `async fn name(engine: Engine)`. Names after
/// `; threaded:` run on a runtime of 4 worker threads: the in-process server and the test's
/// clients then truly run in parallel (a race test on one thread only interleaves at awaits).
macro_rules! on_both_engines {
    ($($name:ident),* $(,)? $(; threaded: $($threaded:ident),* $(,)?)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(crate::harness::Engine::Sqlite).await } )*
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $threaded() { super::$threaded(crate::harness::Engine::Sqlite).await }
            )*)?
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(crate::harness::Engine::Postgres).await } )*
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $threaded() { super::$threaded(crate::harness::Engine::Postgres).await }
            )*)?
        }
    };
}
pub(crate) use on_both_engines;

struct PgEnv {
    host: String,
    port: String,
    user: String,
}

#[expect(
    clippy::disallowed_methods,
    reason = "the suite reads its own AUTHARA_TEST_PG_* variables, set by scripts/test"
)]
fn pg_env() -> PgEnv {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: PostgreSQL tests need the throwaway cluster; run `scripts/test` (it starts one)")
        })
    };
    PgEnv { host: get("AUTHARA_TEST_PG_HOST"), port: get("AUTHARA_TEST_PG_PORT"), user: get("AUTHARA_TEST_PG_USER") }
}

fn pg_url(db: &str) -> String {
    let e = pg_env();
    format!("postgres://{}@localhost:{}/{db}?host={}", e.user, e.port, e.host)
}

/// A raw connection to one database of the test cluster.
pub async fn pg_connect(db: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&pg_url(db)).await.expect("connect to the test PostgreSQL")
}

static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// The migrated template's name: one per checkout and set of migrations, so that two checkouts
/// testing against one cluster at the same time do not drop or replace each other's template.
fn template_name() -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(env!("CARGO_MANIFEST_DIR"));
    for m in authara::store::migrate::MIGRATIONS {
        h.update(format!("{}\0{}\0{}\0{}\0", m.version, m.name, m.sqlite, m.postgres));
    }
    let hex: String = h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("authara_template_{hex}")
}

/// Migrates this run's template database (once per test process) and returns its name.
async fn ensure_template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut admin = pg_connect("postgres").await;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin).await.unwrap();
            sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
            let store = Store::connect_postgres_url(&pg_url(&name), "authara").await.unwrap();
            store.migrate(0).await.unwrap();
            store.close().await;
            name
        })
        .await
}

/// A database for one test, with the environment that points the binary at it.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub pg_database: Option<String>,
}

impl TestDb {
    /// A fresh database; migrated to the current version when `migrated`.
    pub async fn new(engine: Engine, migrated: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg_database = match engine {
            Engine::Sqlite => {
                if migrated {
                    let store = Store::open_sqlite(&dir.path().join("authara.db"), 2).await.unwrap();
                    store.migrate(0).await.unwrap();
                    store.close().await;
                }
                None
            }
            Engine::Postgres => {
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                let template = if migrated { ensure_template().await } else { "template0" };
                let mut admin = pg_connect("postgres").await;
                sqlx::raw_sql(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Some(name)
            }
        };
        TestDb { dir, pg_database }
    }

    /// An empty stand-in, left behind when a test takes the database out of a `TestApp`.
    pub fn placeholder() -> Self {
        TestDb { dir: tempfile::tempdir().unwrap(), pg_database: None }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection of its own to this SQLite database (tests that read or set up what no route
    /// reaches).
    pub async fn sqlite_connection(&self) -> sqlx::SqliteConnection {
        let url = format!("sqlite://{}", self.dir.path().join("authara.db").display());
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }

    /// Environment for the binary: the data dir, and the PostgreSQL variables on that engine.
    pub fn env(&self) -> HashMap<String, String> {
        let mut env = HashMap::new();
        env.insert("AUTHARA_DATA_DIR".into(), self.dir.path().display().to_string());
        if let Some(db) = &self.pg_database {
            let e = pg_env();
            env.insert("POSTGRESQL_HOST".into(), e.host);
            env.insert("POSTGRESQL_PORT".into(), e.port);
            env.insert("POSTGRESQL_USERNAME".into(), e.user);
            env.insert("POSTGRESQL_DATABASE".into(), db.clone());
        }
        env
    }

    /// A store on this database (as the server would open it).
    pub async fn store(&self) -> Store {
        match &self.pg_database {
            None => Store::open_sqlite(&self.dir.path().join("authara.db"), 4).await.unwrap(),
            Some(db) => Store::connect_postgres_url(&pg_url(db), "authara").await.unwrap(),
        }
    }

    /// Runs raw SQL on this database through a connection of its own (tests that set up states
    /// no route can reach, such as a schema from the future).
    pub async fn raw_sql(&self, sql: &str) {
        match &self.pg_database {
            None => {
                let mut c = self.sqlite_connection().await;
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Some(db) => {
                let mut c = pg_connect(db).await;
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// The first column, as text (NULLs skipped), of every row `sql` selects (tests that check
    /// what is at rest, beyond what the store reads back).
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        let rows: Vec<Option<String>> = match &self.pg_database {
            None => {
                let mut c = self.sqlite_connection().await;
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            Some(db) => {
                let mut c = pg_connect(db).await;
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
        };
        rows.into_iter().flatten().collect()
    }

    /// Makes the database unreachable: PostgreSQL drops it (forcing connections off).
    pub async fn take_down(&self) {
        let db = self.pg_database.as_ref().expect("only PostgreSQL databases can be taken down");
        let mut admin = pg_connect("postgres").await;
        sqlx::raw_sql(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_authara"))
}

/// A command for the real binary with a clean environment (only PATH kept), run in `cwd`.
#[expect(clippy::disallowed_methods, reason = "passes the harness's PATH through to the binary under test")]
pub fn command(args: &[&str], env: &HashMap<String, String>, cwd: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args).env_clear().current_dir(cwd).kill_on_drop(true);
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env);
    cmd
}

/// Runs a CLI command to completion: (exit code, stdout, stderr).
pub async fn run_cli(args: &[&str], env: &HashMap<String, String>, cwd: &Path) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), command(args, env, cwd).output())
        .await
        .expect("the command finished within 60s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real binary serving on a free port on 127.0.0.1.
pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
    pub addr: String,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `authara <args>` with AUTHARA_BIND=127.0.0.1:0 and waits until it is listening
    /// and `/auth/health` answers.
    pub async fn start(args: &[&str], env: &HashMap<String, String>, cwd: &Path) -> Server {
        let mut env = env.clone();
        env.entry("AUTHARA_BIND".into()).or_insert_with(|| "127.0.0.1:0".into());
        let mut child = command(args, &env, cwd).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = rx.recv().await {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    return rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c))
                        .collect::<String>();
                }
            }
            panic!("the server exited before listening: {:#?}", output.lock().unwrap());
        })
        .await
        .unwrap_or_else(|_| panic!("the server did not listen within 30s: {:#?}", output.lock().unwrap()));
        let server = Server { child, base: format!("http://{addr}"), addr, output };
        server.wait_healthy().await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls `/auth/health` until it answers (any status), never a fixed sleep.
    async fn wait_healthy(&self) {
        let client = client();
        for _ in 0..200 {
            if crate::app::try_send_checked(client.get(self.url("/auth/health"))).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server never answered /auth/health");
    }

    pub fn logs(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server stopped within 20s of SIGTERM")
            .unwrap();
        // Let the reader tasks drain the pipes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let logs = self.logs();
        (exit, logs)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Environment for the real binary on `db`: fast password hashing and a fixed signing key (so a
/// restarted process verifies the tokens of the previous one).
pub fn server_env<K: AsRef<str>, V: AsRef<str>>(db: &TestDb, extra: &[(K, V)]) -> HashMap<String, String> {
    let mut env = db.env();
    for (k, v) in [
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "1024"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
        ("AUTHARA_PASSWORD_HASH_PARALLELISM", "1"),
        ("AUTHARA_JWT_KEYS", "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="),
        ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.extend(extra.iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())));
    env
}

/// A script calling the real binary's API with plain reqwest: it fetched a CSRF token and sends
/// it back as the cookie and the `X-CSRF-Token` header. Every answer is checked against the
/// contract (`app::send_checked`).
pub struct Script {
    csrf: String,
}

impl Script {
    pub async fn new(server: &Server) -> Script {
        Script::new_at(&server.base).await
    }

    /// The same, for a server known only by its base URL.
    pub async fn new_at(base: &str) -> Script {
        let res = send_checked(client().get(format!("{base}/auth/api/v1/csrf"))).await;
        assert_eq!(res.status, 200);
        Script { csrf: res.json()["csrf_token"].as_str().unwrap().to_owned() }
    }

    /// The CSRF token (cookie and header value).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// POSTs JSON with the CSRF pair and `cookies`: (status, body or null).
    pub async fn post(&self, server: &Server, path: &str, cookies: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let mut cookie = format!("authara_csrf={}", self.csrf);
        for (k, v) in cookies {
            cookie.push_str(&format!("; {k}={v}"));
        }
        let res = send_checked(
            client()
                .post(server.url(path))
                .header("cookie", cookie)
                .header("x-csrf-token", &self.csrf)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
        (res.status, res.json())
    }
}

/// `GET /auth/api/v1/user` with nothing but an access cookie: the status.
pub async fn user_status(server: &Server, access: &str) -> u16 {
    let req = client().get(server.url("/auth/api/v1/user")).header("cookie", format!("authara_access={access}"));
    send_checked(req).await.status
}
