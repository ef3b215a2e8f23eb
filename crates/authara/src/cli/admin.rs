//! `authara admin create` / `authara admin grant`: bootstrap administrators from the shell.

use std::io::{IsTerminal as _, Read as _};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use rand::RngCore as _;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::services::{Services, keys};
use crate::store::Store;

async fn services(config: Config) -> anyhow::Result<Services> {
    let config = Arc::new(config);
    let keys = keys::load(&config).context("loading signing keys")?;
    let store = Store::connect(&config).await.context("opening the database")?;
    let status = store.migration_status().await.context("reading the schema version")?;
    if status.current != status.required {
        bail!(
            "the database schema is at version {}, this binary needs {}: run `authara migrate`",
            status.current,
            status.required
        );
    }
    Services::new(config, store, Arc::new(SystemClock), &keys).map_err(anyhow::Error::msg)
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
    let services = services(config).await?;
    let user = services.create_admin(email, &password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created admin {} ({})", user.email, user.id);
    if generated {
        println!("password: {password}");
    }
    services.store.close().await;
    Ok(())
}

pub async fn grant(config: Config, email: &str) -> anyhow::Result<()> {
    let services = services(config).await?;
    match services.grant_admin(email).await? {
        Some(user) => println!("granted admin to {} ({})", user.email, user.id),
        None => bail!("no user with email {email}"),
    }
    services.store.close().await;
    Ok(())
}
