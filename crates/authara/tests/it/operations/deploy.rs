//! The deployment files in `deploy/` (docs/deploy.md) are what they claim: the compose file's
//! and the Kubernetes manifest's configuration is a valid production configuration with no
//! unknown variable, their probes are routes the real binary answers, Caddy reads the
//! Caddyfile, and the systemd unit passes `systemd-analyze verify` where that exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use yaml_rust2::YamlLoader;

use crate::app::send_checked;
use crate::harness::{Engine, Server, TestDb, client, run_cli};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn yaml_docs(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy_dir().join(name)).unwrap();
    YamlLoader::load_from_str(&text).unwrap().iter().map(crate::contract::to_json).collect()
}

/// `${NAME}`, `${NAME:-default}` and `${NAME:?message}` as compose expands them, from `vars`.
fn expand(value: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("an unclosed ${") + start;
        let expr = &rest[start + 2..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr.split(":?").next().unwrap(), None),
        };
        match (vars.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => panic!("{name} is required by the compose file and has no value in this test"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Secret files with plausible contents in `dir`, by name.
async fn write_secrets(dir: &Path, db: &TestDb) -> String {
    let (code, key, _) = run_cli(&["keys", "generate"], &db.env(), db.data_dir()).await;
    assert_eq!(code, 0);
    let key = key.trim().to_owned();
    for (name, content) in [
        ("jwt_keys", key.as_str()),
        ("internal_api_token", "an-internal-token-of-at-least-32-characters"),
        ("postgres_password", "pg-password"),
        ("redis_password", "redis-password"),
        ("smtp_password", "smtp-password"),
    ] {
        std::fs::write(dir.join(name), format!("{content}\n")).unwrap();
    }
    key.split(':').next().unwrap().to_owned()
}

/// Loads `env` as the server would, pointing secret files at `secrets`, and checks it is a
/// complete production configuration with nothing unknown.
fn assert_loads(what: &str, env: HashMap<String, String>, mount: &str, secrets: &Path) {
    let env: HashMap<String, String> = env
        .into_iter()
        .map(|(k, v)| {
            let v = match v.strip_prefix(mount) {
                Some(name) if k.ends_with("_FILE") => secrets.join(name).display().to_string(),
                _ => v,
            };
            (k, v)
        })
        .collect();
    assert_eq!(env.get("APP_ENV").map(String::as_str), Some("prod"), "{what} runs in prod");
    match authara::config::load_from_map(&env) {
        Ok((_, warnings)) => assert!(warnings.is_empty(), "{what}: {warnings:?}"),
        Err(e) => panic!("{what} is not a valid configuration: {e}"),
    }
}

#[tokio::test]
async fn the_compose_file_configures_a_valid_production_authara_with_its_health_check() {
    let docs = yaml_docs("compose.yaml");
    let compose = &docs[0];
    for service in ["authara", "postgres", "redis", "caddy"] {
        assert!(compose["services"][service].is_object(), "the compose file has {service}");
    }
    let authara = &compose["services"]["authara"];
    assert_eq!(authara["healthcheck"]["test"], serde_json::json!(["CMD", "/usr/local/bin/authara", "healthcheck"]));
    assert_eq!(authara["command"], serde_json::json!(["serve", "--migrate"]));
    assert_eq!(authara["volumes"][0].as_str().unwrap().split(':').nth(1), Some("/data"), "data in the one volume");
    // Every secret the service reads is declared with a file.
    for s in authara["secrets"].as_array().unwrap() {
        let name = s.as_str().unwrap();
        assert_eq!(compose["secrets"][name]["file"], format!("./secrets/{name}"));
    }
    // The Caddyfile as Caddy itself reads it: /auth/* to authara, whose readiness it checks.
    let adapted = std::process::Command::new(crate::forward_auth::proxies::binary("caddy"))
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(deploy_dir().join("Caddyfile"))
        .env("AUTHARA_DOMAIN", "auth.example.com")
        .output()
        .unwrap();
    assert!(adapted.status.success(), "caddy adapt: {}", String::from_utf8_lossy(&adapted.stderr));
    let adapted = String::from_utf8_lossy(&adapted.stdout);
    for needle in [r#""/auth/*""#, r#""dial":"authara:8080""#, r#""uri":"/auth/health/ready""#, r#""auth.example.com""#]
    {
        assert!(adapted.contains(needle), "the adapted Caddyfile has no {needle}: {adapted}");
    }

    let db = TestDb::new(Engine::Sqlite, false).await;
    let secrets = tempfile::tempdir().unwrap();
    let kid = write_secrets(secrets.path(), &db).await;
    let vars = HashMap::from([
        ("AUTHARA_DOMAIN", "auth.example.com"),
        ("AUTHARA_JWT_ACTIVE_KEY_ID", kid.as_str()),
        ("AUTHARA_EMAIL_FROM", "auth@example.com"),
        ("AUTHARA_EMAIL_SMTP_HOST", "smtp.example.com"),
    ]);
    let env = authara["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap(), &vars)))
        .collect();
    assert_loads("the compose file's authara", env, "/run/secrets/", secrets.path());
}

#[tokio::test]
async fn the_kubernetes_probes_are_routes_the_server_answers_and_its_configuration_loads() {
    let docs = yaml_docs("kubernetes.yaml");
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    let paths: Vec<(String, String)> = ["startupProbe", "livenessProbe", "readinessProbe"]
        .iter()
        .map(|p| (p.to_string(), container[p]["httpGet"]["path"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(paths[1].1, "/auth/health/live");
    assert_eq!(paths[2].1, "/auth/health/ready");

    let db = TestDb::new(Engine::Sqlite, true).await;
    let server = Server::start(&["serve"], &db.env(), db.data_dir()).await;
    for (probe, path) in &paths {
        let res = send_checked(client().get(server.url(path))).await;
        assert_eq!(res.status, 200, "{probe} {path}");
    }
    server.terminate().await;

    let secrets = tempfile::tempdir().unwrap();
    let kid = write_secrets(secrets.path(), &db).await;
    let env: HashMap<String, String> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let (name, value) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
            let value = if name == "AUTHARA_JWT_ACTIVE_KEY_ID" { kid.clone() } else { value.to_owned() };
            (name.to_owned(), value)
        })
        .collect();
    assert_loads("the Kubernetes manifest", env, "/run/secrets/authara/", secrets.path());
}

/// `systemd-analyze verify` accepts the unit with no warning (run where systemd is installed;
/// elsewhere the test says it checked nothing).
#[tokio::test]
async fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(deploy_dir().join("authara.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/authara serve --migrate"));
    assert!(unit.contains("NoNewPrivileges=yes") && unit.contains("ProtectSystem=strict"));
    if std::process::Command::new("systemd-analyze").arg("--version").output().is_err() {
        // The test's own environment, not the server's configuration.
        #[allow(clippy::disallowed_methods)]
        let in_ci = std::env::var_os("CI").is_some();
        assert!(!in_ci, "systemd-analyze is not installed: CI does not skip the unit's check");
        eprintln!("SKIPPED the unit's check: systemd-analyze is not installed");
        return;
    }
    // The unit as installed, with the paths it names pointing at files that exist here.
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("authara.env");
    std::fs::write(&env_file, "PUBLIC_URL=https://auth.example.com\n").unwrap();
    let unit = unit
        .replace("/usr/local/bin/authara", &crate::harness::bin().display().to_string())
        .replace("/etc/authara/authara.env", &env_file.display().to_string());
    let path = dir.path().join("authara.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    let about_the_unit: Vec<&str> = said.lines().filter(|l| l.contains("authara.service")).collect();
    assert!(about_the_unit.is_empty(), "systemd-analyze verify: {about_the_unit:#?}");
}
