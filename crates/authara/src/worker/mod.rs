//! Background workers: `run_once()` does one pass (tests call it), `run()` loops it.

pub mod backup;
pub mod cleanup;
pub mod email;
pub mod instances;
pub mod webhooks;
