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
    let (batches, longest) = crate::store::retention::take_batch_stats();
    app.close().await;
    let done = done?;
    for (kind, n) in &done {
        println!("{kind}: {n}");
    }
    println!("rows {}", done.iter().map(|(_, n)| n).sum::<u64>());
    println!("batches {batches}");
    println!("longest batch ms {:.1}", longest.as_secs_f64() * 1000.0);
    println!("took s {:.1}", started.elapsed().as_secs_f64());
    Ok(())
}
