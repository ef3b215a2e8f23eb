//! A real SMTP server for tests, on a free port: receives mail into memory, and can refuse
//! (4xx), reject (5xx) or hang, to exercise retries and crashes. It speaks plain SMTP, or TLS
//! (STARTTLS or implicit) with a certificate for `localhost` from a throwaway CA.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

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

/// How a TLS sink starts TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Offers `STARTTLS` after `EHLO`, and takes mail without it too (as many servers do), so
    /// a client that sends in plain text is seen.
    StartTls,
    /// TLS from the first byte, as on port 465.
    Implicit,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
    /// Whether the message came over TLS.
    pub tls: bool,
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
    shared: Arc<Shared>,
    /// The CA that signed the TLS sink's certificate, as a PEM file.
    ca: Option<(Tls, tempfile::TempDir)>,
    task: tokio::task::JoinHandle<()>,
}

/// What the test and the server's sessions share.
struct Shared {
    mode: Mutex<Mode>,
    /// How long each accepted message waits before its `250 queued` (a slow server).
    delay: Mutex<std::time::Duration>,
    messages: Mutex<Vec<Received>>,
    /// TLS handshakes the client gave up (it did not trust the certificate).
    failed_handshakes: AtomicUsize,
    tls: Option<(Tls, TlsAcceptor)>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// A plain-text server.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A TLS server whose certificate (for `localhost`) is signed by a CA of its own: clients
    /// trust it only through [`Self::ca_file`].
    pub async fn start_tls(tls: Tls) -> Self {
        let ca = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "authara test SMTP CA");
        let ca_cert = ca_params.self_signed(&ca).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca_cert, &ca).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        let mut sink = Self::start_with(Some((tls, TlsAcceptor::from(Arc::new(config))))).await;
        sink.ca = Some((tls, dir));
        sink
    }

    async fn start_with(tls: Option<(Tls, TlsAcceptor)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Accept),
            delay: Mutex::new(std::time::Duration::ZERO),
            messages: Mutex::new(Vec::new()),
            failed_handshakes: AtomicUsize::new(0),
            tls,
        });
        let server = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = server.clone();
                tokio::spawn(async move {
                    let _ = session(stream, &shared).await;
                });
            }
        });
        SmtpSink { port, shared, ca: None, task }
    }

    /// The PEM file of the CA that signed this TLS sink's certificate.
    pub fn ca_file(&self) -> String {
        let (_, dir) = self.ca.as_ref().expect("a TLS sink");
        dir.path().join("ca.pem").to_str().unwrap().to_owned()
    }

    /// TLS handshakes that did not complete (the client refused the certificate).
    pub fn failed_handshakes(&self) -> usize {
        self.shared.failed_handshakes.load(Ordering::SeqCst)
    }

    /// Makes every message take `delay` before it is accepted, so that several senders are
    /// surely at work at once.
    pub fn set_delay(&self, delay: std::time::Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    pub fn to(&self, addr: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t == addr)).collect()
    }

    /// The code of the latest message to `addr`.
    pub fn code_for(&self, addr: &str) -> String {
        self.to(addr).last().and_then(Received::code).unwrap_or_else(|| panic!("no code mailed to {addr}"))
    }

    /// Settings that point authara at this server: plain text for a plain sink; for a TLS sink,
    /// its host name, TLS in its mode, and its CA as the extra trusted root.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AUTHARA_EMAIL_PROVIDER".into(), "smtp".into()),
            ("AUTHARA_EMAIL_FROM".into(), "Acme <auth@example.com>".into()),
            ("AUTHARA_EMAIL_SMTP_PORT".into(), self.port.to_string()),
            ("AUTHARA_EMAIL_SMTP_TIMEOUT".into(), "2s".into()),
        ];
        match &self.ca {
            None => {
                env.push(("AUTHARA_EMAIL_SMTP_HOST".into(), "127.0.0.1".into()));
                env.push(("AUTHARA_EMAIL_SMTP_TLS".into(), "false".into()));
            }
            Some((tls, _)) => {
                let mode = match tls {
                    Tls::StartTls => "starttls",
                    Tls::Implicit => "implicit",
                };
                env.push(("AUTHARA_EMAIL_SMTP_HOST".into(), "localhost".into()));
                env.push(("AUTHARA_EMAIL_SMTP_TLS".into(), "true".into()));
                env.push(("AUTHARA_EMAIL_SMTP_TLS_MODE".into(), mode.into()));
                env.push(("AUTHARA_EMAIL_SMTP_CA_FILE".into(), self.ca_file()));
            }
        }
        env
    }
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let current = *shared.mode.lock().unwrap();
    if current == Mode::Down {
        drop(stream);
        return Ok(());
    }
    if current == Mode::Hang {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        return Ok(());
    }
    let handshake = |acceptor: &TlsAcceptor, stream| {
        let accept = acceptor.accept(stream);
        async move {
            let tls = accept.await;
            if tls.is_err() {
                shared.failed_handshakes.fetch_add(1, Ordering::SeqCst);
            }
            tls
        }
    };
    match &shared.tls {
        None => converse(stream, Phase::Plain, shared).await.map(drop),
        Some((Tls::Implicit, acceptor)) => {
            let Ok(tls) = handshake(acceptor, stream).await else { return Ok(()) };
            converse(tls, Phase::Secure { greet: true }, shared).await.map(drop)
        }
        Some((Tls::StartTls, acceptor)) => {
            let Some(plain) = converse(stream, Phase::OffersStartTls, shared).await? else { return Ok(()) };
            let Ok(tls) = handshake(acceptor, plain).await else { return Ok(()) };
            converse(tls, Phase::Secure { greet: false }, shared).await.map(drop)
        }
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Plain,
    OffersStartTls,
    /// After the handshake (the greeting was sent before STARTTLS, unless TLS is implicit).
    Secure {
        greet: bool,
    },
}

/// One SMTP conversation; returns the stream when the client asked for `STARTTLS`.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    phase: Phase,
    shared: &Shared,
) -> std::io::Result<Option<S>> {
    let current = *shared.mode.lock().unwrap();
    let (r, mut w) = tokio::io::split(stream);
    let mut lines = BufReader::new(r).lines();
    if !matches!(phase, Phase::Secure { greet: false }) {
        w.write_all(b"220 sink ESMTP\r\n").await?;
    }
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if matches!(phase, Phase::OffersStartTls) {
                b"250-sink\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            } else {
                b"250-sink\r\n250 8BITMIME\r\n"
            }
        } else if upper == "STARTTLS" && matches!(phase, Phase::OffersStartTls) {
            w.write_all(b"220 ready to start TLS\r\n").await?;
            // The client waits for that reply before its handshake: nothing is buffered.
            return Ok(Some(lines.into_inner().into_inner().unsplit(w)));
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
            let delay = *shared.delay.lock().unwrap();
            tokio::time::sleep(delay).await;
            let tls = matches!(phase, Phase::Secure { .. });
            shared.messages.lock().unwrap().push(Received { to: to.clone(), data, tls });
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(None);
        } else {
            b"250 ok\r\n"
        };
        w.write_all(reply).await?;
    }
    Ok(None)
}
