//! Email: the outbox (written in the change's transaction, backoff, attempts) and its worker
//! against a real SMTP server (outages, TLS, crashes, two workers).

mod delivery;
mod outbox;
mod tls;
