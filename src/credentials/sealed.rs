//! Secrets at rest: credentials set through the API are stored sealed with ChaCha20-Poly1305
//! under a 32-byte key from `WADASH_SECRET_KEY` (base64 or hex; `openssl rand -base64 32`).
//!
//! Sealed text: `v1.<key id>.<base64(nonce ‖ ciphertext ‖ tag)>`. The key id (the first bytes
//! of the key's SHA-256) tells a wrong key apart from tampered data; the purpose string is
//! bound as associated data, so a sealed value cannot be moved to another use.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

pub use crate::domain::secret_key::SecretKey;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the stored value is not in a format this version of wadash knows")]
    Format,
    #[error("the stored value was sealed with another WADASH_SECRET_KEY (key id {0})")]
    WrongKey(String),
    #[error("the stored value does not verify: it was altered or is corrupt")]
    Tampered,
}

impl SecretKey {
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let cipher = ChaCha20Poly1305::new(&Key::from(*self.bytes()));
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce);
        let ct = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a small value cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("v1.{}.{}", self.id(), STANDARD.encode(blob))
    }

    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Format);
        };
        if id != self.id() {
            return Err(SealError::WrongKey(id.to_owned()));
        }
        let blob = STANDARD.decode(data).map_err(|_| SealError::Format)?;
        if blob.len() < 12 + 16 {
            return Err(SealError::Format);
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Format)?;
        ChaCha20Poly1305::new(&Key::from(*self.bytes()))
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_purpose_only() {
        let k = key(7);
        let sealed = k.seal("twilio", b"auth-token-value");
        assert!(!sealed.contains("auth-token-value"));
        assert_ne!(sealed, k.seal("twilio", b"auth-token-value"), "fresh nonce");
        assert_eq!(k.open("twilio", &sealed).unwrap(), b"auth-token-value");
        assert_eq!(k.open("other", &sealed), Err(SealError::Tampered));
        assert!(matches!(
            key(8).open("twilio", &sealed),
            Err(SealError::WrongKey(_))
        ));
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(k.open("twilio", &tampered), Err(SealError::Tampered));
        assert_eq!(k.open("twilio", "v2.x.y"), Err(SealError::Format));
    }
}
