//! `authara healthcheck`: asks the running server for `/auth/health` (container HEALTHCHECK).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::config::Config;

/// True when the server answers 200 (healthy or degraded) within 3 seconds.
pub async fn run(config: &Config) -> bool {
    let mut addr = config.bind;
    if addr.ip().is_unspecified() {
        let ip = match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        addr = SocketAddr::new(ip, addr.port());
    }
    match tokio::time::timeout(Duration::from_secs(3), probe(addr)).await {
        Ok(Ok(status_line)) => {
            println!("{addr}: {status_line}");
            status_line.split_whitespace().nth(1) == Some("200")
        }
        Ok(Err(e)) => {
            eprintln!("{addr}: {e}");
            false
        }
        Err(_) => {
            eprintln!("{addr}: no answer within 3s");
            false
        }
    }
}

async fn probe(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET /auth/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    stream.take(64 * 1024).read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
