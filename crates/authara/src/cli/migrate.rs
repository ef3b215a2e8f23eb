//! `authara migrate` and `authara migrate status`.

use anyhow::Context as _;

use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::store::Store;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(config).await.context("opening the database")?;
    let applied = store.migrate(SystemClock.now_ms()).await.context("migrating")?;
    if applied.is_empty() {
        println!("schema is up to date (version {})", crate::store::migrate::required_version());
    }
    for m in &applied {
        println!("applied {} {}", m.version, m.name);
    }
    store.close().await;
    Ok(())
}

/// Prints the schema version; exits non-zero when the database does not match this binary.
pub async fn status(config: &Config) -> anyhow::Result<bool> {
    let store = Store::connect(config).await.context("opening the database")?;
    let status = store.migration_status().await.context("reading the schema version")?;
    println!("engine: {}", store.engine().as_str());
    println!("current version: {}", status.current);
    println!("required version: {}", status.required);
    for (v, name) in &status.applied {
        println!("applied  {v} {name}");
    }
    let pending: Vec<_> = status.pending().collect();
    for m in &pending {
        println!("pending  {} {}", m.version, m.name);
    }
    store.close().await;
    Ok(status.current == status.required)
}
