//! Signing keys: configured (`AUTHARA_JWT_KEYS`) or, in dev, generated once into the data dir.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore as _;

use crate::config::{Config, JwtKeySource, SecretBytes};

/// The HMAC keys that verify access tokens and the one that signs new ones.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub active_kid: String,
    pub keys: Vec<(String, SecretBytes)>,
    /// Set when this start generated a new dev key file.
    pub generated: Option<PathBuf>,
}

impl SigningKeys {
    pub fn active(&self) -> Option<&SecretBytes> {
        self.keys.iter().find(|(k, _)| *k == self.active_kid).map(|(_, v)| v)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use dev key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("dev key file {path} is malformed: {why}")]
    Malformed { path: PathBuf, why: String },
}

/// File holding the generated dev key, in `AUTHARA_JWT_KEYS` format.
pub fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-jwt-keys")
}

/// A new `kid:base64secret` pair (32 random bytes, standard padded base64).
pub fn generate_hs256() -> (String, String) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let mut id = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let kid = format!("k{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>());
    (kid, base64::engine::general_purpose::STANDARD.encode(secret))
}

/// Loads the configured keys, or reads (creating on first start) the dev key file.
pub fn load(config: &Config) -> Result<SigningKeys, KeyError> {
    match &config.jwt.keys {
        JwtKeySource::Configured { keys, active_kid } => {
            Ok(SigningKeys { active_kid: active_kid.clone(), keys: keys.clone(), generated: None })
        }
        JwtKeySource::DevGenerated => load_or_create_dev(&config.data_dir),
    }
}

fn load_or_create_dev(data_dir: &Path) -> Result<SigningKeys, KeyError> {
    let path = dev_key_path(data_dir);
    let io = |source| KeyError::Io { path: path.clone(), source };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let mut generated = None;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    // create_new never overwrites an existing key, even with two starts racing.
    match opts.open(&path) {
        Ok(mut f) => {
            let (kid, secret) = generate_hs256();
            f.write_all(format!("{kid}:{secret}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            generated = Some(path.clone());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let raw = std::fs::read_to_string(&path).map_err(io)?;
    let line = raw.lines().next().unwrap_or_default().trim();
    let malformed = |why: &str| KeyError::Malformed { path: path.clone(), why: why.to_owned() };
    let (kid, b64) = line.split_once(':').ok_or_else(|| malformed("expected kid:base64secret"))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| malformed("secret is not base64"))?;
    if bytes.len() < 32 {
        return Err(malformed("secret shorter than 32 bytes"));
    }
    Ok(SigningKeys { active_kid: kid.to_owned(), keys: vec![(kid.to_owned(), SecretBytes::new(bytes))], generated })
}
