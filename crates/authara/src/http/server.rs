//! Serving: HTTP/1.1 connections with a header-read timeout (which also bounds how long a
//! kept-alive connection may sit idle) and a shorter one for a connection's first request, caps
//! on open connections (per client address and in all, [`super::admission`]), and graceful
//! shutdown (stop accepting, let in-flight requests finish, bounded).
//!
//! why: `axum::serve` has no header-read or idle timeout and no connection cap; 200 idle
//! sockets were enough to starve the health check under a 128-descriptor limit.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use super::admission::{self, PerIp, Throttled};

/// How connections are held.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's headers within this time, on a new connection and
    /// between requests on a kept-alive one; otherwise the connection is closed.
    pub header_read_timeout: Duration,
    /// Open connections at most; the next accept waits for one to close.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most; more are closed as
    /// soon as they are accepted.
    pub max_connections_per_ip: usize,
    /// A new connection must have sent its first request's headers within this time (at most
    /// `header_read_timeout`).
    pub first_request_timeout: Duration,
    /// After the shutdown signal: how long in-flight requests may finish.
    pub drain: Duration,
}

impl Limits {
    /// The configured limits; raises the soft open-file limit to the hard one and fits the
    /// global connection cap under it ([`admission::global_cap`]).
    pub fn from_config(http: &crate::config::HttpConfig) -> Self {
        let descriptors = admission::raise_descriptor_limit();
        let max_connections = admission::global_cap(http.max_connections, descriptors);
        tracing::debug!(max_connections, descriptors, "connection cap");
        Limits {
            header_read_timeout: http.header_read_timeout,
            max_connections,
            max_connections_per_ip: http.max_connections_per_ip,
            first_request_timeout: http.first_request_timeout.min(http.header_read_timeout),
            drain: http.shutdown_timeout,
        }
    }
}

/// Serves `app` until `shutdown` resolves, then drains in-flight requests for at most
/// `limits.drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let (mut accept_failures, mut refusals) = (Throttled::default(), Throttled::default());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning, and say so
                    // once in a while rather than at every retry.
                    if let Some(count) = accept_failures.record(Instant::now()) {
                        tracing::warn!(error = %e, count, "accept failed (count: failures since the last such line)");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = per_ip.admit(peer.ip()) else {
            // Closed at once: it frees its slot, and the client learns nothing by waiting.
            drop(stream);
            if let Some(count) = refusals.record(Instant::now()) {
                tracing::warn!(
                    count,
                    "closed connections from a client address over AUTHARA_MAX_CONNECTIONS_PER_IP (count: since the last such line)"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let requested = Arc::new(AtomicBool::new(false));
        let seen = requested.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let first_request = limits.first_request_timeout;
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = match tokio::time::timeout(first_request, conn.as_mut()).await {
                Ok(ended) => Some(ended),
                // No request yet: dropping the connection closes it.
                Err(_) if !requested.load(Ordering::Relaxed) => None,
                Err(_) => Some(conn.await),
            };
            if let Some(Err(e)) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((slot, admitted));
        });
    }
    drop(listener);
    tracing::info!(drain_ms = limits.drain.as_millis() as u64, "shutting down: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain) => {
            tracing::warn!("shutdown: in-flight requests did not finish in time; closing them");
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
