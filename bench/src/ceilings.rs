//! The ceilings each workload is measured against, on this machine, in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authara::domain::{EmailAddress, OrgId, OrgKind, OrgRole, SessionId, UserId};
use authara::store::Store;
use authara::store::accounts::{NewOrg, NewUser};
use authara::store::refresh::NewRefresh;
use authara::store::sessions::NewSession;
use uuid::Uuid;

/// The HS256 key shared by the ceiling server and the workloads' server.
pub const KEY_B64: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
pub const KEY_RAW: &[u8] = b"01234567890123456789012345678901";

/// Ceiling H: a bare axum handler that reads the `authara_access` cookie, verifies the HS256
/// JWT and answers a small JSON body, on the default multi-thread runtime (as `authara serve`).
#[expect(clippy::disallowed_methods, reason = "BENCH_BIND is the bench's own setting, not server configuration")]
pub async fn serve_ceiling_h() -> anyhow::Result<()> {
    use axum::http::HeaderMap;
    let key = Arc::new(jsonwebtoken::DecodingKey::from_secret(KEY_RAW));
    let handler = move |headers: HeaderMap| {
        let key = key.clone();
        async move {
            let token = headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|c| c.split(';').map(str::trim).find_map(|kv| kv.strip_prefix("authara_access=")))
                .unwrap_or_default();
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            v.validate_aud = false;
            match jsonwebtoken::decode::<serde_json::Value>(token, &key, &v) {
                Ok(d) => {
                    axum::Json(serde_json::json!({"id": d.claims["sub"], "org": d.claims["org_id"]})).into_response()
                }
                Err(_) => axum::http::StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    };
    use axum::response::IntoResponse as _;
    let app = axum::Router::new().route("/check", axum::routing::get(handler));
    let bind = std::env::var("BENCH_BIND").unwrap_or_else(|_| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Ceiling A: raw argon2id hashes per second at the configured parameters, one thread per core.
pub fn hash_ceiling(secs: u64) {
    let params = authara::services::password::HashParams::default();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let count = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let count = count.clone();
            std::thread::spawn(move || {
                let p = argon2::Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
                    .unwrap_or_default();
                let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
                let mut out = [0u8; 32];
                while Instant::now() < stop {
                    if a.hash_password_into(b"benchmark-password", b"0123456789abcdef", &mut out).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    for t in threads {
        let _ = t.join();
    }
    let per_sec = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("hashes_per_sec {per_sec:.3} cores {cores}");
}

/// Ceiling D's clock: the chains are created at 1 and rotated at 2, so the session's
/// `last_used_at_ms` (1) is never a minute old and, as in the server, no refresh touches it.
const NOW_MS: i64 = 2;
/// Rotation `always`: every token is due (the server passes `i64::MAX` then).
const ROTATE_ALWAYS: i64 = i64::MAX;
/// Sessions and tokens never expire during the run.
const EXPIRES_MS: i64 = i64::MAX / 2;

/// Ceiling D: the rotation transaction alone, exactly as the server runs it per refresh with
/// rotation `always` (`Services::refresh`): begin, [`Tx::rotate_refresh_if_due`] (consume the
/// token, insert the successor and read the refresh context in one call), commit; the successor
/// is the token the next iteration presents. On one engine, from as many tasks as the workload
/// uses, no HTTP.
///
/// [`Tx::rotate_refresh_if_due`]: authara::store::Tx::rotate_refresh_if_due
pub async fn rotation_ceiling(engine: &str, pg_url: Option<&str>, secs: u64, pool: u32) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("authara-ceiling-d-{}", Uuid::new_v4().simple()));
    let store = match engine {
        "sqlite" => {
            std::fs::create_dir_all(&dir)?;
            Store::open_sqlite(&dir.join("authara.db"), 16).await?
        }
        _ => Store::connect_postgres_url_pool(pg_url.unwrap_or_default(), "authara", pool).await?,
    };
    store.migrate(0).await?;
    let conns = 16;
    let mut chains = Vec::new();
    let mut tx = store.begin().await?;
    for i in 0..conns {
        let user = UserId::new();
        let org = OrgId::new();
        let email = EmailAddress::parse(&format!("d{i}-{}@bench.local", user.0.simple()))?;
        tx.insert_user(&NewUser { id: user, email: &email, username: email.as_str(), verified: false, now_ms: 1 })
            .await?;
        tx.insert_org(&NewOrg { id: org, name: "bench", kind: OrgKind::Team, created_by: user, now_ms: 1 }).await?;
        tx.insert_membership(org, user, OrgRole::Owner, 1).await?;
        let sid = SessionId::new();
        tx.insert_session(&NewSession {
            id: sid,
            user_id: user,
            organization_id: org,
            user_agent: "bench",
            ip: None,
            now_ms: 1,
            expires_at_ms: EXPIRES_MS,
            amr: "pwd",
            mfa: false,
        })
        .await?;
        let token = authara::services::sessions::new_refresh_token();
        let hash = authara::services::sessions::hash_refresh_token(&token);
        tx.insert_refresh(&NewRefresh {
            session_id: sid,
            organization_id: org,
            token_hash: &hash,
            now_ms: 1,
            expires_at_ms: EXPIRES_MS,
        })
        .await?;
        chains.push(hash);
    }
    tx.commit().await?;

    let count = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for first in chains {
        let store = store.clone();
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let mut hash = first;
            while Instant::now() < stop {
                // As the server: the successor is minted before the call that may rotate.
                let next =
                    authara::services::sessions::hash_refresh_token(&authara::services::sessions::new_refresh_token());
                let Ok(mut tx) = store.begin().await else { continue };
                match tx.rotate_refresh_if_due(&hash, NOW_MS, ROTATE_ALWAYS, &next, EXPIRES_MS).await {
                    Ok(Some((_, true))) => {}
                    // Each task owns its chain: the token it presents is unconsumed and due.
                    Ok(_) => anyhow::bail!("ceiling D: the presented token was not rotated"),
                    Err(_) => continue,
                }
                if tx.commit().await.is_err() {
                    continue;
                }
                hash = next;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let started = Instant::now();
    let mut result = Ok(());
    for t in tasks {
        let r = t.await.map_err(anyhow::Error::from).and_then(|r| r);
        result = result.and(r);
    }
    let per_sec = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!("rotations_per_sec {per_sec:.1}");
    Ok(())
}
