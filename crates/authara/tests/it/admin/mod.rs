//! The admin console and the command line's admin commands.

pub mod console;
pub mod search;
