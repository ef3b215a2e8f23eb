//! The real proxies (Debian's nginx, Traefik and Caddy from their release binaries, which
//! `scripts/test` installs) in front of the real binary and an app with no login code of its
//! own that echoes what it received. Each proxy runs the configuration of docs/forward-auth.md,
//! read from the doc, with this run's ports put in. A missing proxy binary is a failure.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::app::TestClient;
use crate::harness::{Engine, Server, TestDb, run_cli};

use crate::harness::PW;
const PUBLIC: &str = "https://auth.example.com";
/// The organization id the doc's `/team/` rule names, replaced with a real one.
const DOC_ORG: &str = "01890000-0000-7000-8000-000000000000";
const SPOOFED: [(&str, &str); 6] = [
    ("remote-user", "00000000-0000-0000-0000-000000000000"),
    ("remote-email", "ceo@example.com"),
    ("remote-name", "ceo"),
    ("remote-groups", "admin"),
    ("remote-org", "00000000-0000-0000-0000-000000000000"),
    ("remote-org-role", "owner"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    Nginx,
    Traefik,
    Caddy,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fenced block after `<!-- forward-auth-test: name -->` in docs/forward-auth.md.
fn doc_block(name: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/forward-auth.md")).unwrap();
    let marker = format!("<!-- forward-auth-test: {name} -->");
    let after = doc.split_once(&marker).unwrap_or_else(|| panic!("docs/forward-auth.md has no {marker}")).1;
    let fence = after.split_once("```").unwrap().1;
    let body = fence.split_once('\n').unwrap().1;
    body.split_once("```").unwrap().0.to_owned()
}

/// The proxy's binary: Debian's nginx, or the venv `scripts/test` installs Traefik and Caddy in.
#[expect(clippy::disallowed_methods, reason = "looks the proxy binaries up on the harness's PATH")]
pub(crate) fn binary(name: &str) -> PathBuf {
    let mut candidates = vec![root().join("target/proxies/venv/bin").join(name), PathBuf::from("/usr/sbin").join(name)];
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} is not installed: run `scripts/test` (it installs nginx, and Traefik and Caddy into target/proxies/venv)")
    })
}

