//! `authara webhooks list|redeliver`: see and replay deliveries from the shell.

use std::sync::Arc;

use anyhow::bail;

use crate::app::App;
use crate::clock::{SystemClock, rfc3339};
use crate::config::Config;

pub async fn list(config: Config, limit: i64) -> anyhow::Result<()> {
    let app = App::open(Arc::new(config), Arc::new(SystemClock), false).await?;
    let rows = app.services.webhooks().recent(limit.clamp(1, 1000)).await;
    app.close().await;
    for d in rows? {
        println!(
            "{}  {}  {:<34} {:<10} attempts {}  response {}  latency {}  {}",
            d.id,
            rfc3339(d.created_at_ms),
            d.event_type,
            d.status,
            d.attempt_count,
            d.response_status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            d.latency_ms.map_or_else(|| "-".to_owned(), |l| format!("{l} ms")),
            d.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn redeliver(config: Config, id: uuid::Uuid) -> anyhow::Result<()> {
    let app = App::open(Arc::new(config), Arc::new(SystemClock), false).await?;
    let done = app.services.webhooks().redeliver(id).await;
    app.close().await;
    if !done? {
        bail!("no delivered or failed delivery {id}");
    }
    println!("delivery {id} queued again; a running server sends it within a second");
    Ok(())
}
