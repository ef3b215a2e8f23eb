//! The real `authara` binary on a free port with SQLite in a temporary directory, a browser-like
//! API client to sign up and log in, and a hand-moved clock for the SDK.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authara_sdk::{Clock, SystemClock};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

pub const ISSUER: &str = "https://auth.sdk.test";
pub const INTERNAL_TOKEN: &str = "sdk-internal-token-0123456789";
pub const PW: &str = "violet-harbor-tangent";
/// `AUTHARA_JWT_KEYS` of the HS256 servers.
pub const K1: &str = "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
pub const K2: &str = "k2:YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";

/// A directory of the build's binaries: next to the test executable (`target/<profile>/deps`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The server binary: `AUTHARA_BIN`, or `authara` of this build.
#[expect(clippy::disallowed_methods, reason = "the suite's own AUTHARA_BIN override")]
pub fn server_bin() -> PathBuf {
    let path = std::env::var_os("AUTHARA_BIN").map_or_else(|| profile_dir().join("authara"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: the SDK's tests run the real server; build it first with `cargo build -p authara` \
         (or run `cargo test --workspace`, which builds it), or point AUTHARA_BIN at one",
        path.display()
    );
    path
}

/// An example binary of this crate, which `cargo test` builds.
pub fn example_bin(name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(name);
    assert!(path.is_file(), "{} is missing: build it with `cargo build -p authara-sdk --examples`", path.display());
    path
}

/// A port nobody listens on right now (the server binds it itself, so that a restart can
/// come back on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A new Ed25519 signing key as PKCS#8 PEM (`AUTHARA_JWT_EDDSA_PRIVATE_KEY`).
pub fn ed25519_pem() -> String {
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

/// How the server signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    EdDsa,
}

/// Runs an async test body once per signing algorithm.
macro_rules! on_both_algorithms {
    ($($name:ident),* $(,)?) => {
        mod hs256 {
            $( #[tokio::test] async fn $name() { super::$name(crate::harness::Alg::Hs256).await } )*
        }
        mod eddsa {
            $( #[tokio::test] async fn $name() { super::$name(crate::harness::Alg::EdDsa).await } )*
        }
    };
}
pub(crate) use on_both_algorithms;

/// The environment of a test server signing with `alg`.
pub fn server_env(alg: Alg) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "1024"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
        ("AUTHARA_PASSWORD_HASH_PARALLELISM", "1"),
        ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000"),
        ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "1000"),
        ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1000"),
        ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "1000"),
        ("AUTHARA_JWT_ISSUER", ISSUER),
        ("AUTHARA_INTERNAL_API_TOKEN", INTERNAL_TOKEN),
        ("AUTHARA_ORG_MODE", "multi"),
        ("LOG_LEVEL", "debug"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    match alg {
        Alg::Hs256 => {
            env.insert("AUTHARA_JWT_KEYS".into(), K1.into());
            env.insert("AUTHARA_JWT_ACTIVE_KEY_ID".into(), "k1".into());
        }
        Alg::EdDsa => {
            env.insert("AUTHARA_JWT_ALGORITHM".into(), "EdDSA".into());
            env.insert("AUTHARA_JWT_EDDSA_PRIVATE_KEY".into(), ed25519_pem());
        }
    }
    env
}

/// The real server, stopped when dropped (its data directory lives as long as the value).
pub struct Server {
    child: tokio::process::Child,
    pub base: String,
    pub port: u16,
    pub env: HashMap<String, String>,
    pub dir: Arc<tempfile::TempDir>,
    output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub async fn start(alg: Alg) -> Server {
        Self::start_with(server_env(alg)).await
    }

    pub async fn start_with(env: HashMap<String, String>) -> Server {
        Self::start_in(Arc::new(tempfile::tempdir().unwrap()), env, free_port()).await
    }

    /// Starts `authara serve --migrate` on `port` with `dir` as its data directory.
    pub async fn start_in(dir: Arc<tempfile::TempDir>, mut env: HashMap<String, String>, port: u16) -> Server {
        env.insert("AUTHARA_DATA_DIR".into(), dir.path().display().to_string());
        env.insert("AUTHARA_BIND".into(), format!("127.0.0.1:{port}"));
        let mut child = command(&server_bin(), &["serve", "--migrate"], &env, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (output, mut lines) = collect_output(&mut child);
        let listening = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.recv().await {
                if line.contains("listening on http://") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(listening == Ok(true), "the server did not start: {:#?}", output.lock().unwrap());
        Server { child, base: format!("http://127.0.0.1:{port}"), port, env, dir, output }
    }

    /// Stops this server and starts another on the same port and data directory with `env`.
    pub async fn restart_with(mut self, env: HashMap<String, String>) -> Server {
        let (dir, port) = (self.dir.clone(), self.port);
        self.stop().await;
        Server::start_in(dir, env, port).await
    }

    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        let _ = self.child.kill().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn jwks_url(&self) -> String {
        self.url(authara_sdk::JWKS_PATH)
    }

    pub fn logs(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Runs a CLI command of the binary against this server's store (`admin grant`, …).
    pub async fn cli(&self, args: &[&str]) {
        let out = command(&server_bin(), args, &self.env, self.dir.path()).output().await.unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Signs up an account through the API; the access token of its first session.
    pub async fn sign_up(&self, email: &str) -> Session {
        let s = self
            .api(reqwest::Method::POST, "/auth/api/v1/signup/direct", &json!({"email": email, "password": PW}))
            .await;
        assert_eq!(s.0, 201, "signup {email}: {}", s.1);
        Session::from(&s.1)
    }

    /// Logs in through the API (`audience` `app` or `admin`).
    pub async fn log_in(&self, email: &str, audience: &str) -> Session {
        let path = format!("/auth/api/v1/login?audience={audience}");
        let s = self.api(reqwest::Method::POST, &path, &json!({"email": email, "password": PW})).await;
        assert_eq!(s.0, 200, "login {email}: {}", s.1);
        Session::from(&s.1)
    }

    /// A team organization of `owner` (created through the internal API) and the access token
    /// of a new member invited to it, whose session is in that team.
    pub async fn team_member(&self, owner: &str, email: &str) -> (uuid::Uuid, String) {
        use authara_sdk::client::{InternalClient, NewInvitation};
        let internal = InternalClient::new(&self.base, INTERNAL_TOKEN).unwrap();
        let owner = owner.parse().unwrap();
        let team = internal.create_organization("Crew", owner).await.unwrap().organization.id;
        let invitation = internal.create_invitation(team, &NewInvitation::new(owner, email)).await.unwrap();
        let code = invitation.invite_url.unwrap().split_once("token=").unwrap().1.to_owned();
        let body = json!({"email": email, "password": PW, "invitation_code": code});
        let (status, body) = self.api(reqwest::Method::POST, "/auth/api/v1/signup/direct", &body).await;
        assert_eq!(status, 201, "{body}");
        (team, self.switch(body["access_token"].as_str().unwrap(), team).await)
    }

    /// Switches the session of `access_token` to `org`: the new access token.
    pub async fn switch(&self, access_token: &str, org: uuid::Uuid) -> String {
        let path = format!("/auth/api/v1/organizations/{org}/switch");
        let (status, body) = self.api_as(Some(access_token), reqwest::Method::POST, &path, &json!({})).await;
        assert_eq!(status, 200, "switch: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A JSON API call as a browser makes it: CSRF cookie and header.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        self.api_as(None, method, path, body).await
    }

    /// [`api`](Self::api) with the session's access cookie.
    pub async fn api_as(
        &self,
        access: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let http = client();
        let csrf = http.get(self.url("/auth/api/v1/csrf")).send().await.unwrap();
        let token = csrf.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
        let mut cookie = format!("authara_csrf={token}");
        if let Some(access) = access {
            cookie.push_str(&format!("; authara_access={access}"));
        }
        let res = http
            .request(method, self.url(path))
            .header("cookie", cookie)
            .header("x-csrf-token", &token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// What a sign-in answers.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access_token: String,
}

impl From<&Value> for Session {
    fn from(v: &Value) -> Self {
        Session {
            user_id: v["user"]["id"].as_str().unwrap().to_owned(),
            access_token: v["access_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// A command with a clean environment (only PATH kept).
#[expect(clippy::disallowed_methods, reason = "passes the suite's PATH through to the binaries under test")]
pub fn command(bin: &Path, args: &[&str], env: &HashMap<String, String>, cwd: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args).env_clear().current_dir(cwd).kill_on_drop(true);
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(env);
    cmd
}

/// Collects a child's output lines, and streams them as they come.
pub fn collect_output(
    child: &mut tokio::process::Child,
) -> (Arc<Mutex<Vec<String>>>, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let streams: [Box<dyn tokio::io::AsyncRead + Unpin + Send>; 2] =
        [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    for stream in streams {
        let (output, tx) = (output.clone(), tx.clone());
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                output.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
    }
    (output, rx)
}

/// An HTTP client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A clock the test moves by hand, starting at the real time (the server's tokens are minted
/// against it).
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn now() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(SystemClock.now_ms())))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(i64::try_from(d.as_millis()).unwrap(), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A verifier for the server's tokens: its HS256 keys, or its JWKS.
pub fn verifier_for(server: &Server, alg: Alg) -> authara_sdk::VerifierBuilder {
    let b = authara_sdk::Verifier::builder(ISSUER);
    match alg {
        Alg::Hs256 => b.hs256_keys(server.env["AUTHARA_JWT_KEYS"].parse().unwrap()),
        Alg::EdDsa => b.jwks_url(server.jwks_url()),
    }
}

/// How many times the server was asked for its JWKS (its debug access log).
pub fn jwks_requests(server: &Server) -> usize {
    server.logs().iter().filter(|l| l.contains(authara_sdk::JWKS_PATH) && l.contains("request")).count()
}

/// Polls `check` every 20 ms until it holds, for at most `within`.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
