//! `authara-bench`: measures authara's workloads next to the ceilings of this machine, in one
//! run, and writes a markdown table. See `bench/README.md` for the method.
//!
//! Subcommands: `run` (everything; the others are its child processes), `ceiling-server`
//! (ceiling H), `hash-ceiling` (ceiling A), `rotation-ceiling` (ceiling D), and the resource
//! bounds of `bench/abuse`: `abandoned-hashes`, `limiter-memory`; and `webhook-latency`
//! (`bench/webhooks`).

mod abuse;
mod ceilings;
mod load;
mod scale;
mod seed;
mod webhooks;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Options of `run`.
#[derive(Debug, Clone)]
pub struct Opts {
    pub bin: PathBuf,
    pub secs: u64,
    pub out: PathBuf,
    /// PostgreSQL socket directory, port, user.
    pub pg: Option<(String, String, String)>,
    pub pinned: bool,
    /// `HOST:PORT` of a Redis: servers run with `AUTHARA_CACHE_PROVIDER=redis` (`bench/instances`).
    pub redis: Option<String>,
    /// Only the workloads whose name starts with this (for profiling one of them); the results
    /// file is then left alone.
    pub only: Option<String>,
    /// Servers run with the metrics listener on (`AUTHARA_METRICS_BIND`), to measure its cost.
    pub metrics: bool,
}

impl Opts {
    pub fn want(&self, workload: &str) -> bool {
        self.only.as_deref().is_none_or(|o| workload.starts_with(o))
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.secs)
    }
}

impl Opts {
    /// Options of the one-server subcommands: only `--bin` and `--secs`.
    fn single(args: &[String], secs: u64) -> anyhow::Result<Self> {
        Ok(Opts {
            bin: PathBuf::from(arg(args, "--bin").context("--bin path/to/authara")?),
            secs,
            out: PathBuf::new(),
            pg: None,
            pinned: false,
            redis: None,
            only: None,
            metrics: false,
        })
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("help");
    let secs = arg(&args, "--secs").map(|s| s.parse()).transpose()?.unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cmd {
        "ceiling-server" => rt.block_on(ceilings::serve_ceiling_h()),
        "hash-ceiling" => {
            ceilings::hash_ceiling(secs);
            Ok(())
        }
        "rotation-ceiling" => {
            let engine = arg(&args, "--engine").context("--engine")?;
            let pg = arg(&args, "--pg");
            // PostgreSQL connections (default 8); the server holds one per request in flight.
            let pool = arg(&args, "--pool").map(|s| s.parse()).transpose()?.unwrap_or(8);
            rt.block_on(ceilings::rotation_ceiling(&engine, pg.as_deref(), secs, pool))
        }
        "abandoned-hashes" => {
            let opts = Opts::single(&args, secs)?;
            let requests = arg(&args, "--requests").map(|s| s.parse()).transpose()?.unwrap_or(200);
            rt.block_on(abuse::abandoned_hashes(&opts, requests))
        }
        "limiter-memory" => abuse::limiter_memory(),
        "webhook-latency" => {
            let opts = Opts::single(&args, secs)?;
            let events = arg(&args, "--events").map(|s| s.parse()).transpose()?.unwrap_or(200);
            rt.block_on(webhooks::latency(&opts, events))
        }
        "run" => {
            let pg = arg(&args, "--pg").map(|s| {
                let mut p = s.splitn(3, ':').map(str::to_owned);
                (p.next().unwrap_or_default(), p.next().unwrap_or_default(), p.next().unwrap_or_default())
            });
            let opts = Opts {
                bin: PathBuf::from(arg(&args, "--bin").context("--bin path/to/authara")?),
                secs,
                out: PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "bench/results.md".into())),
                pg,
                pinned: args.iter().any(|a| a == "--pinned"),
                redis: arg(&args, "--redis"),
                only: arg(&args, "--only"),
                metrics: args.iter().any(|a| a == "--metrics"),
            };
            rt.block_on(workloads::run_all(&opts))
        }
        "scale" => {
            let pg = arg(&args, "--pg").map(|s| {
                let mut p = s.splitn(3, ':').map(str::to_owned);
                (p.next().unwrap_or_default(), p.next().unwrap_or_default(), p.next().unwrap_or_default())
            });
            let sizes: Vec<i64> = arg(&args, "--users")
                .unwrap_or_else(|| "10000,100000,1000000".into())
                .split(',')
                .map(|s| s.trim().parse())
                .collect::<Result<_, _>>()?;
            let opts = Opts {
                bin: PathBuf::from(arg(&args, "--bin").context("--bin path/to/authara")?),
                secs,
                out: PathBuf::new(),
                pg,
                pinned: args.iter().any(|a| a == "--pinned"),
                redis: None,
                only: arg(&args, "--only"),
                metrics: false,
            };
            let out = PathBuf::from(arg(&args, "--out").unwrap_or_else(|| "bench/results-scale.md".into()));
            rt.block_on(scale::run_all(&opts, &sizes, &out))
        }
        _ => bail!(
            "usage: authara-bench run --bin PATH [--secs N] [--out FILE] [--pg SOCKETDIR:PORT:USER] [--pinned] [--redis HOST:PORT] [--only WORKLOAD] [--metrics]"
        ),
    }
}
