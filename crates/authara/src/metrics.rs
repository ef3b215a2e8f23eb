//! Prometheus metrics (OpenMetrics text), served on their own listener (`AUTHARA_METRICS_BIND`,
//! off by default), never on the public port.
//!
//! Low cardinality by design: labels are route templates, methods, status classes, sign-in
//! methods and fixed result names, never a user id, an email or an address. Counters move where
//! the thing happens (the edge middleware, the sign-in completion, the refresh, the hasher, the
//! webhook workers); queue depths, the pool and the cache are read when scraped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    method: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A histogram updated with atomics only.
///
/// why: the crate's `Histogram` takes a write lock per observation, and the session check is
/// observed on every request: a worker thread preempted while holding it stalls the others.
/// With it, bench runs of the session check on a busy machine (server pinned to one core) fell
/// to 4,000-29,000 req/s against 62,000-78,000 without metrics; not seen since (a busy machine
/// is no controlled experiment, but a lock here buys nothing).
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// One per bound, then one past the last (`+Inf`); not cumulative.
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    /// An `f64`'s bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram(Arc::new(Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    fn observe(&self, v: f64) {
        let this = &self.0;
        let i = this.bounds.iter().position(|b| v <= *b).unwrap_or(this.bounds.len());
        if let Some(c) = this.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        this.count.fetch_add(1, Ordering::Relaxed);
        let _ =
            this.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some((f64::from_bits(s) + v).to_bits()));
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let this = &self.0;
        let buckets: Vec<(f64, u64)> = this
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(this.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let sum = f64::from_bits(this.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, this.count.load(Ordering::Relaxed), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

// 0.5 ms .. 5 s: a session check answers in well under a millisecond, a login takes a
// password hash (tens to hundreds of milliseconds) and may queue.
const LATENCY_BOUNDS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const WAIT_BOUNDS: &[f64] = &[0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Routes whose latency is kept as a histogram (the others are counted only, which keeps a
/// busy instance's series count in the hundreds): the session check, forward-auth, logins,
/// refreshes and sign-ups.
const TIMED_ROUTES: &[&str] = &[
    "/auth/api/v1/user",
    "/auth/verify",
    "/auth/api/v1/login",
    "/auth/login",
    "/auth/api/v1/sessions/refresh",
    "/auth/api/v1/tokens/refresh",
    "/auth/api/v1/signup/direct",
    "/auth/signup",
];

/// A series' counter and, for [`TIMED_ROUTES`], its histogram.
type HttpHandle = (Counter, Option<Histogram>);
/// One route template's series: method, status class, handle.
type RouteSeries = Vec<(&'static str, &'static str, HttpHandle)>;
/// By metrics instance, then route template.
type Handles = HashMap<u64, HashMap<Box<str>, RouteSeries>>;

thread_local! {
    /// Each worker thread's handles to the HTTP series it has updated, by metrics instance, route
    /// template, then method and status class.
    ///
    /// why: a family lookup per request allocates the route label, hashes the label set and takes
    /// the family's read lock, a cache line both worker threads write; this keeps the request's
    /// cost to one hash of the template and the counters' own atomics. Bounded by the routes
    /// times a few methods and status classes, per thread.
    static HANDLES: std::cell::RefCell<Handles> = std::cell::RefCell::default();
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A request that matched no route: one label value for every unknown path.
pub const UNMATCHED: &str = "unmatched";

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BOUNDS)
}

/// Every metric of the process. Cheap to share (`Arc`), cheap to update (atomics, and a read
/// lock on a small map for labelled ones).
#[derive(Debug)]
pub struct Metrics {
    /// Off (no listener): nothing is counted, so the metrics cost nothing.
    enabled: bool,
    /// Tells instances apart in the per-thread handle cache (tests run many in one process).
    id: u64,
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<HttpLabels>,
    sign_ins: Family<SignInLabels, Counter>,
    refresh: Family<ResultLabel, Counter>,
    hash_queue_depth: Gauge,
    hash_wait: Histogram,
    outbox_jobs: Family<StateLabel, Gauge>,
    webhook_queue: Family<StateLabel, Gauge>,
    webhook_deliveries: Family<ResultLabel, Counter>,
    cache_up: Gauge,
    db_pool: Family<StateLabel, Gauge>,
}

impl Metrics {
    /// Whether anything is counted (the listener is configured).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `enabled`: whether anything is counted (the listener is configured).
    pub fn new(enabled: bool) -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        // Counters' names get their `_total` suffix when encoded.
        registry.register(
            "authara_http_requests",
            "HTTP requests by route template, method and status class",
            http_requests.clone(),
        );
        let http_duration: Histograms<HttpLabels> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "authara_http_request_duration",
            "Time to answer: the session check, forward-auth, logins, refreshes and sign-ups",
            Unit::Seconds,
            http_duration.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "authara_sign_ins",
            "Sign-in attempts by method and result (success, mfa_required, bad_credentials, rate_limited, \
             disabled, not_allowed, forbidden, error)",
            sign_ins.clone(),
        );
        let refresh = Family::<ResultLabel, Counter>::default();
        registry.register(
            "authara_refresh",
            "Refresh-token exchanges by result (rotated, grace, reuse_detected, invalid, error)",
            refresh.clone(),
        );
        let hash_queue_depth = Gauge::default();
        registry.register(
            "authara_password_hash_queue_depth",
            "Password hashes waiting for a hashing slot",
            hash_queue_depth.clone(),
        );
        let hash_wait = Histogram::new(WAIT_BOUNDS);
        registry.register_with_unit(
            "authara_password_hash_wait",
            "Time a password hash waited for a hashing slot",
            Unit::Seconds,
            hash_wait.clone(),
        );
        let outbox_jobs = Family::<StateLabel, Gauge>::default();
        registry.register("authara_outbox_jobs", "Email outbox jobs by state", outbox_jobs.clone());
        let webhook_queue = Family::<StateLabel, Gauge>::default();
        registry.register(
            "authara_webhook_queue",
            "Webhook deliveries by state (the webhook queue)",
            webhook_queue.clone(),
        );
        let webhook_deliveries = Family::<ResultLabel, Counter>::default();
        registry.register(
            "authara_webhook_deliveries",
            "Webhook delivery attempts by result (delivered, retrying, failed)",
            webhook_deliveries.clone(),
        );
        let cache_up = Gauge::default();
        registry.register(
            "authara_cache_up",
            "1 when the cache provider answers (always for memory), 0 when degraded",
            cache_up.clone(),
        );
        let db_pool = Family::<StateLabel, Gauge>::default();
        registry.register("authara_db_pool_connections", "Database pool connections by state", db_pool.clone());
        registry.register_collector(Box::new(Process));
        Metrics {
            enabled,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            http_requests,
            http_duration,
            sign_ins,
            refresh,
            hash_queue_depth,
            hash_wait,
            outbox_jobs,
            webhook_queue,
            webhook_deliveries,
            cache_up,
            db_pool,
        }
    }

    /// One answered request: `route` is the matched template ([`UNMATCHED`] when none).
    pub fn http_request(&self, route: &str, method: &axum::http::Method, status: u16, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let (method, status) = (method_label(method), status_class(status));
        HANDLES.with_borrow_mut(|handles| {
            let routes = handles.entry(self.id).or_default();
            let series = match routes.get_mut(route) {
                Some(series) => series,
                None => routes.entry(route.into()).or_default(),
            };
            let handle = match series.iter().position(|(m, s, _)| *m == method && *s == status) {
                Some(i) => &series[i].2,
                None => {
                    let labels = HttpLabels { route: route.to_owned(), method, status };
                    let timed =
                        TIMED_ROUTES.contains(&route).then(|| self.http_duration.get_or_create(&labels).clone());
                    series.push((method, status, (self.http_requests.get_or_create(&labels).clone(), timed)));
                    &series[series.len() - 1].2
                }
            };
            if let Some(h) = &handle.1 {
                h.observe(elapsed.as_secs_f64());
            }
            handle.0.inc();
        });
    }

    /// One sign-in attempt by `method` (`password`, `passkey`, `email_code`, a provider's name).
    pub fn sign_in(&self, method: &str, result: &'static str) {
        if !self.enabled {
            return;
        }
        self.sign_ins.get_or_create(&SignInLabels { method: method.to_owned(), result }).inc();
    }

    pub fn refresh(&self, result: &'static str) {
        if !self.enabled {
            return;
        }
        self.refresh.get_or_create(&ResultLabel { result }).inc();
    }

    /// The time a password hash waited for its slot.
    pub fn hash_waited(&self, waited: Duration) {
        if !self.enabled {
            return;
        }
        self.hash_wait.observe(waited.as_secs_f64());
    }

    pub fn webhook_delivery(&self, result: &'static str) {
        if !self.enabled {
            return;
        }
        self.webhook_deliveries.get_or_create(&ResultLabel { result }).inc();
    }

    /// The values read at scrape time.
    pub fn set_snapshot(&self, s: &Snapshot) {
        self.hash_queue_depth.set(to_i64(s.hash_queue_depth));
        for (state, n) in &s.outbox_jobs {
            self.outbox_jobs.get_or_create(&StateLabel { state }).set(*n);
        }
        for (state, n) in &s.webhook_queue {
            self.webhook_queue.get_or_create(&StateLabel { state }).set(*n);
        }
        if let Some(up) = s.cache_up {
            self.cache_up.set(i64::from(up));
        }
        self.db_pool.get_or_create(&StateLabel { state: "in_use" }).set(to_i64(s.db_in_use));
        self.db_pool.get_or_create(&StateLabel { state: "idle" }).set(to_i64(s.db_idle));
    }

    /// The exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

/// What a scrape reads from the services before encoding.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub hash_queue_depth: usize,
    pub outbox_jobs: Vec<(&'static str, i64)>,
    pub webhook_queue: Vec<(&'static str, i64)>,
    /// `None` when the cache could not be asked.
    pub cache_up: Option<bool>,
    pub db_in_use: usize,
    pub db_idle: usize,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The process metrics Prometheus' clients export by convention, read from `/proc` on each
/// scrape (nothing is reported where there is no `/proc`).
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(p) = read_process() else { return Ok(()) };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent",
            None,
            cpu.metric_type(),
        )?)?;
        let rss = ConstGauge::new(p.resident_bytes);
        rss.encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            rss.metric_type(),
        )?)?;
        let fds = ConstGauge::new(p.open_fds);
        fds.encode(encoder.encode_descriptor("process_open_fds", "Open file descriptors", None, fds.metric_type())?)?;
        if let Some(max) = p.max_fds {
            let max = ConstGauge::new(max);
            max.encode(encoder.encode_descriptor(
                "process_max_fds",
                "The soft limit on open file descriptors",
                None,
                max.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

struct ProcessFacts {
    cpu_seconds: f64,
    resident_bytes: i64,
    open_fds: i64,
    max_fds: Option<i64>,
}

/// Linux's clock ticks per second (`sysconf(_SC_CLK_TCK)`): 100 on every mainstream platform,
/// taken as such since the crate reads no libc.
const CLK_TCK: f64 = 100.0;

fn read_process() -> Option<ProcessFacts> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) of proc(5) are at 11 and 12 after the name and state.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?;
    let resident_kib = rss_kib.parse::<i64>().ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        let line = l.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<i64>().ok()
    });
    Some(ProcessFacts {
        cpu_seconds: ticks as f64 / CLK_TCK,
        resident_bytes: resident_kib.saturating_mul(1024),
        // The directory listing itself holds one descriptor.
        open_fds: to_i64(open_fds.saturating_sub(1)),
        max_fds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_and_unknown_methods_are_bounded_label_values() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(599), "5xx");
        let custom = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
    }

    #[test]
    fn the_process_figures_are_read_from_proc() {
        let p = read_process().expect("linux /proc");
        assert!(p.resident_bytes > 1024 * 1024, "at least a MiB resident: {}", p.resident_bytes);
        assert!(p.open_fds >= 3, "stdin, stdout, stderr at least: {}", p.open_fds);
    }
}
