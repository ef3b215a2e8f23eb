//! The server itself: environment, logging, listen address, public URL, HTTP limits and the
//! hosted pages' branding.

use std::net::{IpAddr, SocketAddr};
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
    /// Address of the Prometheus metrics listener (`GET /metrics`, e.g. `127.0.0.1:9464`); empty:
    /// off. Never served on the public port.
    METRICS_BIND = extra("AUTHARA_METRICS_BIND", "");
    /// SQLite database (`authara.db`) and, in dev, the generated signing keys (`dev-jwt-keys`, `dev-ed25519.pem`).
    DATA_DIR = extra("AUTHARA_DATA_DIR", "./data");
    /// Public origin, `scheme://host[:port]` without a path or `/auth`; required in prod, in dev
    /// `http://localhost:<port of AUTHARA_BIND>`. Also the passkeys' origin; its host is their RP
    /// ID (a domain name: with an IP address passkeys are off).
    PUBLIC_URL = contract("PUBLIC_URL", "");
    /// Safe relative path where flows land when no `return_to` is given.
    DEFAULT_RETURN_TO = contract("AUTHARA_DEFAULT_RETURN_TO", "/");
    /// Believe `X-Forwarded-For` / `X-Real-IP` (only behind a proxy that strips client-supplied ones).
    TRUST_PROXY_HEADERS = contract("AUTHARA_TRUST_PROXY_HEADERS", "false");
    /// With proxy headers trusted: the proxies (comma-separated CIDRs, e.g. `10.0.0.0/8,::1/128`)
    /// whose `X-Forwarded-For` hops are skipped to find the client, the rightmost hop that is
    /// not one of them. Empty: only the nearest hop (the peer) is trusted.
    TRUSTED_PROXIES = extra("AUTHARA_TRUSTED_PROXIES", "");
    /// How long a client may take to send a request's headers (also the idle time allowed
    /// before the next request on a kept-alive connection).
    HEADER_READ_TIMEOUT = extra("AUTHARA_HEADER_READ_TIMEOUT", "10s");
    /// How long a new connection may take to send its first request's headers (at most
    /// `AUTHARA_HEADER_READ_TIMEOUT`); a connection that sends nothing is closed past it.
    FIRST_REQUEST_TIMEOUT = extra("AUTHARA_FIRST_REQUEST_TIMEOUT", "5s");
    /// Open connections at most; further ones wait to be accepted. `0`: what the open-file limit
    /// allows (the soft limit is raised to the hard one at start) less 256 for the database,
    /// cache and outgoing connections; a higher value is lowered to that.
    MAX_CONNECTIONS = extra("AUTHARA_MAX_CONNECTIONS", "0");
    /// Open connections from one client address (IPv6: one /64) at most; more are closed at once.
    /// Behind a reverse proxy every connection comes from the proxy: set it above the proxy's
    /// own upstream connection limit (docs/deploy.md).
    MAX_CONNECTIONS_PER_IP = extra("AUTHARA_MAX_CONNECTIONS_PER_IP", "64");
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
    /// `AUTHARA_METRICS_BIND`: where the metrics are served, if anywhere.
    pub metrics_bind: Option<SocketAddr>,
    /// `AUTHARA_REQUEST_TIMEOUT`: per-request handler timeout (504 past it).
    pub request_timeout: Duration,
    /// `AUTHARA_SHUTDOWN_TIMEOUT`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `AUTHARA_MAX_BODY_BYTES`: request body limit.
    pub max_body_bytes: usize,
    /// `AUTHARA_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpNet>,
    /// `AUTHARA_HEADER_READ_TIMEOUT`.
    pub header_read_timeout: Duration,
    /// `AUTHARA_MAX_CONNECTIONS` (0: derived from the open-file limit).
    pub max_connections: usize,
    /// `AUTHARA_MAX_CONNECTIONS_PER_IP`.
    pub max_connections_per_ip: usize,
    /// `AUTHARA_FIRST_REQUEST_TIMEOUT`.
    pub first_request_timeout: Duration,
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parses `addr[/prefix]`.
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => (u128::from(u32::from(v4)), 32),
                    None => (u128::from(v6), 128),
                },
            }
        };
        let ((net, width), (ip, ip_width)) = (bits(self.addr), bits(ip));
        if width != ip_width {
            return false;
        }
        let shift = u32::from(width - self.prefix.min(width));
        let mask = if shift >= 128 { 0 } else { (!0u128 >> shift) << shift };
        let mask = if width == 32 { mask & 0xffff_ffff } else { mask };
        net & mask == ip & mask
    }
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
        metrics_bind: metrics_bind(r, bind),
        request_timeout: r.duration(&REQUEST_TIMEOUT),
        shutdown_timeout: r.duration(&SHUTDOWN_TIMEOUT),
        trusted_proxies: trusted_proxies(r),
        header_read_timeout: r.duration(&HEADER_READ_TIMEOUT),
        max_connections: r.non_negative(&MAX_CONNECTIONS) as usize,
        max_connections_per_ip: r.positive(&MAX_CONNECTIONS_PER_IP) as usize,
        first_request_timeout: r.duration(&FIRST_REQUEST_TIMEOUT),
        max_body_bytes: r.positive(&MAX_BODY_BYTES) as usize,
    };
    let ui = build_ui(r);
    Server { app_env, log_level, bind, data_dir, public_url, default_return_to, trust_proxy_headers, http, ui }
}

fn metrics_bind(r: &mut Reader<'_>, public: SocketAddr) -> Option<SocketAddr> {
    let raw = r.raw(&METRICS_BIND).filter(|s| !s.trim().is_empty())?;
    match raw.trim().parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 && a.port() == public.port() => {
            r.invalid(&METRICS_BIND, format!("must not be the public listener's port ({})", public.port()));
            None
        }
        Ok(a) => Some(a),
        Err(_) => {
            r.invalid(&METRICS_BIND, format!("expected an address like 127.0.0.1:9464, got {raw:?}"));
            None
        }
    }
}

fn trusted_proxies(r: &mut Reader<'_>) -> Vec<IpNet> {
    let raw = r.string(&TRUSTED_PROXIES);
    let mut nets = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match IpNet::parse(item) {
            Some(n) => nets.push(n),
            None => r.invalid(&TRUSTED_PROXIES, format!("{item:?} is not an IP address or CIDR")),
        }
    }
    nets
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

#[cfg(test)]
mod tests {
    use super::IpNet;

    #[test]
    fn networks_contain_their_addresses() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()), "IPv4-mapped addresses count");
        let one = IpNet::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none() && IpNet::parse("nope").is_none());
    }
}
