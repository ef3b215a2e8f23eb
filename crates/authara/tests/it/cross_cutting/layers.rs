//! The import rules of docs/ARCHITECTURE.md, checked on the source: a layer that reaches into
//! one it must not know fails this test, whoever writes it.

use std::collections::{BTreeMap, BTreeSet};
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

/// The module path of a source file (`http/pages/mod.rs` → `http::pages`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests { … }` blocks
/// (tests may reach anywhere).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_test = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let trimmed = code.trim();
        if skip_depth.is_none() && trimmed == "#[cfg(test)]" {
            pending_test = true;
            continue;
        }
        if pending_test && trimmed.starts_with("mod ") && trimmed.ends_with('{') {
            skip_depth = Some(depth);
        }
        pending_test = false;
        for ch in code.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if let Some(d) = skip_depth {
            if depth <= d && trimmed.ends_with('}') {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Expands `use a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_owned()] };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut level, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => level += 1,
            '}' => level -= 1,
            ',' if level == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .flat_map(|i| {
            expand_use(i)
                .into_iter()
                .map(move |p| if p == "self" { prefix.to_owned() } else { format!("{prefix}::{p}") })
        })
        .collect()
}

/// `crate::`/`super::`/`self::` paths named in `code`, outside `use` trees (which are expanded
/// separately): `super::google::button(…)`.
fn inline_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let path: String =
                code[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            out.push(path.trim_end_matches(':').to_owned());
        }
    }
    out
}

/// Resolves a path as written in `module` to the module that defines what it names: relative
/// segments made absolute, then the longest prefix that is a module, following that module's
/// `pub use` re-exports of the next segment.
fn resolve(
    module: &str,
    path: &str,
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, BTreeMap<String, String>>,
) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("self") => {
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
        }
        _ => return None,
    }
    let full: Vec<&str> = base.into_iter().chain(segs).collect();
    for n in (0..=full.len()).rev() {
        let candidate = full[..n].join("::");
        if modules.contains(&candidate) {
            if let Some(next) = full.get(n)
                && let Some(target) = reexports.get(&candidate).and_then(|r| r.get(*next))
            {
                return Some(target.clone());
            }
            return Some(candidate);
        }
    }
    None
}

/// Every module's edges: the modules it takes something from (re-exports followed, module
/// declarations and `pub use` façades not counted).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut paths = Vec::new();
    files(src, &mut paths);
    let sources: Vec<(String, String)> =
        paths.iter().map(|p| (module_of(src, p), code_of(&std::fs::read_to_string(p).unwrap()))).collect();
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    let use_items = |code: &str, public: bool| -> Vec<String> {
        let mut out = Vec::new();
        for stmt in code.split(';') {
            let s = stmt.trim();
            let body = if public {
                s.strip_prefix("pub use ").or_else(|| s.strip_prefix("pub(crate) use "))
            } else {
                s.strip_prefix("use ")
            };
            if let Some(b) = body {
                out.extend(expand_use(b));
            }
        }
        out
    };
    let mut reexports: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (m, code) in &sources {
        for item in use_items(code, true) {
            let name = item.rsplit("::").next().unwrap_or_default().to_owned();
            if let Some(target) = resolve(m, &item, &modules, &BTreeMap::new()) {
                reexports.entry(m.clone()).or_default().insert(name, target);
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &sources {
        let without_uses: String = code
            .split(';')
            .filter(|s| {
                let t = s.trim();
                !(t.starts_with("use ") || t.starts_with("pub use ") || t.starts_with("pub(crate) use "))
            })
            .collect::<Vec<_>>()
            .join(";");
        let named = use_items(code, false).into_iter().chain(inline_paths(&without_uses));
        let edges = graph.entry(m.clone()).or_default();
        for path in named {
            if let Some(target) = resolve(m, &path, &modules, &reexports)
                && target != *m
                && !m.starts_with(&format!("{target}::"))
            {
                edges.insert(target);
            }
        }
    }
    graph
}

/// Modules that import each other, directly or around a loop: the strongly connected
/// components of more than one module (Tarjan's algorithm).
fn import_circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        circles: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.circles.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.circles
}

/// No two modules import each other, directly or around a loop: each area can be read, changed
/// and tested from the bottom up.
#[test]
fn no_module_imports_itself_around_a_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph.get("http::pages::account").is_some_and(|e| e.contains("http::pages::methods")), "{graph:#?}");
    let circles = import_circles(&graph);
    assert!(circles.is_empty(), "import circles:\n{circles:#?}");
}

#[test]
fn the_circle_finder_finds_circles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    g.entry("d".into()).or_default().insert("a".into());
    assert_eq!(import_circles(&g), vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
    assert_eq!(expand_use("super::{a, b::{c, D}, self}"), ["super::a", "super::b::c", "super::b::D", "super"]);
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
