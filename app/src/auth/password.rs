//! Password hashing: argon2id with OWASP's parameters, off the async workers, a few at a time.
//! Each hash takes 19 MiB: hashing is bounded per process (about one per core), and the server
//! makes allocations that large go straight back to the system when freed (`mallopt` at start),
//! so sign-ins cannot grow the process's memory.

use crate::error::{AppError, AppResult};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{LazyLock, OnceLock};
use tokio::sync::Semaphore;

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
pub const ARGON2_M_KIB: u32 = 19_456;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

/// Hashes at once in this process: a property of the process (its cores and memory), whoever
/// asks, so it is kept here rather than per request.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Semaphore::new(cores.clamp(1, 4))
});

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .unwrap_or_else(|_| unreachable!("constant argon2 parameters are valid"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(crate) fn hash_blocking(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            AppError::Internal
        })
}

/// Runs `work` on a blocking thread once a hashing turn is free.
async fn with_turn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let _turn = HASHING
        .acquire()
        .await
        .map_err(|_| AppError::Unavailable("shutting down".into()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "hashing task failed");
        AppError::Internal
    })
}

/// Hash a password into a PHC string.
pub async fn hash_password(password: String) -> AppResult<String> {
    with_turn(move || hash_blocking(&password)).await?
}

/// A hash of a random password, verified against when the user name is unknown so that a
/// wrong name costs as much time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(&random_password())
            .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$invalid".into())
    })
}

/// Verify a password against a stored PHC string (or the dummy hash when there is none).
pub async fn verify_password(stored: Option<String>, password: String) -> bool {
    with_turn(move || {
        let has_user = stored.is_some();
        let phc = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = match PasswordHash::new(&phc) {
            Ok(parsed) => hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && has_user
    })
    .await
    .unwrap_or(false)
}

/// 20 characters from an alphabet without look-alikes: about 115 bits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut b = [0u8; 1];
        OsRng.fill_bytes(&mut b);
        // Rejection sampling keeps the distribution uniform.
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        if b[0] < limit {
            out.push(ALPHABET[b[0] as usize % ALPHABET.len()] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let phc = hash_blocking("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(hasher()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(hasher().verify_password(b"wrong", &parsed).is_err());
    }

    #[test]
    fn random_passwords_are_long_and_distinct() {
        let a = random_password();
        let b = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(super::super::validate_password(&a).is_ok());
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify_password(None, "anything at all".into()).await);
        let phc = hash_password("right password".into()).await.unwrap();
        assert!(verify_password(Some(phc.clone()), "right password".into()).await);
        assert!(!verify_password(Some(phc), "wrong password".into()).await);
        assert!(!verify_password(Some("not a phc string".into()), "x".into()).await);
    }
}
