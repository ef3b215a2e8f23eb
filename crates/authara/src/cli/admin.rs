//! `authara admin create` / `authara admin grant`: bootstrap administrators from the shell.

use std::io::{IsTerminal as _, Read as _};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use rand::RngCore as _;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::{EmailAddress, NewPassword};

async fn open(config: Config) -> anyhow::Result<App> {
    App::open(Arc::new(config), Arc::new(SystemClock), false).await
}

/// Creates an admin. The password comes from stdin when it is not a terminal; otherwise a
/// strong one is generated and printed once.
pub async fn create(config: Config, email: &str) -> anyhow::Result<()> {
    let (password, generated) = if std::io::stdin().is_terminal() {
        let mut bytes = [0u8; 18];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        (base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes), true)
    } else {
        let mut s = String::new();
        std::io::stdin().take(4096).read_to_string(&mut s).context("reading the password from stdin")?;
        (s.trim_end_matches(['\r', '\n']).to_owned(), false)
    };
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let password = NewPassword::parse(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let app = open(config).await?;
    let user = app.services.accounts().create_admin(&email, &password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created admin {} ({})", user.email, user.id);
    if generated {
        println!("password: {}", password.expose());
    }
    app.close().await;
    Ok(())
}

pub async fn grant(config: Config, email: &str) -> anyhow::Result<()> {
    let address = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let app = open(config).await?;
    let result = app.services.accounts().grant_admin(&address).await;
    app.close().await;
    match result? {
        Some(user) => println!("granted admin to {} ({})", user.email, user.id),
        None => bail!("no user with email {email}"),
    }
    Ok(())
}

/// The user with `email`, for the commands below.
async fn target(app: &App, email: &str) -> anyhow::Result<crate::services::UserRow> {
    let address = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let admin = app.services.admin();
    admin.user_by_email(&admin.cli(), &address).await?.ok_or_else(|| anyhow::anyhow!("no user with email {email}"))
}

/// `authara admin list [--query q]`.
pub async fn list(config: Config, query: &str) -> anyhow::Result<()> {
    let app = open(config).await?;
    let admin = app.services.admin();
    let users = admin.search(&admin.cli(), query, 1).await;
    app.close().await;
    for u in users? {
        let state = if u.disabled_at_ms.is_some() { "disabled" } else { "active" };
        println!("{}  {}  {}  {}", u.id, u.email, u.username, state);
    }
    Ok(())
}

/// `authara admin disable|enable --email`: audited with the command line as actor.
pub async fn set_disabled(config: Config, email: &str, disabled: bool) -> anyhow::Result<()> {
    let app = open(config).await?;
    let result = async {
        let user = target(&app, email).await?;
        let admin = app.services.admin();
        admin.set_disabled(&admin.cli(), user.id, disabled, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(user)
    }
    .await;
    app.close().await;
    let user = result?;
    println!("{} {} ({})", if disabled { "disabled" } else { "enabled" }, user.email, user.id);
    Ok(())
}

/// `authara admin revoke-sessions --email`.
pub async fn revoke_sessions(config: Config, email: &str) -> anyhow::Result<()> {
    let app = open(config).await?;
    let result = async {
        let user = target(&app, email).await?;
        let admin = app.services.admin();
        let n = admin.revoke_all(&admin.cli(), user.id, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok((user, n))
    }
    .await;
    app.close().await;
    let (user, n) = result?;
    println!("revoked {n} session(s) of {}", user.email);
    Ok(())
}
