use std::process::ExitCode;

use authara::cli::{AdminAction, Cli, Command, KeysAction, MigrateAction, WebhooksAction};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Keys { action: KeysAction::Generate }) = cli.command {
        authara::cli::keys::generate();
        return ExitCode::SUCCESS;
    }
    let (config, warnings) = match authara::config::load_from_env() {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    authara::telemetry::init(&config);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `migrate --check` answers 3 when migrations are pending (CI and init containers).
    if let Some(Command::Migrate { check: true, .. }) = cli.command {
        return match runtime.block_on(authara::cli::migrate::check(&config)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(3),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(async move {
        match cli.command {
            None => authara::cli::serve::run(config, false).await.map(|()| true),
            Some(Command::Serve { migrate }) => authara::cli::serve::run(config, migrate).await.map(|()| true),
            Some(Command::Migrate { check: true, .. }) => Ok(true),
            Some(Command::Backup { to }) => authara::cli::backup::run(config, &to).await.map(|()| true),
            Some(Command::Restore { from }) => authara::cli::restore::run(config, &from).await.map(|()| true),
            Some(Command::Migrate { action: None, .. }) => authara::cli::migrate::run(&config).await.map(|()| true),
            Some(Command::Migrate { action: Some(MigrateAction::Status), .. }) => {
                authara::cli::migrate::status(&config).await
            }
            Some(Command::Admin { action: AdminAction::Create { email } }) => {
                authara::cli::admin::create(config, &email).await.map(|()| true)
            }
            Some(Command::Admin { action: AdminAction::Grant { email } }) => {
                authara::cli::admin::grant(config, &email).await.map(|()| true)
            }
            Some(Command::Admin { action: AdminAction::List { query } }) => {
                authara::cli::admin::list(config, &query).await.map(|()| true)
            }
            Some(Command::Admin { action: AdminAction::Disable { email } }) => {
                authara::cli::admin::set_disabled(config, &email, true).await.map(|()| true)
            }
            Some(Command::Admin { action: AdminAction::Enable { email } }) => {
                authara::cli::admin::set_disabled(config, &email, false).await.map(|()| true)
            }
            Some(Command::Admin { action: AdminAction::RevokeSessions { email } }) => {
                authara::cli::admin::revoke_sessions(config, &email).await.map(|()| true)
            }
            Some(Command::Webhooks { action: WebhooksAction::List { limit } }) => {
                authara::cli::webhooks::list(config, limit).await.map(|()| true)
            }
            Some(Command::Webhooks { action: WebhooksAction::Redeliver { id } }) => {
                authara::cli::webhooks::redeliver(config, id).await.map(|()| true)
            }
            Some(Command::Import { undo: Some(batch), .. }) => authara::cli::import::undo(config, &batch).await,
            Some(Command::Import { from: Some(file), dry_run, undo: None }) => {
                authara::cli::import::run(config, &file, dry_run).await
            }
            Some(Command::Import { from: None, undo: None, .. }) => Ok(false),
            Some(Command::Cleanup) => authara::cli::cleanup::run(config).await.map(|()| true),
            Some(Command::Healthcheck) => Ok(authara::cli::healthcheck::run(&config).await),
            Some(Command::Keys { .. }) => Ok(true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
