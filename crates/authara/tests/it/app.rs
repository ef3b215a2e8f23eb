//! The server in-process on a real socket, with a hand-moved clock, and a client with a
//! cookie jar that checks every API response against the contract.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authara::app::App;
use authara::clock::{Clock as _, ManualClock, SystemClock};
use authara::services::Services;
use authara::store::Store;
use reqwest::Method;
use serde_json::Value;

use crate::harness::{Engine, TestDb};

/// A running app. Dropping it stops the server.
pub struct TestApp {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub services: Services,
    /// The app's store, for assertions on what was written.
    pub store: Store,
    pub config: Arc<authara::config::Config>,
    pub db: TestDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A valid address (test input).
pub fn email(s: &str) -> authara::domain::EmailAddress {
    authara::domain::EmailAddress::parse(s).unwrap()
}

/// Settings that keep tests fast; a test may override any variable.
fn base_env(db: &TestDb) -> HashMap<String, String> {
    let mut env = db.env();
    for (k, v) in [
        ("AUTHARA_BIND", "127.0.0.1:0"),
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "1024"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
        ("AUTHARA_PASSWORD_HASH_PARALLELISM", "1"),
        ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000"),
        ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "1000"),
        ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1000"),
        ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "1000"),
        ("AUTHARA_JWT_KEYS", "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="),
        ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
        ("LOG_LEVEL", "warn"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env
}

impl TestApp {
    pub async fn start(engine: Engine) -> TestApp {
        Self::start_with(engine, &[]).await
    }

    pub async fn start_with(engine: Engine, overrides: &[(&str, &str)]) -> TestApp {
        let db = TestDb::new(engine, true).await;
        Self::start_on(db, overrides, None).await
    }

    /// An app with a local helper's settings (`SmtpSink::env`, `Receiver::env`, `Provider::env`)
    /// and `extra` on top.
    pub async fn start_with_env<K: AsRef<str>, V: AsRef<str>>(
        engine: Engine,
        env: &[(K, V)],
        extra: &[(&str, &str)],
    ) -> TestApp {
        TestApp::start_with(engine, &settings(env, extra)).await
    }

