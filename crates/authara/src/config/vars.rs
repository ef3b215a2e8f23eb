//! The one declaration of every configuration variable ([`Var`]) and the list of areas.

use super::{
    access, cache, challenge, database, email, jwt, limits, oauth, organizations, password, server, session, webhooks,
};

/// One configuration variable, declared once in its area module: the reader takes its name and
/// default from here, the unknown-variable check lists it from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// The environment variable's name.
    pub name: &'static str,
    /// The value used when the variable is unset or blank; `""` when there is none.
    pub default: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
    /// `true` when the variable is in `contract/config.yaml`, `false` for this server's extras.
    pub contract: bool,
}

/// Declares an area's variables once. Each entry is a doc comment (also [`Var::doc`]), `IDENT = contract("NAME", "default");` or `extra(...)`. It generates a
/// `pub const IDENT: Var` per entry and `pub const VARS: &[&Var]` with all of them, in order.
macro_rules! declare_vars {
    ($($(#[doc = $doc:literal])+ $ident:ident = $origin:ident($name:literal, $default:literal);)+) => {
        $(
            $(#[doc = $doc])+
            pub const $ident: $crate::config::Var = $crate::config::Var {
                name: $name,
                default: $default,
                doc: concat!($($doc),+).trim_ascii(),
                contract: declare_vars!(@origin $origin),
            };
        )+

        /// Every variable of this area, in documentation order.
        pub const VARS: &[&$crate::config::Var] = &[$(&$ident),+];
    };
    (@origin contract) => { true };
    (@origin extra) => { false };
}
pub(crate) use declare_vars;

/// A group of variables: one module under `config/`.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    /// The area's title.
    pub title: &'static str,
    /// The area's variables, in documentation order.
    pub vars: &'static [&'static Var],
}

/// Every area, in the order the configuration is read.
pub const AREAS: &[Area] = &[
    Area { title: "Server", vars: server::VARS },
    Area { title: "Database", vars: database::VARS },
    Area { title: "Cache", vars: cache::VARS },
    Area { title: "Access tokens (JWT)", vars: jwt::VARS },
    Area { title: "Sessions", vars: session::VARS },
    Area { title: "Organizations", vars: organizations::VARS },
    Area { title: "Access", vars: access::VARS },
    Area { title: "OAuth", vars: oauth::VARS },
    Area { title: "Rate limits", vars: limits::VARS },
    Area { title: "Webhooks", vars: webhooks::VARS },
    Area { title: "Email challenges", vars: challenge::VARS },
    Area { title: "Email", vars: email::VARS },
    Area { title: "Password hashing", vars: password::VARS },
];

/// Every variable this server reads: the union of all areas.
pub fn all_vars() -> impl Iterator<Item = &'static Var> {
    AREAS.iter().flat_map(|area| area.vars.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_variables_are_exactly_those_of_contract_config_yaml() {
        let yaml = include_str!("../../../../contract/config.yaml");
        let mut contract: Vec<&str> =
            yaml.lines().filter_map(|l| l.trim().strip_prefix("- name:")).map(str::trim).collect();
        contract.sort_unstable();
        let mut ours: Vec<&str> = all_vars().filter(|v| v.contract).map(|v| v.name).collect();
        ours.sort_unstable();
        assert_eq!(ours, contract);
    }

    #[test]
    fn every_variable_is_declared_once_and_documented() {
        let mut names: Vec<&str> = all_vars().map(|v| v.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a variable is declared twice");
        for var in all_vars() {
            assert!(!var.doc.is_empty(), "{} has no doc", var.name);
            assert!(!var.doc.contains('\n'), "{}'s doc is one line", var.name);
        }
        let docs = include_str!("../../../../docs/configuration.md");
        for var in all_vars().filter(|v| !v.contract) {
            assert!(docs.contains(var.name), "{} is documented in docs/configuration.md", var.name);
        }
    }
}
