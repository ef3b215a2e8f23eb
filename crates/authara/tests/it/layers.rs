//! The import rules of docs/ARCHITECTURE.md, checked on the source: a layer that reaches into
//! one it must not know fails this test, whoever writes it.

use std::path::{Path, PathBuf};

/// (folder under src/, what its files must never reference, why).
const RULES: &[(&str, &[&str], &str)] = &[
    ("http", &["crate::store", "sqlx::"], "HTTP knows services, never SQL"),
    (
        "store",
        &["crate::services", "crate::http", "crate::app", "crate::cli", "crate::worker", "axum"],
        "the store knows SQL, not its callers",
    ),
    ("services", &["crate::http", "crate::app", "crate::cli", "axum"], "services never see HTTP types"),
    ("worker", &["crate::store", "crate::http"], "workers drive services"),
    ("cache", &["crate::services", "crate::http", "crate::store"], "the cache seam is below the services"),
    ("config", &["crate::"], "config is the ground floor: it imports nothing of ours"),
    ("domain", &["crate::"], "domain values are the ground floor: they import nothing of ours"),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn layers_import_only_what_they_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for (folder, forbidden, why) in RULES {
        let mut paths = Vec::new();
        files(&src.join(folder), &mut paths);
        assert!(!paths.is_empty(), "src/{folder} has files");
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for bad in *forbidden {
                    let hit = if *bad == "crate::" {
                        // Only its own folder may be named.
                        code.match_indices("crate::").any(|(at, _)| !code[at + 7..].starts_with(folder))
                    } else {
                        code.contains(bad)
                    };
                    if hit {
                        let file = path.strip_prefix(&src).unwrap().display().to_string();
                        problems.push(format!("src/{file}:{}: `{}` ({why})", n + 1, code.trim()));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "layering violations:\n{}", problems.join("\n"));
}
