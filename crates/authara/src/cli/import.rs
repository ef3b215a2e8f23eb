//! `authara import --from FILE [--dry-run]` and `authara import --undo BATCH`.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::services::import::{ImportError, Report};

/// Checks and (unless `dry_run`) imports `file`. `Ok(false)` when a line has a problem: every
/// problem is printed with its line number and nothing is written.
pub async fn run(config: Config, file: &Path, dry_run: bool) -> anyhow::Result<bool> {
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let app = App::open(Arc::new(config), Arc::new(SystemClock), false).await?;
    let source = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let started = std::time::Instant::now();
    let result = app.services.importer().run(BufReader::new(input), &source, dry_run).await;
    app.close().await;
    let report = match result {
        Ok(r) => r,
        Err(e @ ImportError::TakenMeanwhile { .. }) => anyhow::bail!("{e}"),
        Err(e) => return Err(e).context("importing"),
    };
    for p in &report.problems {
        println!("{p}");
    }
    print_summary(&report, dry_run, started.elapsed());
    Ok(report.problems.is_empty())
}

fn print_summary(r: &Report, dry_run: bool, took: std::time::Duration) {
    let hashes: Vec<String> = r.hashes.iter().map(|(f, n)| format!("{f} {n}")).collect();
    let counts = format!(
        "{} user(s), {} organization(s), {} provider identit(ies); password hashes: {}",
        r.users,
        r.organizations,
        r.identities,
        if hashes.is_empty() { "-".to_owned() } else { hashes.join(", ") }
    );
    if !r.problems.is_empty() {
        println!("{} problem(s); nothing was written. Valid lines: {counts}", r.problems.len());
    } else if dry_run {
        println!("dry run: no problem found; would import {counts}");
    } else if let Some(batch) = &r.batch {
        println!("imported {counts} in {:.1}s", took.as_secs_f64());
        println!("batch {batch} (undo with `authara import --undo {batch}`)");
    }
}

/// Removes what batch `id` added.
pub async fn undo(config: Config, id: &str) -> anyhow::Result<bool> {
    let app = App::open(Arc::new(config), Arc::new(SystemClock), false).await?;
    let result = app.services.importer().undo(id.trim()).await;
    app.close().await;
    match result.context("undoing the import")? {
        Some((users, orgs)) => {
            println!("batch {id} undone: removed {users} user(s) and {orgs} organization(s)");
            Ok(true)
        }
        None => {
            eprintln!("error: no import batch {id}");
            Ok(false)
        }
    }
}
