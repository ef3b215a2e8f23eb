//! Sessions: refresh (rotation, reuse, grace, the race for a successor), signing out and
//! revocation, cookies, signing keys, the session checks of the pages, and the store's rotation.

mod cookies;
mod keys;
mod pages;
mod refresh;
mod refresh_race;
mod revocation;
mod sign_out;
mod store;
