//! The hosted pages' Content-Security-Policy: the default one of the edge middleware, with the
//! origins of the providers' authorization pages in `form-action` (linking from the account page
//! is a form post answered by a redirect there, which `form-action 'self'` would stop), and
//! Google Identity Services' origins only on the pages that show Google's own button
//! (behavior.md §5.1). The hosts of `AUTHARA_ALLOWED_RETURN_HOSTS` are in `form-action` too: a
//! sign-in form's redirect goes back to the app that sent the browser (docs/forward-auth.md). Every other page, the admin console included, runs no third-party script.

use axum::http::HeaderValue;

use crate::config::{Config, ProviderKind};

/// The two policies a page may carry, built once at start.
#[derive(Debug, Clone)]
pub struct PageCsp {
    /// Every page.
    pub default: HeaderValue,
    /// Pages that show Google's button (when Google is configured without a code flow).
    pub with_google: HeaderValue,
}

impl PageCsp {
    pub fn new(config: &Config) -> Self {
        PageCsp { default: policy(config, false), with_google: policy(config, true) }
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + host_len])
}

fn policy(config: &Config, google_button: bool) -> HeaderValue {
    let mut form_action = vec!["'self'".to_owned()];
    for p in config.oauth.providers.iter().filter(|p| p.code_flow()) {
        if let Some(o) = origin(&p.issuer)
            && !form_action.iter().any(|x| x == o)
        {
            form_action.push(o.to_owned());
        }
    }
    // Apps on other hosts (forward-auth): a sign-in form goes back to them.
    form_action.extend(config.sites.return_hosts.csp_sources());
    let google = google_button && config.oauth.providers.iter().any(|p| p.kind == ProviderKind::Google);
    let (gsi, img, frame) = if google {
        (
            " https://accounts.google.com",
            " https://www.gstatic.com https://ssl.gstatic.com",
            "https://accounts.google.com",
        )
    } else {
        ("", "", "'none'")
    };
    let style_gsi = if google { " https://accounts.google.com/gsi/style" } else { "" };
    let csp = format!(
        "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action {}; \
         font-src 'self'; img-src 'self' data:{img}; connect-src 'self'{gsi}; frame-src {frame}; \
         script-src 'self'{gsi}; style-src 'self'{style_gsi}",
        form_action.join(" ")
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static(crate::http::middleware::edge::CSP))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        crate::config::load_from_map(&vars).unwrap().0
    }

    #[test]
    fn without_providers_the_page_policy_is_the_default_one() {
        let csp = PageCsp::new(&config(&[]));
        assert_eq!(csp.default, crate::http::middleware::edge::CSP);
        assert_eq!(csp.with_google, crate::http::middleware::edge::CSP);
    }

    #[test]
    fn providers_widen_form_action_and_only_google_pages_allow_identity_services() {
        let csp = PageCsp::new(&config(&[
            ("AUTHARA_OAUTH_PROVIDERS", "google,gitlab"),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "g"),
            ("AUTHARA_OAUTH_GITLAB_ISSUER", "https://gitlab.example.com:8443/realm/x"),
            ("AUTHARA_OAUTH_GITLAB_CLIENT_ID", "x"),
        ]));
        let with = csp.with_google.to_str().unwrap();
        assert!(with.contains("form-action 'self' https://gitlab.example.com:8443;"), "{with}");
        assert!(with.contains("script-src 'self' https://accounts.google.com;"), "{with}");
        assert!(with.contains("frame-src https://accounts.google.com;"), "{with}");
        assert!(!with.contains("unsafe"), "{with}");
        let default = csp.default.to_str().unwrap();
        assert!(default.contains("form-action 'self' https://gitlab.example.com:8443;"), "{default}");
        assert!(!default.contains("google"), "no Google origin where no Google button is: {default}");
    }
}