    /// Starts on an existing database (a "restart" keeps the database and the clock).
    pub async fn start_on(db: TestDb, overrides: &[(&str, &str)], clock: Option<Arc<ManualClock>>) -> TestApp {
        let mut env = base_env(&db);
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let (config, _) = authara::config::load_from_map(&env).unwrap();
        let config = Arc::new(config);
        let clock = clock.unwrap_or_else(|| ManualClock::new(SystemClock.now_ms()));
        let app = App::open(config.clone(), clock.clone(), false).await.unwrap();
        let router = app.router();
        let limits = authara::http::server::Limits::from_config(&config.http);
        let (services, store) = (app.services.clone(), app.store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = authara::http::server::serve(
                listener,
                router,
                async move {
                    let _ = stopped.await;
                },
                limits,
            )
            .await;
        });
        TestApp {
            base: format!("http://{addr}"),
            clock,
            services,
            store,
            config,
            db,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and hands back its database and clock, for a restart.
    pub async fn stop(mut self) -> (TestDb, Arc<ManualClock>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.store.close().await;
        let clock = self.clock.clone();
        let db = std::mem::replace(&mut self.db, TestDb::placeholder());
        (db, clock)
    }

    /// Another server instance on the same database and clock (its own pools), as a second
    /// replica behind a load balancer would be.
    pub async fn second_instance(&self) -> Services {
        App::open(self.config.clone(), self.clock.clone(), false).await.unwrap().services
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn client(&self) -> TestClient {
        TestClient::new(&self.base)
    }

    /// A new client holding a CSRF token (cookie and header), ready for the JSON API.
    pub async fn csrf_client(&self) -> TestClient {
        let c = self.client();
        c.fetch_csrf().await;
        c
    }

    /// A client with a CSRF cookie and a fresh account, signed in.
    pub async fn signed_in(&self, email: &str, password: &str) -> TestClient {
        let c = self.csrf_client().await;
        let res = c
            .json(
                Method::POST,
                "/auth/api/v1/signup/direct",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(res.status, 201, "signup {email}: {}", res.text());
        c
    }

    /// A client with a CSRF cookie and a new session of an existing account (another device).
    pub async fn logged_in(&self, email: &str, password: &str) -> TestClient {
        let c = self.csrf_client().await;
        let body = serde_json::json!({"email": email, "password": password});
        let res = c.json(Method::POST, "/auth/api/v1/login", &body).await;
        assert_eq!(res.status, 200, "login {email}: {}", res.text());
        c
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response with its body read.
pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Res {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find(|c| c.starts_with(&format!("{name}=")))
    }

    pub fn location(&self) -> Option<String> {
        self.headers.get("location").map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// What the internal API needs: its bearer token (tests set `AUTHARA_INTERNAL_API_TOKEN`).
pub const INTERNAL_TOKEN: &str = "internal-test-token-0123456789";

impl TestClient {
    /// An account-page action's answer: a 303 back to the account page, whose text (with the
    /// message the action left) comes back.
    pub async fn back_on_account(&self, res: &Res) -> String {
        assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/account")), "{}", res.text());
        let page = self.get("/auth/account").await;
        assert_eq!(page.status, 200);
        page.text()
    }

    /// A server-to-server POST to the internal API with the bearer token (use a fresh client: a
    /// server sends no cookies).
    pub async fn internal(&self, path: &str, body: Option<&Value>) -> Res {
        let auth = format!("Bearer {INTERNAL_TOKEN}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.send(Method::POST, path, body.map(|b| b.to_string().into_bytes()), &headers).await
    }
}

impl TestClient {
    /// A server-to-server GET of the internal API with the bearer token.
    pub async fn internal_get(&self, path: &str) -> Res {
        let auth = format!("Bearer {INTERNAL_TOKEN}");
        self.send(Method::GET, path, None, &[("authorization", auth.as_str())]).await
    }
}

/// A browser-like client: keeps cookies, echoes the CSRF cookie in `X-CSRF-Token`.
#[derive(Clone)]
pub struct TestClient {
    base: String,
    http: reqwest::Client,
    pub jar: Arc<Mutex<HashMap<String, String>>>,
    pub send_csrf: Arc<Mutex<bool>>,
}

impl TestClient {
    pub fn new(base: &str) -> Self {
        TestClient {
            base: base.to_owned(),
            http: crate::harness::client(),
            jar: Arc::default(),
            send_csrf: Arc::new(Mutex::new(true)),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.to_owned(), value.to_owned());
    }

    pub fn remove_cookie(&self, name: &str) {
        self.jar.lock().unwrap().remove(name);
    }

    pub async fn fetch_csrf(&self) -> String {
        let res = self.send(Method::GET, "/auth/api/v1/csrf", None, &[]).await;
        assert_eq!(res.status, 200);
        res.json()["csrf_token"].as_str().unwrap().to_owned()
    }

    /// A form post as a browser sends it, with the page's `csrf_token` field (no header).
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Res {
        let csrf = self.cookie("authara_csrf").unwrap_or_default();
        let mut body: Vec<(String, String)> = vec![("csrf_token".into(), csrf)];
        body.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let encoded = body
            .iter()
            .map(|(k, v)| {
                format!("{}={}", authara::services::return_to::encode(k), authara::services::return_to::encode(v))
            })
            .collect::<Vec<_>>()
            .join("&");
        let was = std::mem::replace(&mut *self.send_csrf.lock().unwrap(), false);
        let res = self
            .send(
                Method::POST,
                path,
                Some(encoded.into_bytes()),
                &[("content-type", "application/x-www-form-urlencoded")],
            )
            .await;
        *self.send_csrf.lock().unwrap() = was;
        res
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str) -> Res {
        self.send(Method::POST, path, None, &[]).await
    }

    pub async fn json(&self, method: Method, path: &str, body: &Value) -> Res {
        self.send(method, path, Some(body.to_string().into_bytes()), &[("content-type", "application/json")]).await
    }

    /// Sends a request with the jar's cookies, stores `Set-Cookie` answers, and validates API
    /// responses against the contract.
    pub async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>, headers: &[(&str, &str)]) -> Res {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        let cookie_header = {
            let jar = self.jar.lock().unwrap();
            jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        };
        if !cookie_header.is_empty() {
            req = req.header("cookie", cookie_header);
        }
        if *self.send_csrf.lock().unwrap()
            && let Some(csrf) = self.cookie("authara_csrf")
        {
            req = req.header("x-csrf-token", csrf);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = send_checked(req).await;
        for c in res.set_cookies() {
            let first = c.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            if value.is_empty() || c.contains("Max-Age=0") {
                self.jar.lock().unwrap().remove(name);
            } else {
                self.jar.lock().unwrap().insert(name.to_owned(), value.to_owned());
            }
        }
        res
    }
}

/// Sends a request built on any client (a raw one, for a script's or a proxy's view) and reads
/// the whole answer, which is checked against the contract when the contract describes its path
/// (`contract::describes`). Every request of the suite to a server goes through here or through
/// `TestClient`, which uses it (`cross_cutting/contract.rs` holds the suite to that).
pub async fn send_checked(req: reqwest::RequestBuilder) -> Res {
    try_send_checked(req).await.unwrap_or_else(|e| panic!("{e}"))
}

/// [`send_checked`] for a test where the server may be gone: a connection that fails is an
/// `Err`; an answer that arrives whole is checked.
pub async fn try_send_checked(req: reqwest::RequestBuilder) -> reqwest::Result<Res> {
    let (http, req) = req.build_split();
    let req = req?;
    let (method, path) = (req.method().clone(), req.url().path().to_owned());
    let res = http.execute(req).await?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.bytes().await?.to_vec();
    let ct = headers.get("content-type").map(|v| v.to_str().unwrap());
    crate::contract::validate_if_described(method.as_str(), &path, status, ct, &body);
    Ok(Res { status, headers, body })
}

/// A browser that opened the login page, so it holds the CSRF cookie every page sets.
pub async fn browser(app: &TestApp) -> TestClient {
    let c = app.client();
    let res = c.get("/auth/login").await;
    assert_eq!(res.status, 200);
    assert!(res.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.set_cookie("authara_csrf").is_some(), "every page ensures the CSRF cookie");
    c
}

/// Runs the email worker until nothing is due; what each run did.
pub async fn drain_mail(app: &TestApp) -> Vec<authara::worker::email::Outcome> {
    use authara::worker::email::{Outcome, run_once};
    let mut outcomes = Vec::new();
    loop {
        match run_once(&app.services).await.unwrap() {
            Outcome::Idle => return outcomes,
            o => outcomes.push(o),
        }
    }
}

/// Runs the webhook worker until nothing is due; what each run did.
pub async fn drain_webhooks(app: &TestApp) -> Vec<authara::worker::webhooks::Outcome> {
    use authara::worker::webhooks::{Outcome, run_once};
    let mut outcomes = Vec::new();
    loop {
        match run_once(&app.services).await.unwrap() {
            Outcome::Idle => return outcomes,
            o => outcomes.push(o),
        }
    }
}

/// The claims of a JWT (its payload, not verified: the tests read what the server put there).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A helper's settings and `extra` as the pairs [`TestApp::start_with`] takes.
pub fn settings<'a, K: AsRef<str>, V: AsRef<str>>(
    env: &'a [(K, V)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    pairs.extend_from_slice(extra);
    pairs
}

/// The value of the hidden form field `name` on a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    html.split(&marker).nth(1).unwrap_or_else(|| panic!("no {name} in {html}")).split('"').next().unwrap().to_owned()
}
