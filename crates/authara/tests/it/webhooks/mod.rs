//! Webhooks and the domain events behind them: delivery, signatures, retries, order, the
//! contract's payloads, and every change recording its event in its own transaction.

mod delivery;
pub mod events;
