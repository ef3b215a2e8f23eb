//! A software WebAuthn authenticator (P-256 through `ring`, a few lines of CBOR) that answers the
//! server's options as a browser and a platform authenticator would, and can be told to get
//! things wrong: another origin or RP ID, no user verification, a bad signature, an old counter.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The origin and RP ID the tests configure (`PUBLIC_URL`).
pub const ORIGIN: &str = "http://localhost:8080";
pub const RP_ID: &str = "localhost";

/// How to answer one ceremony.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub origin: String,
    pub rp_id: String,
    pub user_verified: bool,
    pub tamper_signature: bool,
    /// Overrides the signature counter sent (else the authenticator's own, incremented).
    pub counter: Option<u32>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            origin: ORIGIN.to_owned(),
            rp_id: RP_ID.to_owned(),
            user_verified: true,
            tamper_signature: false,
            counter: None,
        }
    }
}

/// One discoverable credential.
pub struct SoftAuthenticator {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub counter: u32,
}

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn cbor_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 { cbor_head(out, 0, i as u64) } else { cbor_head(out, 1, (-1 - i) as u64) }
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    cbor_head(out, 2, b.len() as u64);
    out.extend(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend(s.as_bytes());
}

pub fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

pub fn unb64(s: &str) -> Vec<u8> {
    B64.decode(s.trim_end_matches('=')).unwrap()
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftAuthenticator {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let credential_id: Vec<u8> =
            uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).copied().collect();
        SoftAuthenticator { key, credential_id, user_handle: Vec::new(), counter: 0 }
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref(); // 0x04 || x || y
        let mut out = Vec::new();
        cbor_head(&mut out, 5, 5);
        cbor_int(&mut out, 1);
        cbor_int(&mut out, 2); // kty: EC2
        cbor_int(&mut out, 3);
        cbor_int(&mut out, -7); // alg: ES256
        cbor_int(&mut out, -1);
        cbor_int(&mut out, 1); // crv: P-256
        cbor_int(&mut out, -2);
        cbor_bytes(&mut out, &point[1..33]);
        cbor_int(&mut out, -3);
        cbor_bytes(&mut out, &point[33..65]);
        out
    }

    fn next_counter(&mut self, k: &Knobs) -> u32 {
        match k.counter {
            Some(c) => c,
            None => {
                self.counter += 1;
                self.counter
            }
        }
    }

    fn auth_data(&self, k: &Knobs, counter: u32, attested: bool) -> Vec<u8> {
        let mut data = Sha256::digest(k.rp_id.as_bytes()).to_vec();
        let mut flags = 0x01; // UP
        if k.user_verified {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        data.push(flags);
        data.extend(counter.to_be_bytes());
        if attested {
            data.extend([0u8; 16]); // AAGUID
            data.extend((self.credential_id.len() as u16).to_be_bytes());
            data.extend(&self.credential_id);
            data.extend(self.cose_key());
        }
        data
    }

    fn client_data(kind: &str, options: &Value, k: &Knobs) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"].as_str().expect("options carry a challenge");
        json!({"type": kind, "challenge": challenge, "origin": k.origin, "crossOrigin": false}).to_string().into_bytes()
    }

    /// `navigator.credentials.create()` for `options` (`{"publicKey": …}`).
    pub fn register(&mut self, options: &Value, k: &Knobs) -> Value {
        self.user_handle = unb64(options["publicKey"]["user"]["id"].as_str().unwrap());
        let counter = self.next_counter(k);
        let client_data = Self::client_data("webauthn.create", options, k);
        let auth_data = self.auth_data(k, counter, true);
        let mut att = Vec::new();
        cbor_head(&mut att, 5, 3);
        cbor_text(&mut att, "fmt");
        cbor_text(&mut att, "none");
        cbor_text(&mut att, "attStmt");
        cbor_head(&mut att, 5, 0);
        cbor_text(&mut att, "authData");
        cbor_bytes(&mut att, &auth_data);
        let id = b64(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key", "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {"clientDataJSON": b64(&client_data), "attestationObject": b64(&att), "transports": ["internal"]}
        })
    }

    /// `navigator.credentials.get()` for `options`, as the discoverable credential it holds.
    pub fn assert(&mut self, options: &Value, k: &Knobs) -> Value {
        let counter = self.next_counter(k);
        let client_data = Self::client_data("webauthn.get", options, k);
        let auth_data = self.auth_data(k, counter, false);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let mut signature = self.key.sign(&SystemRandom::new(), &signed).unwrap().as_ref().to_vec();
        if k.tamper_signature {
            let last = signature.len() - 1;
            signature[last] ^= 0x01;
        }
        let id = b64(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key", "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data), "authenticatorData": b64(&auth_data),
                "signature": b64(&signature), "userHandle": b64(&self.user_handle)
            }
        })
    }
}
