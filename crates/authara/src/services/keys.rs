//! Signing keys: configured (`AUTHARA_JWT_KEYS`) or, in dev, generated once into the data dir.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore as _;

use crate::config::{Config, JwtAlgorithm, JwtKeySource, SecretBytes};

/// The HMAC keys that verify access tokens and the one that signs new ones, plus the Ed25519
/// key when `AUTHARA_JWT_ALGORITHM=EdDSA`.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub active_kid: String,
    pub keys: Vec<(String, SecretBytes)>,
    pub ed25519: Option<Ed25519Key>,
    /// Files this start generated (dev only).
    pub generated: Vec<PathBuf>,
}

/// An Ed25519 signing key (PKCS#8 DER) with its public half and kid.
#[derive(Clone)]
pub struct Ed25519Key {
    pub kid: String,
    pub pkcs8: SecretBytes,
    pub public: Vec<u8>,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// Parses PKCS#8 DER; the kid is derived from the public key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        use ring::signature::KeyPair as _;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        let public = pair.public_key().as_ref().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let kid = format!("ed-{}", digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect::<String>());
        Ok(Self { kid, pkcs8: SecretBytes::new(der.to_vec()), public })
    }

    /// Parses a `-----BEGIN PRIVATE KEY-----` PEM block.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der =
            base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| "PEM body is not base64".to_owned())?;
        Self::from_pkcs8(&der)
    }

    pub fn generate() -> Result<(Self, String), String> {
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|e| e.to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        Ok((Self::from_pkcs8(doc.as_ref())?, pem))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use dev key file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("signing key: {why}")]
    Config { why: String },
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

/// Loads the configured keys, or reads (creating on first start) the dev key files.
pub fn load(config: &Config) -> Result<SigningKeys, KeyError> {
    let mut keys = match &config.jwt.keys {
        JwtKeySource::Configured { keys, active_kid } => {
            SigningKeys { active_kid: active_kid.clone(), keys: keys.clone(), ed25519: None, generated: Vec::new() }
        }
        JwtKeySource::DevGenerated => load_or_create_dev(&config.data_dir)?,
        JwtKeySource::None => {
            SigningKeys { active_kid: String::new(), keys: Vec::new(), ed25519: None, generated: Vec::new() }
        }
    };
    if config.jwt.algorithm == JwtAlgorithm::EdDsa {
        let key = match &config.jwt.ed25519_pem {
            Some(pem) => Ed25519Key::from_pem(pem.expose_secret()).map_err(|why| KeyError::Config { why })?,
            None => {
                let path = config.data_dir.join("dev-ed25519.pem");
                let (key, created) = create_once(&path, || {
                    Ed25519Key::generate().map(|(_, pem)| pem).map_err(|why| KeyError::Config { why })
                })?;
                if created {
                    keys.generated.push(path.clone());
                }
                Ed25519Key::from_pem(&key).map_err(|why| KeyError::Malformed { path, why })?
            }
        };
        keys.active_kid = key.kid.clone();
        keys.ed25519 = Some(key);
        if !config.jwt.accept_hs256 {
            // why: HS256 acceptance under EdDSA is an explicit choice; otherwise the HMAC secrets
            // verify nothing and can be removed.
            keys.keys.clear();
        }
    }
    Ok(keys)
}

/// Writes `make()` to `path` unless the file exists (0600, never overwritten, even with two
/// starts racing), then returns the file's content and whether this call created it.
fn create_once(path: &Path, make: impl FnOnce() -> Result<String, KeyError>) -> Result<(String, bool), KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        crate::store::private_dir(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let created = match opts.open(path) {
        Ok(mut f) => {
            f.write_all(make()?.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io(e)),
    };
    Ok((std::fs::read_to_string(path).map_err(io)?, created))
}

fn load_or_create_dev(data_dir: &Path) -> Result<SigningKeys, KeyError> {
    let path = dev_key_path(data_dir);
    let (raw, created) = create_once(&path, || {
        let (kid, secret) = generate_hs256();
        Ok(format!("{kid}:{secret}\n"))
    })?;
    let generated = if created { vec![path.clone()] } else { Vec::new() };
    let line = raw.lines().next().unwrap_or_default().trim();
    let malformed = |why: &str| KeyError::Malformed { path: path.clone(), why: why.to_owned() };
    let (kid, b64) = line.split_once(':').ok_or_else(|| malformed("expected kid:base64secret"))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| malformed("secret is not base64"))?;
    if bytes.len() < 32 {
        return Err(malformed("secret shorter than 32 bytes"));
    }
    Ok(SigningKeys {
        active_kid: kid.to_owned(),
        keys: vec![(kid.to_owned(), SecretBytes::new(bytes))],
        ed25519: None,
        generated,
    })
}
