//! Connections cannot be hoarded: slow or idle clients are cut after the header-read timeout,
//! and open connections are capped.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::app::TestApp;
use crate::harness::Engine;

/// A client that starts a request and never finishes its headers is disconnected; while the
/// cap is full of such clients, a health check waits for a slot instead of failing, and is
/// answered once the timeout frees them.
#[tokio::test]
async fn slow_header_clients_are_cut_off_and_cannot_starve_the_server() {
    let app =
        TestApp::start_with(Engine::Sqlite, &[("AUTHARA_HEADER_READ_TIMEOUT", "1s"), ("AUTHARA_MAX_CONNECTIONS", "8")])
            .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Raw sockets, to leave requests unfinished on purpose; none is answered but by a close or a
    // 408, and `/auth/health` is outside the contract (`contract::describes`).
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /auth/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        idle.push(s);
    }
    let started = Instant::now();
    let res = app.client().get("/auth/health").await;
    assert_eq!(res.status, 200);
    assert!(started.elapsed() < Duration::from_secs(8), "answered once the slow clients were cut");

    // The first slow clients were disconnected by the server (EOF or reset), not left open.
    let mut closed = 0;
    for s in idle.iter_mut().take(8) {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => closed += 1,
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                // hyper may answer 408 before closing; either way the connection ends.
                if text.starts_with("HTTP/1.1 408") {
                    closed += 1;
                }
            }
            Err(_) => {}
        }
    }
    assert_eq!(closed, 8, "every slow client that held a slot was cut off");
}

/// A kept-alive connection idle past the timeout is closed.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::start_with(Engine::Sqlite, &[("AUTHARA_HEADER_READ_TIMEOUT", "1s")]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // A raw socket, to watch the connection itself; `/auth/version` is outside the contract.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /auth/version HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let n =
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("closed within 5s").unwrap_or(0);
    assert_eq!(n, 0, "the server closed the idle connection");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the timeout");
}
