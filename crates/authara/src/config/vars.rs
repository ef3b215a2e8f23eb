//! The one declaration of every configuration variable ([`Var`]), the list of areas, and the
//! variable reference rendered from them into `docs/configuration.md`.

use super::{
    access, backup, cache, challenge, database, email, jwt, limits, mfa, oauth, organizations, password, server,
    session, sites, webhooks,
};

/// One configuration variable, declared once in its area module: the reader takes its name and
/// default from here, the unknown-variable check and `docs/configuration.md` list it from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    /// The environment variable's name.
    pub name: &'static str,
    /// The value used when the variable is unset or blank; `""` when there is none.
    pub default: &'static str,
    /// One line for the documentation table.
    pub doc: &'static str,
    /// `true` when the variable is in `contract/config.yaml`, `false` for this server's extras.
    pub contract: bool,
}

/// Declares an area's variables once. Each entry is a doc comment (also the documentation
/// table's description), `IDENT = contract("NAME", "default");` or `extra(...)`. It generates a
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

/// A group of variables: one module under `config/` and one table in `docs/configuration.md`.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    /// The table's heading.
    pub title: &'static str,
    /// The area's variables, in documentation order.
    pub vars: &'static [&'static Var],
}

/// Every area, in the order the configuration is read and documented.
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
    Area { title: "Backups", vars: backup::VARS },
    Area { title: "Two-step verification", vars: mfa::VARS },
    Area { title: "Apps on other hosts", vars: sites::VARS },
];

/// Every variable this server reads: the union of all areas.
pub fn all_vars() -> impl Iterator<Item = &'static Var> {
    AREAS.iter().flat_map(|area| area.vars.iter().copied())
}

/// The variable reference of `docs/configuration.md` (the part between the generated markers):
/// one table per area with each variable's name, default and description; this server's
/// additions to the contract are marked *extra*.
pub fn markdown_reference() -> String {
    let mut out = String::from(
        "<!-- Generated from the declarations in crates/authara/src/config/ by `config::markdown_reference()`.\n     \
         Do not edit by hand; regenerate with `AUTHARA_REGENERATE_DOCS=1 cargo test -p authara --lib config`. -->\n",
    );
    for area in AREAS {
        out.push_str(&format!("\n### {}\n\n| variable | default | description |\n|---|---|---|\n", area.title));
        for var in area.vars {
            let origin = if var.contract { "" } else { " *(extra)*" };
            let default = if var.default.is_empty() { "—".to_owned() } else { format!("`{}`", var.default) };
            out.push_str(&format!("| `{}`{origin} | {default} | {} |\n", var.name, var.doc.replace('|', "\\|")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- BEGIN GENERATED: variables -->\n";
    const END: &str = "<!-- END GENERATED -->";

    fn docs_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")
    }

    #[test]
    fn docs_configuration_md_has_the_generated_reference() {
        let path = docs_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find(BEGIN).expect("docs/configuration.md has the BEGIN GENERATED marker") + BEGIN.len();
        let end = start + text[start..].find(END).expect("docs/configuration.md has the END GENERATED marker");
        let want = markdown_reference();
        if text[start..end] == want {
            return;
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "config/ may read the environment; this is the regenerate switch"
        )]
        let regenerate = std::env::var_os("AUTHARA_REGENERATE_DOCS").is_some_and(|v| v == "1");
        if regenerate {
            std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[end..])).unwrap();
            return;
        }
        panic!(
            "docs/configuration.md's variable reference is out of date with the declarations in config/; \
             regenerate it with `AUTHARA_REGENERATE_DOCS=1 cargo test -p authara --lib config` and commit the file"
        );
    }

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
        // docs/configuration.md holds this reference (the test above), so every extra is documented there.
        let reference = markdown_reference();
        for var in all_vars() {
            let origin = if var.contract { " |" } else { " *(extra)* |" };
            assert!(reference.contains(&format!("| `{}`{origin}", var.name)), "{} is in the reference", var.name);
        }
    }
}
