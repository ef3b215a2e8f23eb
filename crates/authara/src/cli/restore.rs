//! `authara restore --from FILE`: puts a snapshot of `authara backup` in place of the database.
//!
//! Refuses while the database is in use (a running server), refuses a snapshot whose schema
//! this binary does not know (newer, or not authara's), and keeps what it replaces: SQLite's
//! file as `authara.db.before-restore-<time>`, PostgreSQL's schema as
//! `<schema>_before_restore_<time>`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::clock::{Clock as _, SystemClock};
use crate::config::{Config, DatabaseConfig, PostgresConfig};
use crate::services::backup::{pg_command, private_empty_file, stamp};
use crate::store::Store;
use crate::store::backup::{
    inspect_sqlite_snapshot, postgres_other_sessions, postgres_rename_schema, sqlite_not_in_use,
};
use crate::store::migrate::{MIGRATIONS, required_version};

pub async fn run(config: Config, from: &Path) -> anyhow::Result<()> {
    if !from.is_file() {
        bail!("{} is not a file", from.display());
    }
    match &config.database {
        DatabaseConfig::Sqlite { path } => sqlite(path, from).await,
        DatabaseConfig::Postgres(pg) => postgres(&config, pg, from).await,
    }
}

/// Refuses a snapshot this binary cannot serve; says when it needs `authara migrate`.
fn check_versions(applied: &[(i64, String)]) -> anyhow::Result<()> {
    let current = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if applied.is_empty() {
        bail!("the snapshot holds no authara schema (no authara_schema_version rows)");
    }
    let unknown: Vec<String> = applied
        .iter()
        .filter(|(v, _)| !MIGRATIONS.iter().any(|m| m.version == *v))
        .map(|(v, n)| format!("{v} {n}"))
        .collect();
    if current > required_version() || !unknown.is_empty() {
        bail!(
            "the snapshot's schema is at version {current} (unknown here: {}), newer than this binary's version {}; \
             restore it with the authara release that took it",
            if unknown.is_empty() { "-".to_owned() } else { unknown.join(", ") },
            required_version()
        );
    }
    Ok(())
}

fn pending_note(applied: &[(i64, String)]) {
    let current = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
    let pending = MIGRATIONS.iter().filter(|m| !applied.iter().any(|(v, _)| *v == m.version)).count();
    println!("schema version {current}");
    if pending > 0 {
        println!("{pending} migration(s) pending for this binary: run `authara migrate` before `authara serve`");
    }
}

async fn sqlite(db: &Path, from: &Path) -> anyhow::Result<()> {
    let info = inspect_sqlite_snapshot(from)
        .await
        .with_context(|| format!("reading {} as a SQLite snapshot", from.display()))?;
    if !info.intact {
        bail!("{} failed SQLite's integrity check; not restored", from.display());
    }
    check_versions(&info.applied)?;
    let stamp = stamp(SystemClock.now_ms());
    let mut kept = None;
    if db.exists() {
        sqlite_not_in_use(db).await.map_err(|_| {
            anyhow::anyhow!(
                "the database {} is in use (is `authara serve` running?); stop it and run restore again",
                db.display()
            )
        })?;
        let aside = sibling(db, &format!(".before-restore-{stamp}"));
        std::fs::rename(db, &aside).with_context(|| format!("moving {} aside", db.display()))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(sibling(db, suffix));
        }
        kept = Some(aside);
    }
    let partial = sibling(db, ".restoring");
    let _ = std::fs::remove_file(&partial);
    private_empty_file(&partial)?;
    std::fs::copy(from, &partial).with_context(|| format!("copying {}", from.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, db)?;
    println!("restored {} from {}", db.display(), from.display());
    if let Some(aside) = kept {
        println!("the database it replaced is kept as {}", aside.display());
    }
    pending_note(&info.applied);
    Ok(())
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    db.with_file_name(name)
}

fn pg_restore(pg: &PostgresConfig, args: &[&str], from: &Path) -> anyhow::Result<String> {
    let out = pg_command("pg_restore", pg)
        .args(args)
        .arg(from)
        .output()
        .context("running pg_restore (install PostgreSQL's client tools)")?;
    if !out.status.success() {
        bail!("pg_restore failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn postgres(config: &Config, pg: &PostgresConfig, from: &Path) -> anyhow::Result<()> {
    let listing = pg_restore(pg, &["--list"], from).context("reading the snapshot")?;
    let schemas: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split(" SCHEMA - ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    if !schemas.contains(&pg.schema.as_str()) {
        bail!(
            "the snapshot holds schema(s) {:?}, not POSTGRESQL_SCHEMA={}; set POSTGRESQL_SCHEMA to the snapshot's",
            schemas,
            pg.schema
        );
    }
    let rows = pg_restore(pg, &["--data-only", "--table=authara_schema_version", "--file=-"], from)?;
    let mut applied = Vec::new();
    let mut in_copy = false;
    for line in rows.lines() {
        if line.starts_with("COPY ") {
            in_copy = true;
        } else if line == "\\." {
            in_copy = false;
        } else if in_copy {
            let mut fields = line.split('\t');
            if let (Some(Ok(v)), Some(name)) = (fields.next().map(str::parse::<i64>), fields.next()) {
                applied.push((v, name.to_owned()));
            }
        }
    }
    check_versions(&applied)?;
    let store = Store::connect(config).await.context("opening the database")?;
    let others = postgres_other_sessions(&store).await.context("looking for running servers")?.unwrap_or(0);
    if others > 0 {
        store.close().await;
        bail!(
            "the database is in use by {others} authara connection(s) (is `authara serve` running?); stop it and run restore again"
        );
    }
    let aside = format!("{}_before_restore_{}", pg.schema, stamp(SystemClock.now_ms()).to_lowercase());
    let moved = postgres_rename_schema(&store, &pg.schema, &aside).await.context("setting the current schema aside")?;
    let restored = pg_restore(
        pg,
        &["--single-transaction", "--exit-on-error", "--no-owner", "--no-acl", "--dbname", &pg.database],
        from,
    );
    if let Err(e) = restored {
        if moved == Some(true) {
            postgres_rename_schema(&store, &aside, &pg.schema).await.context("putting the schema back")?;
        }
        store.close().await;
        return Err(e);
    }
    store.close().await;
    println!("restored schema {} of database {} from {}", pg.schema, pg.database, from.display());
    if moved == Some(true) {
        println!("the schema it replaced is kept as {aside} (drop it with `DROP SCHEMA {aside} CASCADE`)");
    }
    pending_note(&applied);
    Ok(())
}
