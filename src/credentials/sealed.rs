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
use sha2::Digest;

/// A 32-byte sealing key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "WADASH_SECRET_KEY must be 32 random bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error("the stored value is not in a format this version of wadash knows")]
    Format,
    #[error("the stored value was sealed with another WADASH_SECRET_KEY (key id {0})")]
    WrongKey(String),
    #[error("the stored value does not verify: it was altered or is corrupt")]
    Tampered,
}

impl SecretKey {
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| SealError::BadKey)?
        } else {
            STANDARD.decode(t).map_err(|_| SealError::BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self(key))
    }

    /// Names the key without revealing it.
    pub fn id(&self) -> String {
        let d = sha2::Sha256::digest(self.0);
        crate::domain::hex(&d[..4])
    }

    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let cipher = ChaCha20Poly1305::new(&Key::from(self.0));
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
        ChaCha20Poly1305::new(&Key::from(self.0))
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
        SecretKey([b; 32])
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

    #[test]
    fn keys_are_32_bytes_in_base64_or_hex() {
        let b64 = STANDARD.encode([1u8; 32]);
        let hex = "01".repeat(32);
        assert_eq!(SecretKey::parse(&b64).unwrap().0, [1u8; 32]);
        assert_eq!(SecretKey::parse(&hex).unwrap().0, [1u8; 32]);
        assert_eq!(SecretKey::parse("short").unwrap_err(), SealError::BadKey);
        assert_eq!(
            SecretKey::parse(&STANDARD.encode([1u8; 16])).unwrap_err(),
            SealError::BadKey
        );
        assert!(!format!("{:?}", key(1)).contains("1, 1"));
    }
}
