//! Serving with graceful shutdown: stop accepting, let in-flight requests finish (bounded).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Serves `app` until `shutdown` resolves, then drains in-flight requests for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let stopping = Arc::new(Notify::new());
    let signal = stopping.clone();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(
        async move {
            shutdown.await;
            tracing::info!(drain_ms = drain.as_millis() as u64, "shutting down: finishing in-flight requests");
            signal.notify_one();
        },
    );
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        res = server.into_future() => res,
        () = deadline => {
            tracing::warn!("shutdown: in-flight requests did not finish in time; closing them");
            Ok(())
        }
    }
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
