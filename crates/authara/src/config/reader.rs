//! Reading variables by their declaration: the name and default come from the [`Var`], every
//! problem is collected instead of stopping at the first.

use std::collections::HashMap;
use std::time::Duration;

use super::{Limit, SecretString, Var, duration};

/// The variables being read and the problems found so far.
pub(super) struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    /// Every problem found so far, in reading order.
    pub(super) errors: Vec<String>,
}

impl<'a> Reader<'a> {
    /// A reader of `vars` with no problem found yet.
    pub(super) fn new(vars: &'a HashMap<String, String>) -> Self {
        Self { vars, errors: Vec::new() }
    }

    /// Records a problem.
    pub(super) fn error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// Records `"NAME: message"`.
    pub(super) fn invalid(&mut self, var: &Var, message: impl std::fmt::Display) {
        self.error(format!("{}: {message}", var.name));
    }

    /// Records `"NAME: message"` unless `ok`.
    pub(super) fn ensure(&mut self, ok: bool, var: &Var, message: impl std::fmt::Display) {
        if !ok {
            self.invalid(var, message);
        }
    }

    fn trimmed(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// The trimmed value, `None` when unset or blank (the default is not applied).
    pub(super) fn raw(&self, var: &Var) -> Option<String> {
        self.trimmed(var.name)
    }

    /// A secret: the value as given (untrimmed), else the content of the file named by
    /// `NAME_FILE` without its trailing newline. `None` when neither is set.
    pub(super) fn secret(&mut self, var: &Var) -> Option<SecretString> {
        self.secret_named(var.name)
    }

    /// The trimmed value of a variable whose name is built at run time (a pattern's instance,
    /// such as `AUTHARA_OAUTH_<NAME>_ISSUER`); `None` when unset or blank.
    pub(super) fn raw_named(&self, name: &str) -> Option<String> {
        self.trimmed(name)
    }

    /// [`Self::secret`] for a variable whose name is built at run time.
    pub(super) fn secret_named(&mut self, name: &str) -> Option<SecretString> {
        if let Some(v) = self.vars.get(name).filter(|v| !v.is_empty()) {
            return Some(SecretString::new(v.clone()));
        }
        let file_var = format!("{name}_FILE");
        let path = self.trimmed(&file_var)?;
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(SecretString::new(s.trim_end_matches(['\r', '\n']).to_owned())),
            Err(e) => {
                self.error(format!("{file_var}: cannot read {path}: {e}"));
                None
            }
        }
    }

    /// The value, or the declared default.
    pub(super) fn string(&self, var: &Var) -> String {
        self.raw(var).unwrap_or_else(|| var.default.to_owned())
    }

    /// The value; a problem (`"NAME is required{why}"`) when unset.
    pub(super) fn required(&mut self, var: &Var, why: &str) -> String {
        match self.raw(var) {
            Some(v) => v,
            None => {
                self.error(format!("{} is required{why}", var.name));
                String::new()
            }
        }
    }

    fn int(&mut self, var: &Var) -> Option<i64> {
        let text = self.string(var);
        match text.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.invalid(var, format!("expected an integer, got {text:?}"));
                None
            }
        }
    }

    /// The declared default as an integer, what a rejected value falls back to.
    fn int_default<T: TryFrom<i64> + Default>(var: &Var) -> T {
        var.default.parse::<i64>().ok().and_then(|d| T::try_from(d).ok()).unwrap_or_default()
    }

    /// An integer > 0 that fits in u32.
    pub(super) fn positive(&mut self, var: &Var) -> u32 {
        let Some(v) = self.int(var) else { return Self::int_default(var) };
        match u32::try_from(v) {
            Ok(x) if x > 0 => x,
            _ => {
                self.invalid(var, format!("must be greater than 0, got {v}"));
                Self::int_default(var)
            }
        }
    }

    /// An integer ≥ 0 that fits in u32.
    pub(super) fn non_negative(&mut self, var: &Var) -> u32 {
        let Some(v) = self.int(var) else { return Self::int_default(var) };
        match u32::try_from(v) {
            Ok(x) => x,
            Err(_) => {
                self.invalid(var, format!("must be 0 or more, got {v}"));
                Self::int_default(var)
            }
        }
    }

    /// A TCP port, 1 to 65535.
    pub(super) fn port(&mut self, var: &Var) -> u16 {
        let Some(v) = self.int(var) else { return Self::int_default(var) };
        match u16::try_from(v) {
            Ok(p) if p > 0 => p,
            _ => {
                self.invalid(var, format!("must be a port between 1 and 65535, got {v}"));
                Self::int_default(var)
            }
        }
    }

    /// Go's `strconv.ParseBool` forms.
    pub(super) fn bool(&mut self, var: &Var) -> bool {
        let text = self.string(var);
        parse_bool(&text).unwrap_or_else(|| {
            self.invalid(var, format!("expected true or false, got {text:?}"));
            parse_bool(var.default).unwrap_or_default()
        })
    }

    fn signed_duration(&mut self, var: &Var) -> Option<duration::SignedDuration> {
        match duration::parse(&self.string(var)) {
            Ok(d) => Some(d),
            Err(e) => {
                self.invalid(var, e);
                None
            }
        }
    }

    /// A duration > 0.
    pub(super) fn duration(&mut self, var: &Var) -> Duration {
        let fallback = duration::parse(var.default).map(|d| d.magnitude).unwrap_or_default();
        match self.signed_duration(var) {
            Some(d) if !d.negative && !d.magnitude.is_zero() => d.magnitude,
            Some(_) => {
                self.invalid(var, "must be a duration greater than 0");
                fallback
            }
            None => fallback,
        }
    }

    /// A duration ≥ 0.
    pub(super) fn duration_non_negative(&mut self, var: &Var) -> Duration {
        match self.signed_duration(var) {
            Some(d) if !d.negative => d.magnitude,
            Some(_) => {
                self.invalid(var, "must not be negative");
                Duration::ZERO
            }
            None => Duration::ZERO,
        }
    }

    /// A rate limit: a count > 0 per window > 0.
    pub(super) fn limit(&mut self, limit: &Var, window: &Var) -> Limit {
        Limit { limit: self.positive(limit), window: self.duration(window) }
    }

    /// Comma-separated values from `allowed`, lowercased, each at most once.
    pub(super) fn csv(&mut self, var: &Var, allowed: &[&str]) -> Vec<String> {
        let Some(v) = self.raw(var) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for item in v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()) {
            if !allowed.contains(&item.as_str()) {
                self.invalid(var, format!("unknown value {item:?} (allowed: {})", allowed.join(", ")));
            } else if out.contains(&item) {
                self.invalid(var, format!("{item:?} is listed twice"));
            } else {
                out.push(item);
            }
        }
        out
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `http(s)://host...`: an absolute http or https URL with a host.
pub(super) fn validate_http_url(u: &str) -> Result<(), String> {
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err(format!("{u:?} is not an absolute URL"));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!("{u:?} must use http or https"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{u:?} has no host"));
    }
    Ok(())
}
