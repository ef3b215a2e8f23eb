//! The workloads, their ceilings, and the results table.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::header::HeaderMap;
use sqlx::Connection as _;

use crate::Opts;
use crate::ceilings::KEY_B64;
use crate::load::{self, Conn, Req, Stats};

pub(crate) const PW: &str = "violet-harbor-tangent";
pub(crate) const WARMUP: Duration = Duration::from_secs(2);

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `taskset -c <cpus>` in front of a command when pinning.
fn command(opts: &Opts, cpus: Option<&str>, program: &Path) -> tokio::process::Command {
    match cpus.filter(|_| opts.pinned) {
        Some(c) => {
            let mut cmd = tokio::process::Command::new("taskset");
            cmd.arg("-c").arg(c).arg(program);
            cmd
        }
        None => tokio::process::Command::new(program),
    }
}

fn all_cpus() -> String {
    let n = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    format!("0-{}", n - 1)
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
pub(crate) fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub(crate) struct Server {
    child: tokio::process::Child,
    pub(crate) base: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
    }
}

/// Starts `authara serve` as production would run it (APP_ENV=prod, JSON logs at info).
#[expect(clippy::disallowed_methods, reason = "passes the bench's PATH through to the server it starts")]
pub(crate) async fn start_server(
    opts: &Opts,
    engine: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<(Server, Duration)> {
    let dir = std::env::temp_dir().join(format!("authara-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let mut cmd = command(opts, Some("0"), &opts.bin);
    cmd.args(["serve", "--migrate"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "prod")
        .env("PUBLIC_URL", "http://127.0.0.1")
        .env("AUTHARA_JWT_ISSUER", "authara")
        .env("AUTHARA_JWT_KEYS", format!("k1:{KEY_B64}"))
        .env("AUTHARA_JWT_ACTIVE_KEY_ID", "k1")
        .env("AUTHARA_BIND", format!("127.0.0.1:{port}"))
        .env("AUTHARA_DATA_DIR", &dir)
        .env("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    for k in ["LOGIN", "SIGNUP"] {
        for w in ["IP", "EMAIL"] {
            cmd.env(format!("AUTHARA_RATE_LIMIT_{k}_{w}_LIMIT"), "1000000000");
        }
    }
    // The pool settings of the bench's own environment (`AUTHARA_DB_MAX_OPEN_CONNS=16
    // bench/run`), to compare pool sizes.
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("AUTHARA_DB_")) {
        cmd.env(k, v);
    }
    if engine == "postgres" {
        let (host, pgport, user) = opts.pg.clone().context("--pg is required for PostgreSQL")?;
        let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            sqlx::PgConnection::connect(&format!("postgres://{user}@localhost:{pgport}/postgres?host={host}")).await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {db}")).execute(&mut admin).await?;
        cmd.env("POSTGRESQL_HOST", host)
            .env("POSTGRESQL_PORT", pgport)
            .env("POSTGRESQL_USERNAME", user)
            .env("POSTGRESQL_DATABASE", db);
    }
    if let Some((host, port)) = opts.redis.as_deref().and_then(|r| r.rsplit_once(':')) {
        cmd.env("AUTHARA_CACHE_PROVIDER", "redis").env("AUTHARA_REDIS_HOST", host).env("AUTHARA_REDIS_PORT", port);
    }
    if opts.metrics {
        cmd.env("AUTHARA_METRICS_BIND", format!("127.0.0.1:{}", free_port()?));
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd.spawn().context("starting authara")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = loop {
        if let Ok(r) = client.get(format!("{base}/auth/health")).send().await
            && r.status() == 200
            && r.text().await.is_ok_and(|b| b.contains(r#""status":"healthy""#))
        {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "authara did not become healthy: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    Ok((Server { child, base, _dir: tempdir::Dir(dir) }, ready))
}

/// Rounds of the forward-auth comparisons (odd, for a median).
const VERIFY_ROUNDS: usize = 3;

/// `a, b, c`.
fn round_list(values: impl Iterator<Item = f64>, show: impl Fn(f64) -> String) -> String {
    values.map(show).collect::<Vec<_>>().join(", ")
}

/// wrk against one GET with a cookie, pinned to the client's core; (requests/s, p50 ms, p99 ms).
pub(crate) async fn wrk(opts: &Opts, url: &str, cookie: Option<&str>) -> anyhow::Result<Stats> {
    let headers: Vec<String> = cookie.map(|c| format!("Cookie: {c}")).into_iter().collect();
    wrk_with(opts, url, &headers).await
}

/// wrk against one GET with these headers (`Name: value`), 32 connections.
async fn wrk_with(opts: &Opts, url: &str, headers: &[String]) -> anyhow::Result<Stats> {
    wrk_conns(opts, url, headers, 32).await
}

/// wrk against one GET with these headers, `conns` connections.
pub(crate) async fn wrk_conns(opts: &Opts, url: &str, headers: &[String], conns: u32) -> anyhow::Result<Stats> {
    let mut cmd = command(opts, Some("1"), Path::new("wrk"));
    cmd.args(["-t", "1", "-c", &conns.to_string(), "--latency", "-d", &format!("{}s", opts.secs), url]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.output().await.context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success() && text.contains("Requests/sec:"),
        "wrk failed (is it installed? bench/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ms = |v: &str| -> f64 {
        let v = v.trim();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap_or(0.0);
        match unit {
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            _ => n,
        }
    };
    let line = |prefix: &str| text.lines().find(|l| l.trim_start().starts_with(prefix)).map(str::to_owned);
    let rps: f64 =
        line("Requests/sec:").and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok())).unwrap_or(0.0);
    let p = |q: &str| line(q).and_then(|l| l.split_whitespace().nth(1).map(ms)).unwrap_or(0.0);
    let non_2xx: u64 = line("Non-2xx or 3xx responses:")
        .and_then(|l| l.split_whitespace().last().and_then(|v| v.parse().ok()))
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket: u64 = line("Socket errors:")
        .map(|l| l.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let errors = non_2xx + socket;
    Ok(Stats {
        ok: (rps * opts.secs as f64) as u64,
        errors,
        secs: opts.secs as f64,
        p50_ms: p("50%"),
        p99_ms: p("99%"),
    })
}

async fn signup(base: &str, email: &str) -> anyhow::Result<(String, String)> {
    credentials(base, "/auth/api/v1/signup/direct", 201, email).await
}

/// Posts the bench password for `email` to `path` (signup or login) and returns the access and
/// refresh tokens of the answer, which must have status `expect`.
pub(crate) async fn credentials(base: &str, path: &str, expect: u16, email: &str) -> anyhow::Result<(String, String)> {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("cookie", "authara_csrf=bench-csrf")
        .header("x-csrf-token", "bench-csrf")
        .body(serde_json::json!({"email": email, "password": PW}).to_string())
        .send()
        .await?;
    if res.status() != expect {
        bail!("{path} {email}: {} {}", res.status(), res.text().await.unwrap_or_default());
    }
    let body: serde_json::Value = res.json().await?;
    let token = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    Ok((token("access_token"), token("refresh_token")))
}

pub(crate) struct Login {
    pub(crate) users: Arc<Vec<String>>,
    pub(crate) next: Arc<AtomicU64>,
}

impl Conn for Login {
    fn next(&mut self) -> Req {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.users.len();
        Req::post_json("/auth/api/v1/login", serde_json::json!({"email": self.users[i], "password": PW}).to_string())
    }
}

pub(crate) struct Signup {
    pub(crate) run: String,
    pub(crate) next: Arc<AtomicU64>,
}

impl Conn for Signup {
    fn next(&mut self) -> Req {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Req::post_json(
            "/auth/api/v1/signup/direct",
            serde_json::json!({"email": format!("s{i}-{}@bench.local", self.run), "password": PW}).to_string(),
        )
    }
}

/// One session per connection, rotated on every request (the cookie flow).
pub(crate) struct Refresh {
    pub(crate) token: String,
}

impl Conn for Refresh {
    fn next(&mut self) -> Req {
        let mut r = Req::post_json("/auth/api/v1/sessions/refresh", String::new());
        r.headers = vec![
            ("cookie", format!("authara_csrf=bench-csrf; authara_refresh={}", self.token)),
            ("x-csrf-token", "bench-csrf".to_owned()),
        ];
        r.body = None;
        r
    }

    fn answer(&mut self, status: u16, headers: &HeaderMap) -> bool {
        for v in headers.get_all("set-cookie") {
            if let Some(t) = v.to_str().ok().and_then(|c| c.strip_prefix("authara_refresh=")) {
                self.token = t.split(';').next().unwrap_or_default().to_owned();
            }
        }
        status == 200
    }
}

/// A measured row of the table.
struct Row {
    workload: &'static str,
    engine: String,
    stats: Stats,
    ceiling: Option<(&'static str, f64)>,
    target: &'static str,
    met: bool,
    rss: (f64, f64),
}

async fn child_number(opts: &Opts, cpus: &str, args: &[&str], key: &str) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let mut cmd = command(opts, Some(cpus), &exe);
    if !opts.pinned {
        // Unpinned runs still give the hash ceiling every core.
        cmd = tokio::process::Command::new("taskset");
        cmd.arg("-c").arg(if cpus == "0" { all_cpus() } else { cpus.to_owned() }).arg(&exe);
    }
    let out = cmd.args(args).output().await?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()))
        .with_context(|| format!("{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr)))
}

pub async fn run_all(opts: &Opts) -> anyhow::Result<()> {
    let secs = opts.secs.to_string();
    let mut rows: Vec<Row> = Vec::new();
    let mut notes = String::new();

    // Start-up and idle memory, embedded default.
    if opts.want("start") {
        let mut readies = Vec::new();
        let mut idle = (0.0, 0.0);
        for _ in 0..5 {
            let (server, ready) = start_server(opts, "sqlite", &[]).await?;
            readies.push(ready);
            tokio::time::sleep(Duration::from_secs(2)).await;
            idle = rss_mib(server.pid());
            server.stop().await;
        }
        readies.sort();
        let ready_ms = readies[2].as_secs_f64() * 1000.0;
        writeln!(
            notes,
            "- start to first healthy `/auth/health` (SQLite, fresh data dir, `serve --migrate`), median of 5: **{ready_ms:.1} ms** (target < 200 ms)"
        )?;
        writeln!(
            notes,
            "- idle RSS after start: **{:.1} MiB** (peak {:.1} MiB, the start-up dummy hash's 64 MiB arena) (target < 30 MiB)",
            idle.0, idle.1
        )?;
    }

    // Ceilings.
    let exe = std::env::current_exe()?;
    let port = free_port()?;
    let mut ceiling = command(opts, Some("0"), &exe);
    let mut ceiling = ceiling
        .arg("ceiling-server")
        .env("BENCH_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = {
        // A real access token from a throwaway server with the same key, for both H and the workload.
        let (server, _) = start_server(opts, "sqlite", &[]).await?;
        let (access, _) = signup(&server.base, "ceiling@bench.local").await?;
        server.stop().await;
        access
    };
    let h_url = format!("http://127.0.0.1:{port}/check");
    let h_cookie = format!("authara_access={token}");
    let mut h = Stats::default();
    if opts.want("session") || opts.want("jwks") {
        h = wrk(opts, &h_url, Some(&h_cookie)).await?;
        writeln!(
            notes,
            "- ceiling H (bare axum handler: cookie, HS256 verify, small JSON; wrk, 32 connections): **{:.0} req/s**, p99 {:.2} ms",
            h.rps(),
            h.p99_ms
        )?;
    }
    let mut a = 0.0;
    if opts.want("login") || opts.want("signup") {
        a = child_number(opts, &all_cpus(), &["hash-ceiling", "--secs", &secs], "hashes_per_sec ").await?;
        writeln!(notes, "- ceiling A (raw argon2id, m=64 MiB t=3 p=4, one thread per core): **{a:.2} hashes/s**")?;
    }

    let mut engines = vec!["sqlite"];
    if opts.pg.is_some() {
        engines.push("postgres");
    }
    for engine in engines {
        let pg_url = opts
            .pg
            .as_ref()
            .map(|(host, port, user)| format!("postgres://{user}@localhost:{port}/postgres?host={host}"));
        let d = if !opts.want("refresh") {
            0.0
        } else if engine == "postgres" {
            let url = pg_url.clone().unwrap_or_default();
            let db = format!("bench_d_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&url).await?;
            sqlx::raw_sql(&format!("CREATE DATABASE {db}")).execute(&mut admin).await?;
            let db_url = url.replace("/postgres?", &format!("/{db}?"));
            let d = child_number(
                opts,
                "0",
                &["rotation-ceiling", "--engine", "postgres", "--pg", &db_url, "--secs", &secs],
                "rotations_per_sec ",
            )
            .await?;
            // Let PostgreSQL write out what the ceiling dirtied now, not during the next workload.
            sqlx::raw_sql(&format!("DROP DATABASE {db}")).execute(&mut admin).await?;
            sqlx::raw_sql("CHECKPOINT").execute(&mut admin).await?;
            d
        } else {
            child_number(opts, "0", &["rotation-ceiling", "--engine", "sqlite", "--secs", &secs], "rotations_per_sec ")
                .await?
        };
        if opts.want("refresh") {
            writeln!(
                notes,
                "- ceiling D on {engine} (refresh-rotation transaction alone, 16 tasks): **{d:.0} rotations/s**"
            )?;
        }

        let (server, _) = start_server(opts, engine, &[]).await?;
        let base = server.base.clone();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let (access, _) = signup(&base, &format!("check-{run}@bench.local")).await?;
        let cookie = format!("authara_access={access}");

        if opts.want("session") {
            let s = wrk(opts, &format!("{base}/auth/api/v1/user"), Some(&cookie)).await?;
            let rss = rss_mib(server.pid());
            let ratio = s.rps() / h.rps();
            rows.push(Row {
                workload: "session check `GET /user`",
                engine: engine.into(),
                met: ratio >= 0.7 && s.p99_ms < 5.0,
                stats: s,
                ceiling: Some(("H", h.rps())),
                target: "≥ 70 % of H, p99 < 5 ms",
                rss,
            });
        }

        if opts.want("verify") {
            // Forward-auth as a proxy asks it for a signed-in browser, against the session check
            // S. Both are a cookie, a signature and a cached profile, so what separates them in
            // one run is mostly the machine's drift between two measurements; they are therefore
            // measured in alternating rounds, and each figure is the median round's.
            let headers = [
                format!("Cookie: {cookie}"),
                "X-Forwarded-Method: GET".to_owned(),
                "X-Forwarded-Proto: https".to_owned(),
                "X-Forwarded-Host: app.bench.local".to_owned(),
                "X-Forwarded-Uri: /dashboard?range=7d".to_owned(),
                "Sec-Fetch-Mode: navigate".to_owned(),
            ];
            let verify_url = format!("{base}/auth/verify");
            let user_url = format!("{base}/auth/api/v1/user");
            let user_headers = [format!("Cookie: {cookie}")];
            let mut rounds = Vec::new();
            for _ in 0..VERIFY_ROUNDS {
                let s = wrk_with(opts, &user_url, &user_headers).await?;
                let v = wrk_with(opts, &verify_url, &headers).await?;
                rounds.push((v.rps() / s.rps(), v, s));
            }
            rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
            writeln!(
                notes,
                "- verify / S on {engine}, rounds sorted: {}; the table shows the median round",
                round_list(rounds.iter().map(|r| r.0), |r| format!("{:.0} %", r * 100.0))
            )?;
            let (ratio, v, session) = rounds.swap_remove(rounds.len() / 2);
            let rss = rss_mib(server.pid());
            rows.push(Row {
                workload: "forward-auth `GET /auth/verify`",
                engine: engine.into(),
                met: ratio >= 0.9 && v.errors == 0,
                stats: v,
                ceiling: Some(("S", session.rps())),
                target: "≥ 90 % of S",
                rss,
            });
            // Its latency as a proxy's hop sees it: a few connections, the server not saturated
            // (at 32 connections every answer waits behind the others, the bare handler's too).
            let mut four = Vec::new();
            for _ in 0..VERIFY_ROUNDS {
                let l = wrk_conns(opts, &verify_url, &headers, 4).await?;
                let s4 = wrk_conns(opts, &user_url, &user_headers, 4).await?;
                four.push((l, s4));
            }
            four.sort_by(|a, b| a.0.p99_ms.total_cmp(&b.0.p99_ms));
            writeln!(
                notes,
                "- 4 connections on {engine}, rounds sorted by verify's p99: verify p99 {} ms; the session check's p99 in the same rounds {} ms",
                round_list(four.iter().map(|r| r.0.p99_ms), |p| format!("{p:.2}")),
                round_list(four.iter().map(|r| r.1.p99_ms), |p| format!("{p:.2}")),
            )?;
            let (l, s4) = four.swap_remove(four.len() / 2);
            writeln!(
                notes,
                "- the session check with 4 connections on {engine}, for comparison: p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s",
                s4.p50_ms,
                s4.p99_ms,
                s4.rps()
            )?;
            let rss = rss_mib(server.pid());
            rows.push(Row {
                workload: "forward-auth `GET /auth/verify`, 4 connections",
                engine: engine.into(),
                met: l.p99_ms < 2.0 && l.errors == 0,
                stats: l,
                ceiling: None,
                target: "p99 < 2 ms",
                rss,
            });
            writeln!(
                notes,
                "- S on {engine}: the session check `GET /user` in the median round, **{:.0} req/s**",
                session.rps()
            )?;
        }

        if opts.want("jwks") {
            let j = wrk(opts, &format!("{base}/auth/.well-known/jwks.json"), None).await?;
            let rss = rss_mib(server.pid());
            let ratio = j.rps() / h.rps();
            rows.push(Row {
                workload: "JWKS",
                engine: engine.into(),
                met: ratio >= 0.7,
                stats: j,
                ceiling: Some(("H", h.rps())),
                target: "≥ 70 % of H",
                rss,
            });
        }

        // Login over distinct users (also the background load of the isolation workload).
        let mut users = Vec::new();
        for i in (0..16).filter(|_| opts.want("login") || opts.want("isolation")) {
            let email = format!("u{i}-{run}@bench.local");
            signup(&base, &email).await?;
            users.push(email);
        }
        let users = Arc::new(users);
        let next = Arc::new(AtomicU64::new(0));
        if opts.want("login") {
            let conns = (0..8).map(|_| Login { users: users.clone(), next: next.clone() }).collect();
            let l = load::run(&base, conns, WARMUP, opts.duration()).await;
            let rss = rss_mib(server.pid());
            rows.push(Row {
                workload: "login (16 users)",
                engine: engine.into(),
                met: l.rps() >= 0.9 * a,
                stats: l,
                ceiling: Some(("A", a)),
                target: "≥ 90 % of A",
                rss,
            });
        }

        if opts.want("refresh") {
            // Refresh with rotation on every call, one session per connection.
            let mut conns = Vec::new();
            for i in 0..16 {
                let (_, refresh) = signup(&base, &format!("r{i}-{run}@bench.local")).await?;
                conns.push(Refresh { token: refresh });
            }
            let r = load::run(&base, conns, WARMUP, opts.duration()).await;
            let rss = rss_mib(server.pid());
            rows.push(Row {
                workload: "refresh (rotation always)",
                engine: engine.into(),
                met: r.rps() >= 0.6 * d,
                stats: r,
                ceiling: Some(("D", d)),
                target: "≥ 60 % of D",
                rss,
            });
        }

        if opts.want("isolation") {
            // Isolation: session checks while logins saturate the hashing pool.
            let next = Arc::new(AtomicU64::new(0));
            let logins: Vec<Login> = (0..8).map(|_| Login { users: users.clone(), next: next.clone() }).collect();
            let base2 = base.clone();
            let dur = opts.duration() + WARMUP;
            let background = tokio::spawn(async move { load::run(&base2, logins, Duration::ZERO, dur).await });
            let checks: Vec<Session> = (0..8).map(|_| Session { cookie: cookie.clone() }).collect();
            let iso = load::run(&base, checks, WARMUP, opts.duration()).await;
            let bg = background.await?;
            let rss = rss_mib(server.pid());
            writeln!(
                notes,
                "- isolation on {engine}: {:.2} logins/s in the background while checking sessions",
                bg.rps()
            )?;
            rows.push(Row {
                workload: "isolation: session checks during logins",
                engine: engine.into(),
                met: iso.p99_ms < 10.0 && iso.errors == 0,
                stats: iso,
                ceiling: None,
                target: "p99 < 10 ms, no errors",
                rss,
            });
        }

        if opts.want("mfa") {
            let m = second_step(&base, &run).await?;
            let share = 100.0 * m.second_p50 / m.first_p50;
            writeln!(
                notes,
                "- two-step sign-in on {engine}, {} sign-ins one at a time: the password step p50 **{:.2} ms**, the second step (`POST /login/mfa`, a TOTP code) p50 **{:.2} ms** (p99 {:.2} ms): **{share:.1} %** of the password step (target < 5 %) {}",
                m.samples,
                m.first_p50,
                m.second_p50,
                m.second_p99,
                if share < 5.0 { "met" } else { "**not met**" }
            )?;
        }

        if opts.want("signup") {
            let next = Arc::new(AtomicU64::new(0));
            let conns = (0..8).map(|_| Signup { run: run.clone(), next: next.clone() }).collect();
            let sg = load::run(&base, conns, WARMUP, opts.duration()).await;
            let rss = rss_mib(server.pid());
            rows.push(Row {
                workload: "signup (distinct emails)",
                engine: engine.into(),
                met: sg.rps() >= 0.85 * a,
                stats: sg,
                ceiling: Some(("A", a)),
                target: "≥ 85 % of A",
                rss,
            });
        }
        server.stop().await;
    }
    let _ = ceiling.kill().await;

    let mut md = String::new();
    writeln!(
        md,
        "## {} run ({} s per workload)\n",
        if opts.pinned { "Pinned (server on CPU 0, load on CPU 1)" } else { "Unpinned" },
        opts.secs
    )?;
    writeln!(
        md,
        "| workload | engine | throughput | p50 | p99 | errors | vs ceiling | target | met | RSS now / peak |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|")?;
    for r in &rows {
        let vs =
            r.ceiling.map(|(n, c)| format!("{:.0} % of {n}", 100.0 * r.stats.rps() / c)).unwrap_or_else(|| "–".into());
        writeln!(
            md,
            "| {} | {} | {:.1} /s | {:.2} ms | {:.2} ms | {} | {} | {} | {} | {:.1} / {:.1} MiB |",
            r.workload,
            r.engine,
            r.stats.rps(),
            r.stats.p50_ms,
            r.stats.p99_ms,
            r.stats.errors,
            vs,
            r.target,
            if r.met { "yes" } else { "**no**" },
            r.rss.0,
            r.rss.1
        )?;
    }
    writeln!(md, "\n{notes}")?;
    if opts.only.is_none() {
        let mut existing = std::fs::read_to_string(&opts.out).unwrap_or_default();
        existing.push_str(&md);
        std::fs::write(&opts.out, existing)?;
    }
    println!("{md}");
    Ok(())
}

/// What the two-step sign-in measured (milliseconds).
struct SecondStep {
    samples: usize,
    first_p50: f64,
    second_p50: f64,
    second_p99: f64,
}

/// The app's code for the time step `offset` steps from now.
#[expect(clippy::disallowed_methods, reason = "an authenticator app reads the wall clock, as the server does")]
fn totp_code(secret: &[u8], offset: u64) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret.to_vec(), None, String::new());
    Ok(totp.generate(now + offset * 30))
}

/// `name=value` of a `Set-Cookie` answer.
fn cookie_of(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

/// Users with an authenticator app sign in one at a time: the password step (argon2id, then the
/// waiting sign-in written) and the second step (the code checked, its time step recorded, the
/// session started) are timed apart. Each user signs in once (a code is good once).
async fn second_step(base: &str, run: &str) -> anyhow::Result<SecondStep> {
    const USERS: usize = 48;
    let client = reqwest::Client::new();
    let csrf = "authara_csrf=bench-csrf";
    let mut secrets = Vec::new();
    for i in 0..USERS {
        let email = format!("m{i}-{run}@bench.local");
        let (access, _) = signup(base, &email).await?;
        let cookie = format!("{csrf}; authara_access={access}");
        let res = client
            .post(format!("{base}/auth/api/v1/mfa/totp/setup"))
            .header("cookie", &cookie)
            .header("x-csrf-token", "bench-csrf")
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "mfa setup: {}", res.status());
        let body: serde_json::Value = res.json().await?;
        let secret = totp_rs::Secret::Encoded(body["secret"].as_str().unwrap_or_default().to_owned())
            .to_bytes()
            .map_err(|e| anyhow::anyhow!("secret: {e:?}"))?;
        let res = client
            .post(format!("{base}/auth/api/v1/mfa/totp/confirm"))
            .header("cookie", &cookie)
            .header("x-csrf-token", "bench-csrf")
            .header("content-type", "application/json")
            .body(serde_json::json!({"code": totp_code(&secret, 0)?}).to_string())
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "mfa confirm: {}", res.status());
        secrets.push((email, secret));
    }
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for (email, secret) in &secrets {
        let started = Instant::now();
        let res = client
            .post(format!("{base}/auth/api/v1/login"))
            .header("cookie", csrf)
            .header("x-csrf-token", "bench-csrf")
            .header("content-type", "application/json")
            .body(serde_json::json!({"email": email, "password": PW}).to_string())
            .send()
            .await?;
        let binding = cookie_of(&res, "authara_mfa").context("the binding cookie")?;
        let body: serde_json::Value = res.json().await?;
        first.push(started.elapsed());
        let challenge = body["mfa"]["challenge_id"].as_str().context("mfa_required")?.to_owned();
        // The next step's code: the enrolment spent the current one.
        let code = totp_code(secret, 1)?;
        let started = Instant::now();
        let res = client
            .post(format!("{base}/auth/api/v1/login/mfa"))
            .header("cookie", format!("{csrf}; {binding}"))
            .header("x-csrf-token", "bench-csrf")
            .header("content-type", "application/json")
            .body(serde_json::json!({"challenge_id": challenge, "code": code}).to_string())
            .send()
            .await?;
        let status = res.status();
        let _ = res.bytes().await?;
        second.push(started.elapsed());
        anyhow::ensure!(status == 200, "second step: {status}");
    }
    first.sort();
    second.sort();
    let ms = |v: &[Duration], q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    Ok(SecondStep {
        samples: USERS,
        first_p50: ms(&first, 0.5),
        second_p50: ms(&second, 0.5),
        second_p99: ms(&second, 0.99),
    })
}

/// A session check with a fixed access cookie.
struct Session {
    cookie: String,
}

impl Conn for Session {
    fn next(&mut self) -> Req {
        let mut r = Req::get("/auth/api/v1/user");
        r.headers.push(("cookie", self.cookie.clone()));
        r
    }
}
