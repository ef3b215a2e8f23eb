//! The binary's commands as an operator runs them: `serve` (start-up, configuration, headers,
//! connections, shutdown), health and probes, metrics, migrations, backup/restore/import, the
//! cleanup, and the files in `deploy/`.

mod backup;
mod cleanup;
mod connections;
mod deploy;
mod health;
mod metrics;
mod migrations;
mod serve;
mod shutdown;
