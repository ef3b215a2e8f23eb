//! The Redis provider: rate-limit windows shared by every instance (one Lua script, one round
//! trip, both windows checked and counted atomically), and a channel on which every instance
//! announces revoked sessions and changed users and organizations.
//!
//! Redis is an accelerator, never the source of truth. When it cannot be reached, limits fall
//! back to this process's counters, and [`super::Cache::store_check_needed`] tells the
//! authenticator to read the session's state from the database on every request until the
//! subscriber is connected again and has caught up from the database. After a failure, commands
//! skip Redis for a second and then one caller (not every caller) probes it again, so an outage
//! costs one bounded wait per second, not one per request. The subscriber pings Redis every two
//! seconds, so a connection that died silently is noticed and replaced. Revocations whose
//! announcement failed are kept (for one access-token lifetime) and announced again.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use uuid::Uuid;

use super::limiter::Key;
use crate::config::Limit;
use crate::domain::{OrgId, SessionId, UserId};

/// The channel every instance publishes to and listens on (pub/sub ignores the database
/// number, so the channel carries it: two deployments on one server do not hear each other).
fn channel(db: i64) -> String {
    format!("authara:{db}:events")
}
/// Connection and response timeout of every command.
const TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, commands skip Redis for this long (then one request probes it again).
const RETRY_AFTER_FAILURE_MS: i64 = 1000;
/// The subscriber pings Redis, and announces again what could not be announced, this often
/// (whatever the traffic on the channel).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Revocations waiting to be announced again, at most.
const PENDING_CAPACITY: usize = 10_000;

/// Checks every window first, then counts the attempt in all of them (a refused attempt counts
/// nowhere). KEYS: the windows; ARGV: (limit, window in ms) per key. Returns 0 when allowed,
/// else the milliseconds until the blocking window resets.
const LIMIT_SCRIPT: &str = r"
for i, k in ipairs(KEYS) do
  local c = tonumber(redis.call('GET', k) or '0')
  if c >= tonumber(ARGV[2 * i - 1]) then
    local t = redis.call('PTTL', k)
    if t < 0 then
      redis.call('PEXPIRE', k, ARGV[2 * i])
      t = tonumber(ARGV[2 * i])
    end
    if t < 1 then t = 1 end
    return t
  end
end
for i, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 or redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, ARGV[2 * i])
  end
end
return 0
";

/// [`LIMIT_SCRIPT`]'s check without the count: 0 when an attempt would be allowed, else the
/// milliseconds until the blocking window resets.
const PEEK_SCRIPT: &str = r"
for i, k in ipairs(KEYS) do
  local c = tonumber(redis.call('GET', k) or '0')
  if c >= tonumber(ARGV[2 * i - 1]) then
    local t = redis.call('PTTL', k)
    if t < 1 then t = 1 end
    return t
  end
end
return 0
";

/// A window's Redis key: the prefix and the key's bytes (Redis keys are binary-safe).
fn rate_key(key: &Key) -> Vec<u8> {
    [b"authara:rl:".as_slice(), key.as_slice()].concat()
}

/// What another instance announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// The session's access tokens must stop working.
    Revoked(SessionId),
    /// Cached reads of this user are stale.
    User(UserId),
    /// Cached profiles showing this organization are stale.
    Org(OrgId),
}

impl Announcement {
    /// `<sender>:<kind>:<id>`: the sender's instance id lets it skip its own announcements.
    fn encode(self, sender: u64) -> String {
        match self {
            Announcement::Revoked(s) => format!("{sender:x}:rev:{s}"),
            Announcement::User(u) => format!("{sender:x}:user:{u}"),
            Announcement::Org(o) => format!("{sender:x}:org:{o}"),
        }
    }

    /// The sender and the announcement.
    fn decode(text: &str) -> Option<(u64, Self)> {
        let (sender, text) = text.split_once(':')?;
        let sender = u64::from_str_radix(sender, 16).ok()?;
        let (kind, id) = text.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        let a = match kind {
            "rev" => Announcement::Revoked(SessionId(id)),
            "user" => Announcement::User(UserId(id)),
            "org" => Announcement::Org(OrgId(id)),
            _ => return None,
        };
        Some((sender, a))
    }
}

