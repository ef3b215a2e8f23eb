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
