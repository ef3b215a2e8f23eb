//! `authara keys generate`.

pub fn generate() {
    let (kid, secret) = crate::services::keys::generate_hs256();
    println!("{kid}:{secret}");
    eprintln!("add it to AUTHARA_JWT_KEYS (comma-separated) and set AUTHARA_JWT_ACTIVE_KEY_ID={kid} to sign with it");
}