/// A live subscription to the announcements channel.
pub struct Subscription {
    redis: Arc<Redis>,
    sink: PubSubSink,
    stream: PubSubStream,
    heartbeat: tokio::time::Interval,
}

impl Subscription {
    /// The next announcement of another instance (this one's own are skipped: it applied them
    /// when it made them); `None` when the connection is lost or a heartbeat goes unanswered.
    /// Heartbeats run on a fixed beat however busy the channel is, and announce again what
    /// could not be announced before.
    pub async fn next(&mut self) -> Option<Announcement> {
        loop {
            tokio::select! {
                msg = self.stream.next() => {
                    let msg = msg?;
                    match std::str::from_utf8(msg.get_payload_bytes()).ok().and_then(Announcement::decode) {
                        Some((sender, _)) if sender == self.redis.instance => {}
                        Some((_, a)) => return Some(a),
                        None => tracing::warn!("ignoring a malformed announcement on {}", self.redis.channel),
                    }
                }
                _ = self.heartbeat.tick() => {
                    match tokio::time::timeout(TIMEOUT, self.sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => self.redis.announce_pending().await,
                        _ => return None,
                    }
                }
            }
        }
    }
}

pub(super) struct Redis {
    client: redis::Client,
    channel: String,
    /// This process's id on the channel.
    instance: u64,
    conn: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
    peek_script: redis::Script,
    started: Instant,
    /// Milliseconds since `started` before which commands skip Redis.
    skip_until_ms: AtomicI64,
    /// The last command succeeded.
    reachable: AtomicBool,
    /// The last command got an error reply (logged once until a command succeeds).
    refusing: AtomicBool,
    /// The subscriber is connected and has caught up.
    listening: AtomicBool,
    /// Revocations whose announcement failed, with the time (ms since `started`) until which
    /// their access tokens could still be presented.
    pending: Mutex<Vec<(SessionId, i64)>>,
    access_ttl_ms: i64,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("up", &self.up()).finish_non_exhaustive()
    }
}

