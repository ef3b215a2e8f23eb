//! `authara backup --to FILE`: a consistent snapshot of the database while the server runs.

use std::path::Path;
use std::sync::Arc;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;

pub async fn run(config: Config, to: &Path) -> anyhow::Result<()> {
    let app = App::open(Arc::new(config), Arc::new(SystemClock), false).await?;
    let started = std::time::Instant::now();
    let result = app.services.backups().snapshot(to).await;
    let engine = app.store.engine().as_str();
    app.close().await;
    let size = result?;
    println!(
        "wrote a snapshot of the {engine} database to {} ({size} bytes in {:.2}s)",
        to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
