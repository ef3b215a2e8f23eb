//! Serving: HTTP/1.1 connections with a header-read timeout (which also bounds how long a
//! kept-alive connection may sit idle), a cap on open connections, and graceful shutdown (stop
//! accepting, let in-flight requests finish, bounded).
//!
//! why: `axum::serve` has no header-read or idle timeout and no connection cap; 200 idle
//! sockets were enough to starve the health check under a 128-descriptor limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// How connections are held.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's headers within this time, on a new connection and
    /// between requests on a kept-alive one; otherwise the connection is closed.
    pub header_read_timeout: Duration,
    /// Open connections at most; the next accept waits for one to close.
    pub max_connections: usize,
    /// After the shutdown signal: how long in-flight requests may finish.
    pub drain: Duration,
}

impl Limits {
    pub fn from_config(http: &crate::config::HttpConfig) -> Self {
        Limits {
            header_read_timeout: http.header_read_timeout,
            max_connections: http.max_connections,
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
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
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
