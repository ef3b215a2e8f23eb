//! `authara-bench scale`: how each cost grows with the data. Seeds a database with N users
//! (`seed.rs`), then measures the hot paths and the operator's pages on it, the cleanup over its
//! expired rows, the start to healthy and the disk per user. See `bench/README.md`, "Scale".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::Connection as _;

use crate::Opts;
use crate::load::{self, Stats};
use crate::seed::{self, Db};
use crate::workloads::{self, Login, PW, Refresh, Signup, WARMUP, rss_mib, start_server};

/// One figure of the table: its name and the value as printed.
pub struct Figure {
    pub name: String,
    pub value: String,
    /// The number the ratio between sizes is computed from (lower is better for times).
    pub number: f64,
}

fn fig(out: &mut Vec<Figure>, name: impl Into<String>, value: String, number: f64) {
    let name = name.into();
    println!("  {name}: {value}");
    out.push(Figure { name, value, number });
}

/// `GET path` one at a time, `count` times after 5 unmeasured ones; every answer must be 200.
async fn probe(base: &str, path: &str, cookie: &str, count: usize) -> anyhow::Result<(f64, f64, usize)> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let mut times = Vec::with_capacity(count);
    let mut bytes = 0;
    for i in 0..count + 5 {
        let t = Instant::now();
        let res = client.get(format!("{base}{path}")).header("cookie", cookie).send().await?;
        let status = res.status();
        let body = res.bytes().await?;
        if status != 200 {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        }
        if i >= 5 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
        }
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
    Ok((q(0.5), q(0.99), bytes))
}

/// The target of a page's `Link: <…>; rel="next"`.
async fn next_link(base: &str, path: &str, cookie: &str) -> anyhow::Result<String> {
    let res = reqwest::Client::new().get(format!("{base}{path}")).header("cookie", cookie).send().await?;
    let link = res.headers().get("link").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let target = link.strip_prefix('<').and_then(|l| l.split_once('>')).map(|(t, _)| t.to_owned());
    target.with_context(|| format!("GET {path}: no next link"))
}

/// Signs in through the API: the access and refresh tokens.
async fn login(base: &str, email: &str) -> anyhow::Result<(String, String)> {
    workloads::credentials(base, "/auth/api/v1/login", 200, email).await
}

/// An admin-audience access cookie: the console refreshes the session into that audience once.
async fn admin_cookie(base: &str, access: &str, refresh: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let res = client
        .get(format!("{base}/auth/admin"))
        .header("cookie", format!("authara_access={access}; authara_refresh={refresh}"))
        .send()
        .await?;
    let mut cookie = format!("authara_access={access}; authara_refresh={refresh}");
    for v in res.headers().get_all("set-cookie") {
        let v = v.to_str().unwrap_or_default();
        for name in ["authara_access=", "authara_refresh="] {
            if let Some(t) = v.strip_prefix(name) {
                let t = t.split(';').next().unwrap_or_default();
                let kept: Vec<String> =
                    cookie.split("; ").filter(|c| !c.starts_with(name)).map(str::to_owned).collect();
                cookie = format!("{}; {name}{t}", kept.join("; "));
            }
        }
    }
    Ok(cookie)
}

fn hash_of_pw() -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let params = argon2::Params::new(65536, 3, 4, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"authara-scale-bench").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(a.hash_password(PW.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("{e}"))?.to_string())
}

/// The environment `authara migrate` / `cleanup` / `serve` get for this database.
fn db_env(engine: &str, dir: &Path, pg: Option<&(String, String, String)>, db: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("AUTHARA_DATA_DIR".to_owned(), dir.display().to_string()),
        ("AUTHARA_ORG_MODE".to_owned(), "multi".to_owned()),
        ("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED".to_owned(), "true".to_owned()),
    ];
    if engine == "postgres"
        && let Some((host, port, user)) = pg
    {
        env.push(("POSTGRESQL_HOST".into(), host.clone()));
        env.push(("POSTGRESQL_PORT".into(), port.clone()));
        env.push(("POSTGRESQL_USERNAME".into(), user.clone()));
        env.push(("POSTGRESQL_DATABASE".into(), db.to_owned()));
    }
    env
}