/// The app behind the proxy: answers every request with what it received.
async fn echo_app() -> SocketAddr {
    async fn echo(req: axum::extract::Request) -> axum::Json<Value> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in &parts.headers {
            headers.entry(k.as_str().to_owned()).or_default().push(String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
        axum::Json(json!({
            "method": parts.method.as_str(),
            "uri": parts.uri.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    addr
}

/// A running proxy; dropping it kills the process.
struct Running {
    _child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Proxy {
    /// Starts the proxy with the doc's configuration, `other.example.net` served the same way
    /// as `app.example.com` (a host that is not in `AUTHARA_ALLOWED_RETURN_HOSTS`).
    async fn start(self, authara: &str, app: SocketAddr, org: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path();
        let put = |text: String| {
            text.replace("127.0.0.1:8080", authara).replace("127.0.0.1:3000", &app.to_string()).replace(DOC_ORG, org)
        };
        let log = d.join("proxy.log");
        let mut cmd = match self {
            Proxy::Nginx => {
                let verify = d.join("authara-verify.conf");
                std::fs::write(&verify, doc_block("nginx-verify")).unwrap();
                let site = put(doc_block("nginx"))
                    .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
                    .replace("server_name app.example.com;", "server_name app.example.com other.example.net;")
                    .replace("/etc/nginx/authara-verify.conf", verify.to_str().unwrap());
                let tmp = d.display();
                let conf = format!(
                    "user root;\npid {tmp}/nginx.pid;\nerror_log {tmp}/proxy.log warn;\nevents {{}}\nhttp {{\n  access_log off;\n  \
                     client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fcgi;\n  \
                     uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n{site}\n}}\n"
                );
                std::fs::write(d.join("nginx.conf"), conf).unwrap();
                let mut cmd = tokio::process::Command::new(binary("nginx"));
                cmd.args(["-p", &tmp.to_string(), "-c", d.join("nginx.conf").to_str().unwrap(), "-g", "daemon off;"]);
                cmd
            }
            Proxy::Traefik => {
                let dynamic = d.join("dynamic.yml");
                let rules = put(doc_block("traefik-dynamic"))
                    .replace("Host(`app.example.com`)", "(Host(`app.example.com`) || Host(`other.example.net`))");
                std::fs::write(&dynamic, rules).unwrap();
                let static_conf = doc_block("traefik-static")
                    .replace("address: \":80\"", &format!("address: \"127.0.0.1:{port}\""))
                    .replace("/etc/traefik/dynamic.yml", dynamic.to_str().unwrap());
                std::fs::write(d.join("traefik.yml"), format!("{static_conf}log:\n  level: WARN\n")).unwrap();
                let mut cmd = tokio::process::Command::new(binary("traefik"));
                cmd.arg(format!("--configFile={}", d.join("traefik.yml").display()));
                cmd
            }
            Proxy::Caddy => {
                let site = put(doc_block("caddy")).replace(
                    "http://app.example.com {",
                    &format!("http://app.example.com:{port}, http://other.example.net:{port} {{"),
                );
                let conf = format!("{{\n\tadmin off\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n}}\n{site}");
                std::fs::write(d.join("Caddyfile"), conf).unwrap();
                let mut cmd = tokio::process::Command::new(binary("caddy"));
                cmd.args(["run", "--adapter", "caddyfile", "--config", d.join("Caddyfile").to_str().unwrap()]);
                cmd.env("HOME", d).env("XDG_DATA_HOME", d).env("XDG_CONFIG_HOME", d);
                cmd
            }
        };
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{self:?} did not start: {e}"));
        let running = Running { _child: child, port, _dir: dir, log };
        // Ready when the protected app answers through the proxy with authara's verdict.
        let client = browser(port);
        for _ in 0..200 {
            if let Ok(res) = crate::app::try_send_checked(
                client.get(format!("http://app.example.com:{port}/")).header("accept", "application/json"),
            )
            .await
                && res.status == 401
            {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{self:?} never protected the app: {}", std::fs::read_to_string(&running.log).unwrap_or_default());
    }

    /// nginx has no 303 and turns authara's 401 into its own (no body, no `Location`).
    fn is_nginx(self) -> bool {
        self == Proxy::Nginx
    }
}

/// A client that reaches `app.example.com` and `other.example.net` at the proxy's port.
fn browser(port: u16) -> reqwest::Client {
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .resolve("app.example.com", at)
        .resolve("other.example.net", at)
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn location(&self) -> Option<&str> {
        self.headers.get("location").map(|v| v.to_str().unwrap())
    }

    /// The one value the app received for `name`, `None` when it received none (or empty).
    fn seen(&self, name: &str) -> Option<String> {
        let values = self.body["headers"][name].as_array()?;
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        Some(values[0].as_str().unwrap().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Everything the matrix needs: the proxy, the server, two users.
struct Bench {
    proxy: Proxy,
    port: u16,
    client: reqwest::Client,
    server: Server,
}

impl Bench {
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    async fn go(&self, method: Method, host: &str, path: &str, cookies: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.client.request(method.clone(), self.url(host, path));
        if !cookies.is_empty() {
            req = req.header("cookie", cookies);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if method == Method::POST {
            req = req.header("content-type", "application/x-www-form-urlencoded").body("a=1&b=2");
        }
        let res = crate::app::send_checked(req).await;
        Answer {
            status: res.status,
            headers: res.headers,
            body: serde_json::from_slice(&res.body).unwrap_or(Value::Null),
        }
    }

    fn login_for(&self, url: &str) -> String {
        format!("{PUBLIC}/auth/login?return_to={}", authara::services::return_to::encode(url))
    }
}

fn cookies_of(c: &TestClient) -> String {
    ["authara_access", "authara_refresh"]
        .iter()
        .filter_map(|n| c.cookie(n).map(|v| format!("{n}={v}")))
        .collect::<Vec<_>>()
        .join("; ")
}

const NAV: (&str, &str) = ("sec-fetch-mode", "navigate");
const FETCH: (&str, &str) = ("sec-fetch-mode", "cors");

async fn sign_up(base: &str, email: &str) -> TestClient {
    let c = TestClient::new(base);
    c.fetch_csrf().await;
    let res = c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": email, "password": PW})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    c
}

async fn matrix(proxy: Proxy, engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let authara = format!("127.0.0.1:{}", free_port());
    let env = crate::harness::server_env(
        &db,
        &[
            ("AUTHARA_BIND", authara.as_str()),
            ("PUBLIC_URL", PUBLIC),
            ("AUTHARA_ALLOWED_RETURN_HOSTS", "app.example.com"),
            ("AUTHARA_COOKIE_DOMAIN", ".example.com"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1000"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000"),
            ("LOG_LEVEL", "info"),
        ],
    );
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    let app = echo_app().await;

    let ada = sign_up(&server.base, "ada@example.com").await;
    let bob = sign_up(&server.base, "bob@example.com").await;
    let ada_me = ada.get("/auth/api/v1/user").await.json();
    let ada_org = ada_me["organization"]["id"].as_str().unwrap().to_owned();
    let (code, out, err) = run_cli(&["admin", "grant", "--email", "bob@example.com"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{out}{err}");
    let res = bob.json(Method::POST, "/auth/api/v1/login", &json!({"email": "bob@example.com", "password": PW})).await;
    assert_eq!(res.status, 200, "bob signs in again as an admin");

    let running = proxy.start(&authara, app, &ada_org).await;
    let b = Bench { proxy, port: running.port, client: browser(running.port), server };
    let nginx = b.proxy.is_nginx();
    let (a, bo) = (cookies_of(&ada), cookies_of(&bob));
    let mut cases = 0;
    let mut case = |name: &str| {
        cases += 1;
        format!("{proxy:?}/{engine:?} case {cases}: {name}")
    };

    // 1-6: no session.
    let original = b.url("app.example.com", "/dash?x=1");
    let r = b.go(Method::GET, "app.example.com", "/dash?x=1", "", &[NAV]).await;
    let at = case("navigation, no session");
    assert_eq!((r.status, r.location()), (302, Some(&*b.login_for(&original))), "{at}");
    let r = b.go(Method::GET, "app.example.com", "/dash", "", &[("accept", "text/html,*/*;q=0.8")]).await;
    let at = case("Accept: text/html is a navigation");
    assert_eq!(r.status, 302, "{at}");
    let r = b.go(Method::GET, "app.example.com", "/api/items", "", &[FETCH]).await;
    let at = case("fetch, no session");
    assert_eq!(r.status, 401, "{at}");
    if !nginx {
        assert_eq!(r.location(), Some(&*b.login_for(&b.url("app.example.com", "/api/items"))));
        assert_eq!(r.body["error"]["code"], "unauthorized", "the envelope reaches the script");
    }
    let r = b
        .go(
            Method::GET,
            "app.example.com",
            "/api/items",
            "",
            &[("accept", "text/html"), ("x-requested-with", "XMLHttpRequest")],
        )
        .await;
    let at = case("XHR, no session");
    assert_eq!(r.status, 401, "{at}");
    let r =
        b.go(Method::GET, "app.example.com", "/fragment", "", &[("hx-request", "true"), ("accept", "text/html")]).await;
    let at = case("HTMX, no session");
    assert_eq!(r.status, 401, "{at}");
    if !nginx {
        assert!(r.headers.get("hx-redirect").is_some(), "HTMX is told where to sign in");
    }
    let r = b.go(Method::POST, "app.example.com", "/form", "", &[NAV]).await;
    let post_status = if nginx { 302 } else { 303 };
    let at = case("protected POST, no session");
    assert_eq!(
        (r.status, r.location()),
        (post_status, Some(&*b.login_for(&b.url("app.example.com", "/form")))),
        "{at}"
    );

    // 7-8: other hosts.
    let r = b.go(Method::GET, "other.example.net", "/x", "", &[NAV]).await;
    let at = case("host not in AUTHARA_ALLOWED_RETURN_HOSTS");
    assert_eq!((r.status, r.location()), (302, Some(&*format!("{PUBLIC}/auth/login"))), "{at}");
    let r = b
        .go(
            Method::GET,
            "app.example.com",
            "/x",
            "",
            &[
                NAV,
                ("x-forwarded-host", "evil.example.net"),
                ("x-original-url", "http://evil.example.net/"),
                ("x-forwarded-uri", "/evil"),
            ],
        )
        .await;
    let at = case("the client's own forwarded headers are not believed");
    assert_eq!(r.location(), Some(&*b.login_for(&b.url("app.example.com", "/x"))), "{at}");

    // 9-14: signed in.
    let r = b.go(Method::GET, "app.example.com", "/dash?x=1&role=admin", &a, &[NAV]).await;
    let at = case("signed in; the app's query is not a rule");
    assert_eq!(r.status, 200, "{at}");
    assert_eq!(r.body["uri"], "/dash?x=1&role=admin");
    assert_eq!(r.seen("remote-user").as_deref(), ada_me["id"].as_str());
    assert_eq!(r.seen("remote-email").as_deref(), Some("ada@example.com"));
    assert_eq!(r.seen("remote-name").as_deref(), ada_me["username"].as_str());
    assert_eq!(r.seen("remote-org").as_deref(), Some(ada_org.as_str()));
    assert_eq!(r.seen("remote-org-role").as_deref(), Some("owner"));
    assert_eq!(r.seen("remote-groups"), None, "no platform role");
    let r = b
        .go(
            Method::GET,
            "app.example.com",
            "/dash",
            &a,
            &[NAV, SPOOFED[0], SPOOFED[1], SPOOFED[2], SPOOFED[3], SPOOFED[4], SPOOFED[5]],
        )
        .await;
    let at = case("spoofed Remote-* while signed in");
    assert_eq!(r.status, 200, "{at}");
    assert_eq!(r.seen("remote-user").as_deref(), ada_me["id"].as_str());
    assert_eq!(r.seen("remote-email").as_deref(), Some("ada@example.com"));
    assert_eq!(r.seen("remote-groups"), None, "the client's `admin` never reaches the app");
    assert_eq!(r.seen("remote-org").as_deref(), Some(ada_org.as_str()));
    let r = b.go(Method::GET, "app.example.com", "/dash", "", &[FETCH, SPOOFED[0], SPOOFED[3]]).await;
    let at = case("spoofed Remote-* without a session reaches nothing");
    assert_eq!((r.status, r.body.get("uri")), (401, None), "{at}");
    let r = b.go(Method::POST, "app.example.com", "/form", &a, &[NAV]).await;
    let at = case("protected POST, signed in");
    assert_eq!(
        (r.status, r.body["method"].as_str(), r.body["body"].as_str()),
        (200, Some("POST"), Some("a=1&b=2")),
        "{at}"
    );
    let bearer = format!("Bearer {}", ada.cookie("authara_access").unwrap());
    let r = b
        .go(
            Method::GET,
            "app.example.com",
            "/api/items",
            "",
            &[("authorization", &bearer), ("accept", "application/json")],
        )
        .await;
    let at = case("bearer token");
    assert_eq!((r.status, r.seen("remote-email").as_deref()), (200, Some("ada@example.com")), "{at}");
    let r = b
        .go(Method::GET, "app.example.com", "/api/items", "", &[("authorization", "Bearer forged.token.here"), FETCH])
        .await;
    let at = case("forged bearer token");
    assert_eq!(r.status, 401, "{at}");

    // 15-19: rules.
    let r = b.go(Method::GET, "app.example.com", "/admin/users", &a, &[NAV]).await;
    let at = case("role=admin refuses a member");
    assert_eq!(r.status, 403, "{at}");
    let r = b.go(Method::GET, "app.example.com", "/admin/users", &bo, &[NAV]).await;
    let at = case("role=admin allows an admin");
    assert_eq!((r.status, r.seen("remote-groups").as_deref()), (200, Some("admin")), "{at}");
    let r = b.go(Method::GET, "app.example.com", "/admin/users", "", &[NAV]).await;
    let at = case("role=admin, no session");
    assert_eq!(r.location(), Some(&*b.login_for(&b.url("app.example.com", "/admin/users"))), "{at}");
    let r = b.go(Method::GET, "app.example.com", "/team/board", &a, &[FETCH]).await;
    let at = case("org=<id> allows its member");
    assert_eq!(r.status, 200, "{at}");
    let r = b.go(Method::GET, "app.example.com", "/team/board", &bo, &[FETCH]).await;
    let at = case("org=<id> refuses another organization's user");
    assert_eq!(r.status, 403, "{at}");

    // 20-21: malformed and missing forwarded headers (a misconfigured proxy, or a direct call).
    let direct = crate::harness::client();
    let res = crate::app::send_checked(direct.get(b.server.url("/auth/verify")).header("cookie", &a)).await;
    let at = case("missing forwarded headers");
    assert_eq!(res.status, 400, "{at}");
    let res = crate::app::send_checked(
        direct
            .get(b.server.url("/auth/verify"))
            .header("cookie", &a)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", "dash"),
    )
    .await;
    let at = case("malformed forwarded headers");
    assert_eq!(res.status, 400, "{at}");

    // 22-24: an expired access token with a live refresh token (the browser dropped the access
    // cookie at its Max-Age): through the refresh page and back.
    let refresh_only = format!("authara_refresh={}", ada.cookie("authara_refresh").unwrap());
    let r = b.go(Method::GET, "app.example.com", "/dash?x=1", &refresh_only, &[FETCH]).await;
    let at = case("refresh cookie only, fetch");
    assert_eq!(r.status, 401, "{at}");
    let r = b.go(Method::GET, "app.example.com", "/dash?x=1", &refresh_only, &[NAV]).await;
    let refresh =
        format!("{PUBLIC}/auth/sessions/refresh?return_to={}", authara::services::return_to::encode(&original));
    let at = case("refresh cookie only, navigation");
    assert_eq!((r.status, r.location()), (302, Some(&*refresh)), "{at}");
    let page = ada.get(refresh.strip_prefix(PUBLIC).unwrap()).await;
    let at = case("the refresh page sends the browser back");
    assert_eq!((page.status, page.location().as_deref()), (303, Some(original.as_str())), "{at}");
    let r = b.go(Method::GET, "app.example.com", "/dash?x=1", &cookies_of(&ada), &[NAV]).await;
    assert_eq!(r.status, 200, "back, signed in");

    // 25-26: signing out from the app.
    let back = authara::services::return_to::encode(&b.url("app.example.com", "/"));
    let old = cookies_of(&ada);
    let res = ada.form(&format!("/auth/sessions/logout?return_to={back}"), &[]).await;
    let at = case("sign out returns to the app");
    assert_eq!((res.status, res.location()), (303, Some(b.url("app.example.com", "/"))), "{at}");
    let r = b.go(Method::GET, "app.example.com", "/", &old, &[FETCH]).await;
    let at = case("the signed-out session's cookies open nothing");
    assert_eq!(r.status, 401, "{at}");

    assert!(cases >= 20, "{cases} cases");
    let token = bearer.strip_prefix("Bearer ").unwrap();
    assert!(!b.server.logs().contains(token), "no token in the logs");
    drop(running);
}

async fn nginx_protects_an_app(engine: Engine) {
    matrix(Proxy::Nginx, engine).await;
}

async fn traefik_protects_an_app(engine: Engine) {
    matrix(Proxy::Traefik, engine).await;
}

async fn caddy_protects_an_app(engine: Engine) {
    matrix(Proxy::Caddy, engine).await;
}

crate::harness::on_both_engines!(nginx_protects_an_app, traefik_protects_an_app, caddy_protects_an_app);
