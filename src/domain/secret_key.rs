//! The key that seals secrets at rest (`WADASH_SECRET_KEY`): 32 bytes, written as base64 or
//! hex; sealing and opening with it live in `credentials::sealed`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest;

/// A 32-byte sealing key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

/// A key that is not 32 bytes of base64 or hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "WADASH_SECRET_KEY must be 32 random bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`)"
)]
pub struct BadKey;

impl SecretKey {
    pub fn parse(text: &str) -> Result<Self, BadKey> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| BadKey)?
        } else {
            STANDARD.decode(t).map_err(|_| BadKey)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| BadKey)?;
        Ok(Self(key))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Names the key without revealing it.
    pub fn id(&self) -> String {
        let d = sha2::Sha256::digest(self.0);
        super::hex(&d[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_bytes_of_base64_or_hex() {
        let hex_key = "07".repeat(32);
        assert_eq!(SecretKey::parse(&hex_key).unwrap().bytes(), &[7u8; 32]);
        let b64 = STANDARD.encode([9u8; 32]);
        assert_eq!(
            SecretKey::parse(&format!(" {b64}\n")).unwrap().bytes(),
            &[9u8; 32]
        );
        assert_eq!(SecretKey::parse("short").unwrap_err(), BadKey);
        assert_eq!(
            SecretKey::parse(&STANDARD.encode([1u8; 31])).unwrap_err(),
            BadKey
        );
        let id = SecretKey::from_bytes([7; 32]).id();
        assert_eq!(id.len(), 8);
        assert!(!format!("{:?}", SecretKey::from_bytes([7; 32])).contains("0707"));
    }
}
