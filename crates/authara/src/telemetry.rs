//! Logging: human-readable in dev, JSON in prod, `LOG_LEVEL` honored.

use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Installs the global subscriber. Logs go to stdout.
pub fn init(config: &Config) {
    let sql = match &config.database {
        crate::config::DatabaseConfig::Postgres(pg) if pg.log_sql => "sqlx=debug",
        _ => "sqlx=warn",
    };
    let directives = format!("{},{sql},hyper=info,hyper_util=info,h2=info,tower=info", config.log_level);
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    let result = if config.is_prod() {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())).try_init()
    };
    // A subscriber already set (tests building several apps) is fine.
    let _ = result;
}
