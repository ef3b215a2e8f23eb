//! A real SMTP server for tests, on a free port: receives mail into memory, and can refuse
//! (4xx), reject (5xx) or hang, to exercise retries and crashes.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// `451` on MAIL FROM: try again later.
    TempFail,
    /// `550` on RCPT TO: never.
    PermFail,
    /// Accept the connection and say nothing.
    Hang,
    /// Drop every connection at once, as a crashed server's port would.
    Down,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The 6-digit code on a line of its own.
    pub fn code(&self) -> Option<String> {
        self.data
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    }

    /// The message with quoted-printable soft line breaks and `=3D` undone (long lines, such as
    /// links, are sent quoted-printable).
    pub fn decoded(&self) -> String {
        self.data.replace("=\n", "").replace("=3D", "=")
    }

    /// The invitation token of the first `…/auth/invitations/accept?token=` link.
    pub fn invitation_token(&self) -> Option<String> {
        let text = self.decoded();
        let at = text.find("/auth/invitations/accept?token=")? + "/auth/invitations/accept?token=".len();
        let token: String =
            text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        (token.len() == 43).then_some(token)
    }
}

pub struct SmtpSink {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    /// How long each accepted message waits before its `250 queued` (a slow server).
    delay: Arc<Mutex<std::time::Duration>>,
    messages: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let delay = Arc::new(Mutex::new(std::time::Duration::ZERO));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (m, d, msgs) = (mode.clone(), delay.clone(), messages.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (m, d, msgs) = (m.clone(), d.clone(), msgs.clone());
                tokio::spawn(async move {
                    let _ = session(stream, m, d, msgs).await;
                });
            }
        });
        SmtpSink { port, mode, delay, messages, task }
    }

    /// Makes every message take `delay` before it is accepted, so that several senders are
    /// surely at work at once.
    pub fn set_delay(&self, delay: std::time::Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }

    pub fn to(&self, addr: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t == addr)).collect()
    }

    /// The code of the latest message to `addr`.
    pub fn code_for(&self, addr: &str) -> String {
        self.to(addr).last().and_then(Received::code).unwrap_or_else(|| panic!("no code mailed to {addr}"))
    }

    /// Settings that point authara at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AUTHARA_EMAIL_PROVIDER".into(), "smtp".into()),
            ("AUTHARA_EMAIL_FROM".into(), "Acme <auth@example.com>".into()),
            ("AUTHARA_EMAIL_SMTP_HOST".into(), "127.0.0.1".into()),
            ("AUTHARA_EMAIL_SMTP_PORT".into(), self.port.to_string()),
            ("AUTHARA_EMAIL_SMTP_TLS".into(), "false".into()),
            ("AUTHARA_EMAIL_SMTP_TIMEOUT".into(), "2s".into()),
        ]
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    mode: Arc<Mutex<Mode>>,
    delay: Arc<Mutex<std::time::Duration>>,
    messages: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let current = *mode.lock().unwrap();
    if current == Mode::Down {
        drop(stream);
        return Ok(());
    }
    if current == Mode::Hang {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        return Ok(());
    }
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            if current == Mode::TempFail { b"451 4.3.0 try again later\r\n" } else { b"250 ok\r\n" }
        } else if upper.starts_with("RCPT TO") {
            if current == Mode::PermFail {
                b"550 5.1.1 no such mailbox\r\n"
            } else {
                let addr = line[8..].trim().trim_start_matches(':').trim().trim_matches(['<', '>']).to_owned();
                to.push(addr);
                b"250 ok\r\n"
            }
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push('\n');
            }
            let delay = *delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            messages.lock().unwrap().push(Received { to: to.clone(), data });
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        w.write_all(reply).await?;
    }
    Ok(())
}
