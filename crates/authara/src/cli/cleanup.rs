//! `authara cleanup`: one pass of every cleanup the server's workers run on their schedules
//! (expired sessions and refresh tokens, ceremonies, flows, sent emails, delivered webhooks,
//! audit events past retention), at once, beside a running server. For a first cleanup after an
//! import, and to measure one (`bench/scale`).

use std::sync::Arc;
use std::time::Instant;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = App::open(Arc::new(config), Arc::new(SystemClock), false).await?;
    let started = Instant::now();
    crate::store::retention::take_batch_stats();
    let done = crate::worker::cleanup::everything(&app.services).await;
    let stats = crate::store::retention::take_batch_stats();
    app.close().await;
    let done = done?;
    for (kind, n) in &done {
        println!("{kind}: {n}");
    }
    for s in &stats {
        println!(
            "table {}: {} rows in {} batches, {:.1} ms in all, longest {:.1} ms",
            s.table,
            s.rows,
            s.batches,
            s.total.as_secs_f64() * 1000.0,
            s.longest.as_secs_f64() * 1000.0
        );
    }
    let longest = stats.iter().map(|s| s.longest).max().unwrap_or_default();
    println!("rows {}", done.iter().map(|(_, n)| n).sum::<u64>());
    println!("batches {}", stats.iter().map(|s| s.batches).sum::<u64>());
    println!("longest batch ms {:.1}", longest.as_secs_f64() * 1000.0);
    println!("took s {:.1}", started.elapsed().as_secs_f64());
    Ok(())
}
