//! The server itself: environment, logging, listen address, public URL, HTTP limits and the
//! hosted pages' branding.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reader::{Reader, validate_http_url};
use super::{declare_vars, is_safe_return_path};

declare_vars! {
    /// `dev` or `prod`; prod requires the JWT keys, `PUBLIC_URL` and the issuer, and sets `Secure` cookies.
    APP_ENV = contract("APP_ENV", "dev");
    /// `debug`, `info`, `warn` or `error`; the default is `debug` in dev and `info` in prod.
    LOG_LEVEL = contract("LOG_LEVEL", "");
    /// Listen address (the reference hard-codes `:8080`).
    BIND = extra("AUTHARA_BIND", "0.0.0.0:8080");
    /// SQLite database (`authara.db`) and, in dev, the generated signing keys (`dev-jwt-keys`, `dev-ed25519.pem`).
    DATA_DIR = extra("AUTHARA_DATA_DIR", "./data");
    /// Public origin, `scheme://host[:port]` without a path or `/auth`; required in prod, in dev
    /// `http://localhost:<port of AUTHARA_BIND>`.
    PUBLIC_URL = contract("PUBLIC_URL", "");
    /// Safe relative path where flows land when no `return_to` is given.
    DEFAULT_RETURN_TO = contract("AUTHARA_DEFAULT_RETURN_TO", "/");
    /// Believe `X-Forwarded-For` / `X-Real-IP` (only behind a proxy that strips client-supplied ones).
    TRUST_PROXY_HEADERS = contract("AUTHARA_TRUST_PROXY_HEADERS", "false");
    /// Per-request handler timeout (504 past it).
    REQUEST_TIMEOUT = extra("AUTHARA_REQUEST_TIMEOUT", "30s");
    /// How long in-flight requests may finish after SIGTERM/SIGINT.
    SHUTDOWN_TIMEOUT = extra("AUTHARA_SHUTDOWN_TIMEOUT", "10s");
    /// Request body limit in bytes.
    MAX_BODY_BYTES = extra("AUTHARA_MAX_BODY_BYTES", "65536");
    /// Product name in the hosted pages' titles and header (at most 60 printable characters).
    UI_PRODUCT_NAME = extra("AUTHARA_UI_PRODUCT_NAME", "authara");
    /// Accent color (`#rrggbb`) of buttons, links and focus rings; light and dark themes follow the browser.
    UI_PRIMARY_COLOR = extra("AUTHARA_UI_PRIMARY_COLOR", "#4f46e5");
}

/// `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Development: optional keys and public URL, plain cookies.
    Dev,
    /// Production: strict requirements, `Secure` cookies.
    Prod,
}

/// HTTP server limits.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `AUTHARA_REQUEST_TIMEOUT`: per-request handler timeout (504 past it).
    pub request_timeout: Duration,
    /// `AUTHARA_SHUTDOWN_TIMEOUT`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `AUTHARA_MAX_BODY_BYTES`: request body limit.
    pub max_body_bytes: usize,
}

/// Branding of the hosted pages.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// `AUTHARA_UI_PRODUCT_NAME`, shown in titles and headers.
    pub product_name: String,
    /// `AUTHARA_UI_PRIMARY_COLOR`: `#rrggbb` for buttons and links.
    pub primary_color: String,
}

/// This area's part of [`super::Config`] (its fields sit at the top level of `Config`).
pub(super) struct Server {
    pub(super) app_env: AppEnv,
    pub(super) log_level: String,
    pub(super) bind: SocketAddr,
    pub(super) data_dir: PathBuf,
    pub(super) public_url: String,
    pub(super) default_return_to: String,
    pub(super) trust_proxy_headers: bool,
    pub(super) http: HttpConfig,
    pub(super) ui: UiConfig,
}

impl Server {
    /// `APP_ENV=prod`.
    pub(super) fn prod(&self) -> bool {
        self.app_env == AppEnv::Prod
    }
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>) -> Server {
    let app_env = match r.string(&APP_ENV).to_ascii_lowercase().as_str() {
        "dev" => AppEnv::Dev,
        "prod" => AppEnv::Prod,
        other => {
            r.invalid(&APP_ENV, format!("expected dev or prod, got {other:?}"));
            AppEnv::Dev
        }
    };
    let prod = app_env == AppEnv::Prod;
    let log_level = r.raw(&LOG_LEVEL).unwrap_or_else(|| if prod { "info" } else { "debug" }.to_owned());
    let log_level = log_level.to_ascii_lowercase();
    r.ensure(
        matches!(log_level.as_str(), "debug" | "info" | "warn" | "error"),
        &LOG_LEVEL,
        format!("expected debug, info, warn or error, got {log_level:?}"),
    );

    let bind_raw = r.string(&BIND);
    let bind = match bind_raw.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            r.invalid(&BIND, format!("expected an address like {}, got {bind_raw:?}", BIND.default));
            BIND.default.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080)))
        }
    };
    let data_dir = PathBuf::from(r.string(&DATA_DIR));

    let public_url = match r.raw(&PUBLIC_URL) {
        Some(u) => {
            if let Err(e) = validate_public_url(&u) {
                r.invalid(&PUBLIC_URL, e);
            }
            u
        }
        None if prod => {
            r.error(format!("{} is required when {}=prod", PUBLIC_URL.name, APP_ENV.name));
            String::new()
        }
        None => format!("http://localhost:{}", bind.port()),
    };
    let default_return_to = r.string(&DEFAULT_RETURN_TO);
    r.ensure(
        is_safe_return_path(&default_return_to),
        &DEFAULT_RETURN_TO,
        format!("{default_return_to:?} is not a safe relative path (must start with a single /)"),
    );
    let trust_proxy_headers = r.bool(&TRUST_PROXY_HEADERS);

    let http = HttpConfig {
        request_timeout: r.duration(&REQUEST_TIMEOUT),
        shutdown_timeout: r.duration(&SHUTDOWN_TIMEOUT),
        max_body_bytes: r.positive(&MAX_BODY_BYTES) as usize,
    };
    let ui = build_ui(r);
    Server { app_env, log_level, bind, data_dir, public_url, default_return_to, trust_proxy_headers, http, ui }
}

fn build_ui(r: &mut Reader<'_>) -> UiConfig {
    let ui = UiConfig {
        product_name: r.string(&UI_PRODUCT_NAME),
        primary_color: r.string(&UI_PRIMARY_COLOR).to_ascii_lowercase(),
    };
    r.ensure(
        ui.primary_color.len() == 7
            && ui.primary_color.starts_with('#')
            && ui.primary_color[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        &UI_PRIMARY_COLOR,
        format!("expected #rrggbb, got {:?}", ui.primary_color),
    );
    r.ensure(
        ui.product_name.chars().count() <= 60 && !ui.product_name.chars().any(char::is_control),
        &UI_PRODUCT_NAME,
        "at most 60 printable characters",
    );
    ui
}

/// `scheme://host[:port]` with http(s), no path, query or trailing slash (behavior.md §0.4).
fn validate_public_url(u: &str) -> Result<(), String> {
    validate_http_url(u)?;
    let after_scheme = u.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if after_scheme.contains(['/', '?', '#']) {
        return Err(format!("{u:?} must be scheme://host[:port] without a path or trailing slash (and without /auth)"));
    }
    Ok(())
}
