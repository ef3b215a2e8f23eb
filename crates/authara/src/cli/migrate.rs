//! `authara migrate`, `authara migrate --check` and `authara migrate status`.

use anyhow::{Context as _, bail};

use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::store::Store;

/// Applies the pending migrations; on SQLite, a snapshot of the database is taken first.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(config).await.context("opening the database")?;
    if let Some(path) = crate::app::snapshot_before_migrate(&store, config, SystemClock.now_ms()).await? {
        println!("snapshot before migrating: {}", path.display());
    }
    let applied = store.migrate(SystemClock.now_ms()).await;
    store.close().await;
    let applied = match applied {
        Ok(a) => a,
        Err(
            e @ (crate::store::migrate::MigrateError::DatabaseNewer { .. }
            | crate::store::migrate::MigrateError::UnknownApplied { .. }),
        ) => bail!("{e}"),
        Err(e) => return Err(e).context("migrating"),
    };
    if applied.is_empty() {
        println!("schema is up to date (version {})", crate::store::migrate::required_version());
    }
    for m in &applied {
        println!("applied {} {}", m.version, m.name);
    }
    Ok(())
}

/// Lists the pending migrations (`<version> <name>`, one a line) and changes nothing.
/// `Ok(true)` when none is pending; an error when the database is newer than this binary.
pub async fn check(config: &Config) -> anyhow::Result<bool> {
    let store = Store::connect(config).await.context("opening the database")?;
    let status = store.migration_status().await.context("reading the schema version");
    store.close().await;
    let status = status?;
    let unknown = status.unknown();
    if status.current > status.required || !unknown.is_empty() {
        bail!(
            "the database schema is at version {} (unknown here: {}), newer than this binary's version {}; \
             run a newer authara",
            status.current,
            if unknown.is_empty() { "-".to_owned() } else { unknown.join(", ") },
            status.required
        );
    }
    let mut none = true;
    for m in status.pending() {
        println!("{} {}", m.version, m.name);
        none = false;
    }
    Ok(none)
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
    Ok(status.current == status.required && pending.is_empty())
}