impl Redis {
    pub(super) fn new(
        host: &str,
        port: u16,
        password: Option<&str>,
        db: i64,
        access_ttl_ms: i64,
    ) -> Result<Self, String> {
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(host.to_owned(), port),
            redis: redis::RedisConnectionInfo {
                db,
                password: password.filter(|p| !p.is_empty()).map(str::to_owned),
                ..Default::default()
            },
        };
        let client = redis::Client::open(info).map_err(|e| format!("invalid Redis settings: {e}"))?;
        Ok(Redis {
            client,
            channel: channel(db),
            instance: rand::random(),
            conn: Mutex::new(None),
            script: redis::Script::new(LIMIT_SCRIPT),
            peek_script: redis::Script::new(PEEK_SCRIPT),
            started: Instant::now(),
            skip_until_ms: AtomicI64::new(0),
            reachable: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            pending: Mutex::new(Vec::new()),
            access_ttl_ms,
        })
    }

    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Redis could not be reached: skip it for a second, and build a fresh connection next time.
    fn failed(&self, what: &str, e: &dyn std::fmt::Display) {
        self.skip_until_ms.store(self.elapsed_ms() + RETRY_AFTER_FAILURE_MS, Ordering::Relaxed);
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = None;
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %e, "Redis unreachable ({what}); using per-instance limits and checking revocations in the database");
        }
    }

    /// A command failed: unreachable for I/O errors and timeouts; an error reply (out of
    /// memory, read-only replica, missing permission) only fails this command, and is logged
    /// once until a command succeeds again.
    fn command_failed(&self, what: &str, e: &redis::RedisError) {
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
            self.failed(what, e);
        } else if !self.refusing.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "Redis refuses commands ({what}); using per-instance limits for them");
        }
    }

    fn succeeded(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis reachable");
        }
        if self.refusing.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis accepts commands again");
        }
    }

    /// A connection. While Redis is failing, callers skip it for a second; then exactly one
    /// caller (the one that moves the window on) probes it, the others skip it meanwhile.
    async fn conn(&self) -> Option<ConnectionManager> {
        if !self.reachable.load(Ordering::Relaxed) {
            let now = self.elapsed_ms();
            let until = self.skip_until_ms.load(Ordering::Relaxed);
            if now < until
                || self
                    .skip_until_ms
                    .compare_exchange(until, now + RETRY_AFTER_FAILURE_MS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return None;
            }
        }
        if let Some(c) = self.conn.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Some(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(0);
        match tokio::time::timeout(TIMEOUT, ConnectionManager::new_with_config(self.client.clone(), config)).await {
            Ok(Ok(c)) => {
                *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.failed("connecting", &e);
                None
            }
            Err(_) => {
                self.failed("connecting", &"timed out");
                None
            }
        }
    }

    /// Runs one command with the timeout around everything (a reconnection included).
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        match tokio::time::timeout(TIMEOUT, command).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Some(v)
            }
            Ok(Err(e)) => {
                self.command_failed(what, &e);
                None
            }
            Err(_) => {
                self.failed(what, &"timed out");
                None
            }
        }
    }

    /// Counts an attempt in shared windows: `Some(0)` allowed, `Some(ms)` blocked for that
    /// long, `None` when Redis cannot answer (the caller counts locally).
    pub(super) async fn limit(&self, plan: &[(Key, Limit)]) -> Option<i64> {
        let mut conn = self.conn().await?;
        let mut call = self.script.prepare_invoke();
        for (key, limit) in plan {
            let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX).max(1);
            call.key(rate_key(key)).arg(limit.limit).arg(window_ms);
        }
        self.run("rate limit", call.invoke_async::<i64>(&mut conn)).await
    }

    /// [`Redis::limit`] without counting the attempt.
    pub(super) async fn peek(&self, plan: &[(Key, Limit)]) -> Option<i64> {
        let mut conn = self.conn().await?;
        let mut call = self.peek_script.prepare_invoke();
        for (key, limit) in plan {
            let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX).max(1);
            call.key(rate_key(key)).arg(limit.limit).arg(window_ms);
        }
        self.run("rate limit", call.invoke_async::<i64>(&mut conn)).await
    }

    async fn publish(&self, what: Announcement) -> bool {
        let Some(mut conn) = self.conn().await else { return false };
        let cmd = redis::cmd("PUBLISH").arg(&self.channel).arg(what.encode(self.instance)).to_owned();
        self.run::<i64>("publishing", cmd.query_async(&mut conn)).await.is_some()
    }

    /// Announces revocations, all in one round trip.
    async fn publish_revoked(&self, sessions: &[SessionId]) -> bool {
        let Some(mut conn) = self.conn().await else { return false };
        let mut pipe = redis::pipe();
        for sid in sessions {
            pipe.cmd("PUBLISH").arg(&self.channel).arg(Announcement::Revoked(*sid).encode(self.instance)).ignore();
        }
        self.run::<()>("publishing", pipe.query_async(&mut conn)).await.is_some()
    }

    /// Tells every instance that a user or an organization changed.
    pub(super) async fn announce(&self, what: Announcement) {
        self.publish(what).await;
    }

    /// Tells every instance that these sessions are revoked. Revocations that cannot be
    /// announced now are kept and announced again by the subscriber's next heartbeat (until
    /// their tokens have expired anyway).
    pub(super) async fn announce_revoked(&self, sessions: &[SessionId]) {
        if sessions.is_empty() || self.publish_revoked(sessions).await {
            return;
        }
        let until = self.elapsed_ms().saturating_add(self.access_ttl_ms);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let room = PENDING_CAPACITY.saturating_sub(pending.len());
        if sessions.len() > room {
            tracing::warn!(
                lost = sessions.len() - room,
                "too many revocations waiting for Redis; some are not announced again"
            );
        }
        pending.extend(sessions.iter().take(room).map(|sid| (*sid, until)));
    }

    /// Announces again the revocations that could not be announced, in one round trip.
    async fn announce_pending(&self) {
        let now = self.elapsed_ms();
        let due: Vec<(SessionId, i64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *pending).into_iter().filter(|(_, until)| *until > now).collect()
        };
        let ids: Vec<SessionId> = due.iter().map(|(sid, _)| *sid).collect();
        if !ids.is_empty() && !self.publish_revoked(&ids).await {
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).extend(due);
        }
    }

    /// Connects a subscriber to the announcements channel.
    pub(super) async fn subscribe(self: &Arc<Self>) -> Result<Subscription, String> {
        let mut pubsub = match tokio::time::timeout(TIMEOUT * 2, self.client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                self.failed("subscribing", &e);
                return Err(e.to_string());
            }
            Err(_) => {
                self.failed("subscribing", &"timed out");
                return Err("timed out".to_owned());
            }
        };
        match tokio::time::timeout(TIMEOUT, pubsub.subscribe(&self.channel)).await {
            Ok(Ok(())) => {
                let (sink, stream) = pubsub.split();
                let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
                heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                Ok(Subscription { redis: Arc::clone(self), sink, stream, heartbeat })
            }
            Ok(Err(e)) => {
                self.failed("subscribing", &e);
                Err(e.to_string())
            }
            Err(_) => {
                self.failed("subscribing", &"timed out");
                Err("timed out".to_owned())
            }
        }
    }

    pub(super) fn set_listening(&self, on: bool) {
        let was = self.listening.swap(on, Ordering::Relaxed);
        if on {
            self.succeeded();
        } else if was {
            tracing::warn!("Redis subscriber disconnected; checking revocations in the database until it is back");
        }
    }

    pub(super) fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    pub(super) fn up(&self) -> bool {
        self.reachable.load(Ordering::Relaxed) && self.listening()
    }

    /// Pings Redis (unless another caller is probing it right now) and says what the health
    /// check shows.
    pub(super) async fn health(&self) -> (bool, Option<String>) {
        if let Some(mut conn) = self.conn().await {
            let cmd = redis::cmd("PING");
            self.run::<String>("ping", cmd.query_async(&mut conn)).await;
        }
        let up = self.up();
        let detail = if up {
            None
        } else if self.reachable.load(Ordering::Relaxed) {
            Some("Redis reachable; subscriber reconnecting, revocations checked in the database".to_owned())
        } else {
            // The reason (which may name hosts or quote Redis's replies) is in the log, not on
            // this unauthenticated route.
            Some("Redis unreachable; limits per instance, revocations checked in the database".to_owned())
        };
        (up, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_garbage_is_refused() {
        for a in [
            Announcement::Revoked(SessionId::new()),
            Announcement::User(UserId::new()),
            Announcement::Org(OrgId::new()),
        ] {
            assert_eq!(Announcement::decode(&a.encode(0xab)), Some((0xab, a)));
        }
        assert_eq!(Announcement::decode("ab:rev:not-a-uuid"), None);
        assert_eq!(Announcement::decode("ab:boom:00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(Announcement::decode("rev:00000000-0000-0000-0000-000000000000"), None, "no sender");
        assert_eq!(Announcement::decode(""), None);
    }

    /// A "Redis" that accepts connections and closes them at once, counting them.
    async fn closing_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        (port, accepted)
    }

    /// After a failure every caller skips Redis for a second without touching the network;
    /// once the second has passed, one caller of many probes it (one connection attempt), the
    /// others keep skipping.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn after_a_failure_callers_skip_redis_and_one_probes_per_window() {
        let (port, accepted) = closing_server().await;
        let r = Arc::new(Redis::new("127.0.0.1", port, None, 0, 600_000).unwrap());
        assert!(r.conn().await.is_none(), "the first caller tries and fails");
        let tries = accepted.load(Ordering::SeqCst);
        assert!(tries >= 1, "it did try");
        let until = r.skip_until_ms.load(Ordering::SeqCst);
        assert!(until - r.elapsed_ms() > RETRY_AFTER_FAILURE_MS / 2, "a window of about a second");
        for _ in 0..50 {
            assert!(r.conn().await.is_none());
        }
        assert_eq!(accepted.load(Ordering::SeqCst), tries, "nobody touched the network inside the window");

        // The window is over: twenty callers at once, one probe.
        r.skip_until_ms.store(r.elapsed_ms() - 1, Ordering::SeqCst);
        let callers = (0..20).map(|_| {
            let r = Arc::clone(&r);
            tokio::spawn(async move { r.conn().await.is_none() })
        });
        for c in callers {
            assert!(c.await.unwrap(), "still failing");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2 * tries, "exactly one caller probed");
        assert!(!r.up());
    }
}
