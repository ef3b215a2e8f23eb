//! Resource bounds under abuse, printed as figures (`bench/abuse`):
//! - `abandoned-hashes`: peak RSS of the release server while 200 clients each start a login
//!   (a full argon2id hash at the default 64 MiB) and hang up 30 ms later, against the bound
//!   `baseline + hash slots × hash memory + 64 MiB`;
//! - `limiter-memory`: memory of the in-process rate limiter filled to its entry cap with
//!   64 KiB "emails" (keys are fixed-size hashes, so the size of the input does not matter).

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;

use crate::Opts;
use crate::workloads::{rss_mib, start_server};

/// Peak RSS while `requests` logins are abandoned mid-hash.
pub async fn abandoned_hashes(opts: &Opts, requests: usize) -> anyhow::Result<()> {
    let (server, _) = start_server(opts, "sqlite", &[]).await?;
    // Let the start-up dummy hash finish, then read the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (baseline, _) = rss_mib(server.pid());
    let addr = server.base.trim_start_matches("http://").to_owned();
    let slots = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let hash_mib = 64.0;
    let bound = baseline + slots as f64 * hash_mib + 64.0;
    let body = r#"{"email":"victim@example.com","password":"violet-harbor-tangent"}"#;
    let request = format!(
        "POST /auth/api/v1/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Cookie: authara_csrf=bench\r\nX-CSRF-Token: bench\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let pid = server.pid();
    let sampler = tokio::spawn(async move {
        let started = Instant::now();
        let mut peak: f64 = 0.0;
        while started.elapsed() < Duration::from_secs(25) {
            peak = peak.max(rss_mib(pid).0);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peak
    });
    let mut tasks = Vec::new();
    for _ in 0..requests {
        let addr = addr.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
                let _ = s.write_all(request.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
                // Dropped: the client hangs up while its hash runs or waits.
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let peak = sampler.await?;
    let (_, hwm) = rss_mib(pid);
    server.stop().await;
    println!(
        "abandoned-hashes requests {requests} baseline_mib {baseline:.1} peak_rss_mib {peak:.1} hwm_mib {hwm:.1} \
         bound_mib {bound:.1} slots {slots} within_bound {}",
        hwm <= bound
    );
    Ok(())
}

/// RSS growth of the limiter filled to its cap with huge keys.
pub fn limiter_memory() -> anyhow::Result<()> {
    let (config, _) = authara::config::load_from_map(&Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = config.rate_limits.clone();
    let cache = authara::cache::Cache::memory(&limits, 600_000);
    let pid = std::process::id();
    let (before, _) = rss_mib(pid);
    let huge = "x".repeat(64 * 1024);
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let attempts = (limits.max_entries as usize) * 4;
    rt.block_on(async {
        for i in 0..attempts {
            let key = authara::cache::LimitKey {
                ip: Some(std::net::IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])),
                target: Some(format!("{huge}{i}@example.com")),
            };
            cache.check_limit(authara::cache::Scope::Login, &key, 0).await;
        }
    });
    let (after, _) = rss_mib(pid);
    println!(
        "limiter-memory attempts {attempts} key_bytes {} entries {} cap {} rss_growth_mib {:.1}",
        huge.len(),
        cache.limiter_entries(),
        limits.max_entries,
        after - before
    );
    Ok(())
}
