//! Backups: a consistent snapshot of the running database, on demand (`authara backup`) or on a
//! schedule inside `serve` (`AUTHARA_BACKUP_DIR`, `_INTERVAL`, `_KEEP`).
//!
//! SQLite: `VACUUM INTO` copies the database inside one read transaction while the server keeps
//! serving. PostgreSQL: `pg_dump --format=custom --schema=<POSTGRESQL_SCHEMA>` (one repeatable-read
//! snapshot), restored by `authara restore` with `pg_restore`. Either file is created readable by
//! this user only, under a temporary name, and renamed into place once complete.

use std::path::{Path, PathBuf};

use super::Core;
use crate::config::{DatabaseConfig, PostgresConfig};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already; choose another file")]
    Exists(PathBuf),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("pg_dump failed: {0}")]
    PgDump(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The file name extension of a snapshot of each engine.
pub fn extension(db: &DatabaseConfig) -> &'static str {
    match db {
        DatabaseConfig::Sqlite { .. } => "db",
        DatabaseConfig::Postgres(_) => "pgdump",
    }
}

/// Takes snapshots.
#[derive(Clone)]
pub struct Backups {
    core: Core,
}

impl Backups {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }

    /// Writes a snapshot to `to`, which must not exist. Returns its size in bytes.
    pub async fn snapshot(&self, to: &Path) -> Result<u64, BackupError> {
        if to.exists() {
            return Err(BackupError::Exists(to.to_owned()));
        }
        let partial = partial_name(to);
        let _ = std::fs::remove_file(&partial);
        private_empty_file(&partial)?;
        let written = match &self.core.config.database {
            DatabaseConfig::Sqlite { .. } => {
                self.core.store.sqlite_snapshot(&partial).await.map(|_| ()).map_err(Into::into)
            }
            DatabaseConfig::Postgres(pg) => {
                let (pg, out) = (pg.clone(), partial.clone());
                tokio::task::spawn_blocking(move || pg_dump(&pg, &out)).await.map_err(std::io::Error::other)?
            }
        };
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, to)?;
        Ok(std::fs::metadata(to)?.len())
    }

    /// A snapshot in `dir` named after the time (`authara-YYYYMMDDTHHMMSSZ.<db|pgdump>`), then
    /// the oldest of that name pattern removed until `keep` remain.
    pub async fn scheduled(&self, dir: &Path, keep: u32) -> Result<(PathBuf, u64), BackupError> {
        crate::store::private_dir(dir)?;
        let ext = extension(&self.core.config.database);
        let path = dir.join(format!("authara-{}.{ext}", stamp(self.core.now_ms())));
        let size = self.snapshot(&path).await?;
        prune(dir, "authara-", &format!(".{ext}"), keep as usize)?;
        Ok((path, size))
    }
}

fn partial_name(to: &Path) -> PathBuf {
    let mut name = to.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".partial");
    to.with_file_name(name)
}

/// Creates an empty file readable by this user only (snapshots hold password hashes).
pub fn private_empty_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map(|_| ())
}

/// `YYYYMMDDTHHMMSSZ` in UTC, sorting as the time does.
pub fn stamp(now_ms: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Removes the oldest files of `dir` named `<prefix>…<suffix>` until `keep` remain (names sort
/// by time). Returns the removed paths.
pub fn prune(dir: &Path, prefix: &str, suffix: &str, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for name in names.into_iter().take(excess) {
        let path = dir.join(name);
        std::fs::remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// `pg_dump` (from `PATH`, else the newest `/usr/lib/postgresql/*/bin`), or `pg_restore`.
pub fn pg_tool(name: &str) -> PathBuf {
    #[expect(clippy::disallowed_methods, reason = "PATH locates the PostgreSQL client tools, not configuration")]
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
        return found;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path().join("bin").join(name))).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|p| p.components().nth(4).and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok()));
    dirs.pop().unwrap_or_else(|| PathBuf::from(name))
}

/// A PostgreSQL client tool with the connection in its environment (the password never on
/// the command line).
pub fn pg_command(tool: &str, pg: &PostgresConfig) -> std::process::Command {
    let mut cmd = std::process::Command::new(pg_tool(tool));
    cmd.env("PGHOST", &pg.host)
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", &pg.username)
        .env("PGDATABASE", &pg.database);
    if !pg.password.is_empty() {
        cmd.env("PGPASSWORD", pg.password.expose_secret());
    }
    cmd
}

fn pg_dump(pg: &PostgresConfig, out: &Path) -> Result<(), BackupError> {
    let output = pg_command("pg_dump", pg)
        .arg("--format=custom")
        .arg(format!("--schema={}", pg.schema))
        .arg("--file")
        .arg(out)
        .output()
        .map_err(|e| BackupError::PgDump(format!("cannot run {}: {e}", pg_tool("pg_dump").display())))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BackupError::PgDump(String::from_utf8_lossy(&output.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_as_time_and_pruning_keeps_the_newest() {
        assert_eq!(stamp(0), "19700101T000000Z");
        assert_eq!(stamp(1_614_830_767_500), "20210304T040607Z");
        let dir = tempfile::tempdir().unwrap();
        for t in [3, 1, 2, 4] {
            std::fs::write(dir.path().join(format!("authara-{}.db", stamp(t * 86_400_000))), b"x").unwrap();
        }
        std::fs::write(dir.path().join("other.db"), b"x").unwrap();
        let removed = prune(dir.path(), "authara-", ".db", 2).unwrap();
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["authara-19700104T000000Z.db", "authara-19700105T000000Z.db", "other.db"]);
    }
}
