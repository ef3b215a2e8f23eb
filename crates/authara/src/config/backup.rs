//! Backups: scheduled snapshots inside `serve`, and the SQLite snapshots `migrate` takes first.

use std::path::PathBuf;
use std::time::Duration;

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// Directory for scheduled snapshots taken by `serve` (`authara-<UTC time>.db` on SQLite, `.pgdump` on PostgreSQL, readable by the server's user only); unset: no scheduled backups.
    DIR = extra("AUTHARA_BACKUP_DIR", "");
    /// Time between scheduled snapshots; the first is taken one interval after start.
    INTERVAL = extra("AUTHARA_BACKUP_INTERVAL", "24h");
    /// Scheduled snapshots kept in `AUTHARA_BACKUP_DIR`; older ones are removed after each new one.
    KEEP = extra("AUTHARA_BACKUP_KEEP", "7");
    /// SQLite: snapshots `migrate` and `serve --migrate` take beside the database before applying migrations (`authara.db.pre-migrate-v<version>-<UTC time>`), the newest this many kept; 0 takes none.
    MIGRATE_SNAPSHOTS_KEEP = extra("AUTHARA_MIGRATE_SNAPSHOTS_KEEP", "3");
}

/// `AUTHARA_BACKUP_*` and `AUTHARA_MIGRATE_SNAPSHOTS_KEEP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// `AUTHARA_BACKUP_DIR`; `None`: no scheduled backups.
    pub dir: Option<PathBuf>,
    /// `AUTHARA_BACKUP_INTERVAL`.
    pub interval: Duration,
    /// `AUTHARA_BACKUP_KEEP`.
    pub keep: u32,
    /// `AUTHARA_MIGRATE_SNAPSHOTS_KEEP`.
    pub migrate_snapshots_keep: u32,
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>) -> BackupConfig {
    let dir = r.raw(&DIR).map(PathBuf::from);
    let interval = r.duration(&INTERVAL);
    r.ensure(interval >= Duration::from_secs(1), &INTERVAL, "must be at least 1s");
    BackupConfig {
        dir,
        interval,
        keep: r.positive(&KEEP),
        migrate_snapshots_keep: r.non_negative(&MIGRATE_SNAPSHOTS_KEEP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let vars = std::collections::HashMap::new();
        let mut r = Reader::new(&vars);
        let c = build(&mut r);
        assert!(r.errors.is_empty());
        assert_eq!(
            c,
            BackupConfig { dir: None, interval: Duration::from_secs(86_400), keep: 7, migrate_snapshots_keep: 3 }
        );
        let vars = [("AUTHARA_BACKUP_INTERVAL", "500ms"), ("AUTHARA_BACKUP_KEEP", "0")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut r = Reader::new(&vars);
        build(&mut r);
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    }
}
