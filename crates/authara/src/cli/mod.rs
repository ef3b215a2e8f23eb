//! Command line: `serve`, `migrate`, `healthcheck`, `keys`, `admin`, `webhooks`, `import`, `backup`,
//! `restore`.

pub mod admin;
pub mod backup;
pub mod cleanup;
pub mod healthcheck;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod restore;
pub mod serve;
pub mod webhooks;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "authara", version, about = "Self-hosted authentication server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the auth server (the default when no command is given).
    Serve {
        /// Apply pending migrations before starting.
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending migrations (or `migrate status`). On SQLite, a snapshot of the database is
    /// taken beside it first (`AUTHARA_MIGRATE_SNAPSHOTS_KEEP`).
    Migrate {
        /// Apply nothing: list the pending migrations, one a line; exit 0 when there are none,
        /// 3 when there are some.
        #[arg(long)]
        check: bool,
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Write a consistent snapshot of the database to FILE while the server runs (SQLite: a
    /// copy of the database file; PostgreSQL: a pg_dump archive of POSTGRESQL_SCHEMA).
    Backup {
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
    },
    /// Replace the database with a snapshot taken by `authara backup`; refused while the database
    /// is in use or when the snapshot's schema is newer than this binary.
    Restore {
        #[arg(long, value_name = "FILE")]
        from: std::path::PathBuf,
    },
    /// Run every cleanup once now (expired sessions, tokens, ceremonies and flows; old emails,
    /// deliveries and audit events), in bounded batches, beside a running server.
    Cleanup,
    /// Exit 0 only if the server on the configured address reports healthy.
    Healthcheck,
    /// Administrators.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Webhook deliveries.
    Webhooks {
        #[command(subcommand)]
        action: WebhooksAction,
    },
    /// Import users from a JSON Lines file (one user a line; docs/operations.md), or undo an import.
    Import {
        /// The file to import.
        #[arg(long, value_name = "FILE", required_unless_present = "undo", conflicts_with = "undo")]
        from: Option<std::path::PathBuf>,
        /// Check every line and print the counts and problems; write nothing.
        #[arg(long, requires = "from")]
        dry_run: bool,
        /// Remove every user and organization that import batch BATCH added.
        #[arg(long, value_name = "BATCH")]
        undo: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksAction {
    /// The newest deliveries: id, event, status, attempts, response, latency, last error.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Sends a delivered or failed delivery again, under the same delivery id.
    Redeliver { id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Show the schema version and pending migrations.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Print a new `kid:base64secret` for AUTHARA_JWT_KEYS.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create a user with the admin role. Reads the password from stdin, or generates and
    /// prints one when stdin is a terminal.
    Create {
        #[arg(long)]
        email: String,
    },
    /// Give an existing user the admin role.
    Grant {
        #[arg(long)]
        email: String,
    },
    /// List users (newest first), or those whose email or username starts with `--query`.
    List {
        #[arg(long, default_value = "")]
        query: String,
    },
    /// Disable a user: they cannot sign in, and every session ends at once.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Revoke every session of a user.
    RevokeSessions {
        #[arg(long)]
        email: String,
    },
}