#[expect(clippy::disallowed_methods, reason = "passes the bench's PATH through to the command it runs")]
async fn authara(opts: &Opts, args: &[&str], env: &[(String, String)]) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new(&opts.bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "warn")
        .env("AUTHARA_JWT_KEYS", format!("k1:{}", crate::ceilings::KEY_B64))
        .env("AUTHARA_JWT_ACTIVE_KEY_ID", "k1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await?;
    if !out.status.success() {
        bail!("authara {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("authara.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Seeds `n` users on `engine` and measures; returns the figures in table order.
pub async fn run(opts: &Opts, engine: &str, n: i64) -> anyhow::Result<Vec<Figure>> {
    let mut figs = Vec::new();
    let now = wall_ms();
    let dir = std::env::temp_dir().join(format!("authara-scale-{engine}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let dbname = format!("scale_{n}");
    let pg_url = opts.pg.as_ref().map(|(h, p, u)| format!("postgres://{u}@localhost:{p}/{{db}}?host={h}"));
    let db = if engine == "postgres" {
        let url = pg_url.clone().context("--pg is required for PostgreSQL")?;
        let mut admin = sqlx::PgConnection::connect(&url.replace("{db}", "postgres")).await?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {dbname}")).execute(&mut admin).await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {dbname}")).execute(&mut admin).await?;
        Db::Postgres(url.replace("{db}", &dbname))
    } else {
        Db::Sqlite(dir.join("authara.db"))
    };
    let env = db_env(engine, &dir, opts.pg.as_ref(), &dbname);
    authara(opts, &["migrate"], &env).await?;
    let hash = hash_of_pw()?;
    println!("seeding {n} users on {engine}");
    let took = seed::seed(&db, n, now, &hash).await?;
    fig(
        &mut figs,
        "seeding (in-database bulk inserts, then ANALYZE)",
        format!("{:.0} s", took.as_secs_f64()),
        took.as_secs_f64(),
    );
    let bytes = match &db {
        Db::Sqlite(_) => dir_bytes(&dir),
        Db::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let b: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&mut c).await?;
            b as u64
        }
    };
    fig(
        &mut figs,
        "disk per user (database size / users)",
        format!("{:.1} KiB", bytes as f64 / n as f64 / 1024.0),
        bytes as f64 / n as f64,
    );

    // Ids the pages are asked about.
    let mid = n / 2 + 1;
    let id_of = |email: String| {
        let db = &db;
        async move {
            let id: uuid::Uuid = match db {
                Db::Sqlite(p) => {
                    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", p.display())).await?;
                    let b: Vec<u8> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                        .bind(&email)
                        .fetch_one(&mut c)
                        .await?;
                    uuid::Uuid::from_slice(&b)?
                }
                Db::Postgres(url) => {
                    let mut c = sqlx::PgConnection::connect(url).await?;
                    sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(&email).fetch_one(&mut c).await?
                }
            };
            anyhow::Ok(id)
        }
    };
    let mid_id = id_of(format!("u{mid}@scale.test")).await?;
    let big_org: uuid::Uuid = match &db {
        Db::Sqlite(p) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", p.display())).await?;
            let b: Vec<u8> =
                sqlx::query_scalar("SELECT id FROM organizations WHERE name = 'Team 0'").fetch_one(&mut c).await?;
            uuid::Uuid::from_slice(&b)?
        }
        Db::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query_scalar("SELECT id FROM organizations WHERE name = 'Team 0'").fetch_one(&mut c).await?
        }
    };

    // The 500th page's "Older" cursor: the 25,000th row, newest first.
    let cursor_sql =
        "SELECT created_at_ms, seq FROM audit_events ORDER BY created_at_ms DESC, seq DESC LIMIT 1 OFFSET 24999";
    let (at, seq): (i64, i64) = match &db {
        Db::Sqlite(p) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", p.display())).await?;
            sqlx::query_as(cursor_sql).fetch_one(&mut c).await?
        }
        Db::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            sqlx::query_as(cursor_sql).fetch_one(&mut c).await?
        }
    };

    // Start to healthy (median of 3) and memory after start, next to an empty database's.
    let extra_owned: Vec<(String, String)> = env.clone();
    let extra: Vec<(&str, &str)> = extra_owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut readies = Vec::new();
    let mut rss = (0.0, 0.0);
    for _ in 0..3 {
        let (server, ready) = start_server(opts, engine, &extra).await?;
        readies.push(ready);
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss = rss_mib(server.pid());
        server.stop().await;
    }
    readies.sort();
    let ready_ms = readies[1].as_secs_f64() * 1000.0;
    fig(&mut figs, "start to healthy (median of 3)", format!("{ready_ms:.0} ms"), ready_ms);
    let (empty, _) = start_server(opts, engine, &[("AUTHARA_ORG_MODE", "multi")]).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let empty_rss = rss_mib(empty.pid());
    empty.stop().await;
    fig(
        &mut figs,
        "RSS after start (empty database)",
        format!("{:.1} MiB ({:.1})", rss.0, empty_rss.0),
        rss.0 / empty_rss.0,
    );

    let (server, _) = start_server(opts, engine, &extra).await?;
    let base = server.base.clone();
    let pid = server.pid();

    // Hot paths.
    let (access, _) = login(&base, &format!("u{}@scale.test", n / 3 + 2)).await?;
    let user_cookie = format!("authara_access={access}");
    let s = workloads::wrk(opts, &format!("{base}/auth/api/v1/user"), Some(&user_cookie)).await?;
    hot(&mut figs, "session check `GET /user` (wrk, 32 connections)", &s);

    let users: Vec<String> = (0..16).map(|k| format!("u{}@scale.test", k * (n / 16) + 7)).collect();
    let next = Arc::new(AtomicU64::new(0));
    let conns: Vec<Login> = (0..8).map(|_| Login { users: Arc::new(users.clone()), next: next.clone() }).collect();
    let l = load::run(&base, conns, WARMUP, opts.duration()).await;
    hot(&mut figs, "login (16 users, 8 connections)", &l);

    let mut conns = Vec::new();
    for k in 0..16 {
        let (_, refresh) = login(&base, &format!("u{}@scale.test", k * (n / 16) + 9)).await?;
        conns.push(Refresh { token: refresh });
    }
    let r = load::run(&base, conns, WARMUP, opts.duration()).await;
    hot(&mut figs, "refresh (rotation always, 16 connections)", &r);

    let next = Arc::new(AtomicU64::new(0));
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let conns: Vec<Signup> = (0..8).map(|_| Signup { run: run_id.clone(), next: next.clone() }).collect();
    let su = load::run(&base, conns, WARMUP, opts.duration()).await;
    hot(&mut figs, "signup (8 connections)", &su);

    // The operator's pages, one request at a time.
    let (a_access, a_refresh) = login(&base, "u0@scale.test").await?;
    let admin = admin_cookie(&base, &a_access, &a_refresh).await?;
    let pages: Vec<(String, String, &str)> = vec![
        ("admin search, exact email".into(), format!("/auth/admin/users?q=u{mid}%40scale.test"), admin.as_str()),
        ("admin search, prefix (`u12345`)".into(), "/auth/admin/users?q=u12345".into(), admin.as_str()),
        ("admin search, broad prefix (`u1`), page 2".into(), "/auth/admin/users?q=u1&page=2".into(), admin.as_str()),
        ("admin users, newest first".into(), "/auth/admin/users".into(), admin.as_str()),
        ("admin dashboard".into(), "/auth/admin".into(), admin.as_str()),
        ("admin audit, first page".into(), "/auth/admin/audit".into(), admin.as_str()),
        ("admin audit, 500th page by offset (`?page=500`)".into(), "/auth/admin/audit?page=500".into(), admin.as_str()),
        (
            "admin audit, 500th page by its Older link (keyset)".into(),
            format!("/auth/admin/audit?before={at}.{seq}"),
            admin.as_str(),
        ),
        ("admin audit, by actor".into(), format!("/auth/admin/audit?actor={mid_id}"), admin.as_str()),
        ("admin user detail".into(), format!("/auth/admin/users/{mid_id}"), admin.as_str()),
        ("account page".into(), "/auth/account".into(), user_cookie.as_str()),
    ];
    for (name, path, cookie) in &pages {
        let (p50, p99, _) = probe(&base, path, cookie, 200).await?;
        fig(&mut figs, format!("{name}: p50 / p99"), format!("{p50:.1} / {p99:.1} ms"), p99);
    }
    // u0 owns the big organization: a session switched into it lists its members.
    let res = reqwest::Client::new()
        .post(format!("{base}/auth/api/v1/organizations/{big_org}/switch"))
        .header("cookie", format!("authara_csrf=bench-csrf; authara_access={a_access}"))
        .header("x-csrf-token", "bench-csrf")
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "switch: {}", res.status());
    let body: serde_json::Value = res.json().await?;
    let in_org = format!("authara_access={}", body["access_token"].as_str().unwrap_or_default());
    let members = format!("/auth/api/v1/organizations/{big_org}/members");
    let (p50, p99, bytes) = probe(&base, &members, &in_org, 50).await?;
    fig(
        &mut figs,
        "members of a 10,000-member organization (API): p50 / p99",
        format!("{p50:.1} / {p99:.1} ms ({} KiB)", bytes / 1024),
        p99,
    );
    // The same list by keyset pages (`?limit=100`): the first page, and the 50th reached by
    // following the `Link` headers.
    let first = format!("{members}?limit=100");
    let (p50, p99, _) = probe(&base, &first, &in_org, 200).await?;
    fig(&mut figs, "members, first page of 100 (`?limit=100`): p50 / p99", format!("{p50:.1} / {p99:.1} ms"), p99);
    let mut page = first;
    for _ in 1..50 {
        page = next_link(&base, &page, &in_org).await?;
    }
    let (p50, p99, _) = probe(&base, &page, &in_org, 200).await?;
    fig(
        &mut figs,
        "members, 50th page of 100 by its `Link` (keyset): p50 / p99",
        format!("{p50:.1} / {p99:.1} ms"),
        p99,
    );

    // A cleanup backlog, then the cleanup while refreshes run.
    let t = Instant::now();
    let aged = seed::backlog(&db, now, wall_ms()).await?;
    println!("  backlog: {aged} rows aged in {:.1} s", t.elapsed().as_secs_f64());
    let mut conns = Vec::new();
    for k in 0..4 {
        let (_, refresh) = login(&base, &format!("u{}@scale.test", k * (n / 4) + 11)).await?;
        conns.push(Refresh { token: refresh });
    }
    let base2 = base.clone();
    let during = tokio::spawn(async move { load::run(&base2, conns, Duration::ZERO, Duration::from_secs(30)).await });
    let t = Instant::now();
    let report = authara(opts, &["cleanup"], &env).await?;
    let cleanup_s = t.elapsed().as_secs_f64();
    for line in report.lines().filter(|l| l.starts_with("table ")) {
        println!("  cleanup {line}");
    }
    let during = during.await?;
    let longest = report
        .lines()
        .find_map(|l| l.strip_prefix("longest batch ms "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let rows = report.lines().find_map(|l| l.strip_prefix("rows ")).unwrap_or("?").trim().to_owned();
    fig(
        &mut figs,
        "cleanup of the expired rows (`authara cleanup`)",
        format!("{rows} rows in {cleanup_s:.1} s, longest batch {longest:.1} ms"),
        longest,
    );
    fig(
        &mut figs,
        "refresh p99 while the cleanup runs (4 connections)",
        format!("{:.1} ms ({:.0}/s, {} errors)", during.p99_ms, during.rps(), during.errors),
        during.p99_ms,
    );
    let rss_end = rss_mib(pid);
    println!("  RSS at the end {:.1} MiB (peak {:.1})", rss_end.0, rss_end.1);
    server.stop().await;
    // The database stays for inspection until the next run of the same size (the PostgreSQL
    // cluster of `bench/scale` is throwaway; the SQLite one is in the temp dir).
    Ok(figs)
}

#[expect(clippy::disallowed_methods, reason = "the seeded rows are dated from the wall clock the server reads")]
fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn hot(figs: &mut Vec<Figure>, name: &str, s: &Stats) {
    fig(
        figs,
        name,
        format!("{:.1}/s (p50 {:.2} ms, p99 {:.2} ms, {} errors)", s.rps(), s.p50_ms, s.p99_ms, s.errors),
        s.rps(),
    );
}

/// Runs every size on both engines (PostgreSQL when `--pg`), writes the table to `out`.
pub async fn run_all(opts: &Opts, sizes: &[i64], out: &PathBuf) -> anyhow::Result<()> {
    let mut engines = vec!["sqlite"];
    if opts.pg.is_some() {
        engines.push("postgres");
    }
    // `--only sqlite|postgres`: one engine.
    engines.retain(|e| opts.only.as_deref().is_none_or(|o| o == *e));
    let mut md = String::new();
    for engine in engines {
        let mut cols: Vec<Vec<Figure>> = Vec::new();
        for &n in sizes {
            cols.push(run(opts, engine, n).await?);
        }
        writeln!(md, "\n## {engine}\n")?;
        write!(md, "| figure |")?;
        for n in sizes {
            write!(md, " {n} users |")?;
        }
        writeln!(md, " largest / smallest |")?;
        writeln!(md, "|---|{}---|", "---|".repeat(sizes.len()))?;
        for (i, f) in cols[0].iter().enumerate() {
            write!(md, "| {} |", f.name)?;
            for c in &cols {
                write!(md, " {} |", c.get(i).map_or("–", |f| f.value.as_str()))?;
            }
            let last = cols.last().and_then(|c| c.get(i)).map_or(f64::NAN, |f| f.number);
            writeln!(md, " {:.2} |", last / f.number)?;
        }
    }
    let mut file = std::fs::read_to_string(out).unwrap_or_default();
    file.push_str(&md);
    std::fs::write(out, file)?;
    println!("{md}");
    Ok(())
}
