//! Which connections are let in: at most so many open per client address, a global cap that
//! fits the process's descriptor limit, and an accept-failure log that cannot flood.
//!
//! why: one client re-opening 150 sockets as the header timeout closed them kept the server
//! unreachable (health answered 1 time in 9): the global cap of 4096 was above the usual
//! 1024-descriptor limit, so accepts failed with EMFILE and were logged every 20 ms. The peer
//! address is the only thing a connection cap can trust: forwarded headers arrive after the
//! connection is open, and behind a proxy every client shares the proxy's address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Descriptors kept back from the connection cap for everything else the process opens: the
/// database pool and SQLite's files, Redis, SMTP and webhook connections, logs.
pub const RESERVED_DESCRIPTORS: u64 = 256;
/// The global cap never goes below this, however low the descriptor limit.
pub const MIN_CONNECTIONS: usize = 16;
/// The cap when the descriptor limit cannot be read.
const FALLBACK_CONNECTIONS: usize = 1024 - RESERVED_DESCRIPTORS as usize;

/// Raises the soft limit on open files to the hard one (once is enough; later calls change
/// nothing) and returns the soft limit now in force, `None` where it cannot be read.
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).ok()?;
        if soft >= hard {
            return Some(soft);
        }
        match rlimit::setrlimit(Resource::NOFILE, hard, hard) {
            Ok(()) => {
                tracing::debug!(from = soft, to = hard, "raised the open-file limit");
                Some(hard)
            }
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit");
                Some(soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The global connection cap: what the descriptor limit leaves after
/// [`RESERVED_DESCRIPTORS`], or `configured` (non-zero) when that is lower.
pub fn global_cap(configured: usize, descriptor_limit: Option<u64>) -> usize {
    let budget = descriptor_limit.map_or(FALLBACK_CONNECTIONS, |n| {
        usize::try_from(n.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX)
    });
    let budget = budget.max(MIN_CONNECTIONS);
    if configured == 0 {
        return budget;
    }
    if configured > budget {
        tracing::warn!(
            configured,
            cap = budget,
            "AUTHARA_MAX_CONNECTIONS is above what the open-file limit allows; capping it (raise the hard limit, e.g. LimitNOFILE=)"
        );
        return budget;
    }
    configured
}

/// Open connections per client address (IPv6 per /64, as the rate limits count).
#[derive(Debug)]
pub struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; its count is released when dropped.
#[derive(Debug)]
pub struct Admitted {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerIp { max: max.max(1), open: Mutex::new(HashMap::new()) })
    }

    /// Counts a new connection from `ip`, or `None` when that address already holds the most.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let key = key(ip);
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Admitted { table: self.clone(), key })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// How often at most a failing accept or a refused connection is logged.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A log line at most every [`LOG_EVERY`], carrying how many events it stands for.
#[derive(Debug, Default)]
pub struct Throttled {
    last: Option<Instant>,
    pending: u64,
}

impl Throttled {
    /// Counts one event; `Some(count)` (this one included, and those not logged since the last
    /// line) when it is time to log.
    pub fn record(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        match self.last {
            Some(last) if now.saturating_duration_since(last) < LOG_EVERY => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.pending))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_log_speaks_once_per_period_with_the_count() {
        let mut t = Throttled::default();
        let start = Instant::now();
        assert_eq!(t.record(start), Some(1));
        for i in 1..500 {
            assert_eq!(t.record(start + Duration::from_millis(i * 19)), None);
        }
        assert_eq!(t.record(start + LOG_EVERY + Duration::from_millis(1)), Some(500));
        assert_eq!(t.record(start + LOG_EVERY + Duration::from_millis(2)), None);
    }

    #[test]
    fn per_ip_counts_release_on_drop_and_ipv6_counts_per_64() {
        let table = PerIp::new(2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let first = table.admit(a).unwrap();
        let _second = table.admit(b).unwrap();
        assert!(table.admit(a).is_none(), "the same /64");
        assert!(table.admit("2001:db8:1:3::1".parse().unwrap()).is_some(), "another /64");
        drop(first);
        assert!(table.admit(a).is_some());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let _m = table.admit(mapped).unwrap();
        let _n = table.admit("10.0.0.1".parse().unwrap()).unwrap();
        assert!(table.admit("10.0.0.1".parse().unwrap()).is_none(), "mapped and plain are one client");
    }

    #[test]
    fn the_global_cap_fits_the_descriptor_limit() {
        assert_eq!(global_cap(0, Some(1024)), 768);
        assert_eq!(global_cap(4096, Some(1024)), 768);
        assert_eq!(global_cap(100, Some(1024)), 100);
        assert_eq!(global_cap(0, Some(64)), MIN_CONNECTIONS);
        assert_eq!(global_cap(0, None), 768);
    }
}
