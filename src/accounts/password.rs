//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB, 2 passes, one
//! lane — the `argon2` crate's defaults), stored as PHC strings. Hashing costs tens of
//! milliseconds of CPU and 19 MiB of memory, so servers run it through [`limited`]: on the
//! blocking pool, at most one hash per core at a time, the rest waiting in line for at most
//! [`QUEUE_WAIT`]. A burst of logins then costs bounded memory (cores × 19 MiB) and is
//! answered "busy" rather than taking the process down.

use std::sync::LazyLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 256;

/// Checks a new password against the policy: long enough, not absurdly long.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("a password needs at least {MIN_LEN} characters"));
    }
    if password.len() > MAX_LEN {
        return Err(format!("a password has at most {MAX_LEN} bytes"));
    }
    Ok(())
}

pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters and a random salt cannot fail")
        .to_string()
}

/// True if `password` matches `phc`. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    password.len() <= MAX_LEN
        && Argon2::default()
            .verify_password(password.as_bytes(), phc)
            .is_ok()
}

/// Spends the same work as a real check, for logins to accounts that do not exist, so the
/// answer's timing does not tell which usernames exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("wadash-dummy-password"));
    let _ = verify(password, phc);
}

/// How long a password check waits for its turn before the server answers "busy".
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Hashes computed at once: one per core.
pub fn concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

static GATE: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(concurrent_hashes()));

/// Why [`limited`] did not run its work.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many passwords are being checked at once; try again in a few seconds")]
    Busy,
    #[error("the password check failed: {0}")]
    Failed(String),
}

/// Runs password work (`hash`, `verify`, `verify_dummy`) on the blocking pool once one of
/// the [`concurrent_hashes`] slots is free, waiting at most [`QUEUE_WAIT`] for it.
pub async fn limited<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    let permit = tokio::time::timeout(QUEUE_WAIT, GATE.acquire())
        .await
        .map_err(|_| HashError::Busy)?
        .map_err(|_| HashError::Busy)?;
    // The permit travels with the work: a request that goes away mid-hash does not free the
    // slot before the hash (and its memory) is done.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| HashError::Failed(e.to_string()))
}

/// A random password for the first admin: 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(h, hash("correct horse battery"), "salted");
    }

    #[test]
    fn policy_and_generated_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("twelve chars").is_ok());
        assert!(check_policy(&"x".repeat(300)).is_err());
        let p = generate();
        assert_eq!(p.len(), 20);
        assert!(check_policy(&p).is_ok());
    }
}
