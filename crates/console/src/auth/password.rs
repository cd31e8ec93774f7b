//! Password hashing with argon2id (the `argon2` crate's defaults, PHC string format), so the
//! service stores only a salted, memory-hard hash and `dingsync console add-user` and the
//! login check agree on the format.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash as PhcHash};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("stored password hash is not a valid PHC string")]
    BadHash(#[source] argon2::password_hash::Error),
    #[error("hashing the password failed")]
    Hashing(#[source] argon2::password_hash::Error),
}

/// A stored argon2 PHC string. `Debug` hides it: a hash is not a secret, but it is an
/// offline-guessing target that has no business in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The shortest password `hash_password` accepts.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes a new password with a fresh random salt.
pub fn hash_password(password: &str) -> Result<PasswordHash, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort {
            min: MIN_PASSWORD_LEN,
        });
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hashing)?;
    Ok(PasswordHash(hash.to_string()))
}

impl PasswordHash {
    /// Takes a PHC string from storage, checking that it parses.
    pub fn from_phc(phc: impl Into<String>) -> Result<Self, PasswordError> {
        let phc = phc.into();
        PhcHash::new(&phc).map_err(PasswordError::BadHash)?;
        Ok(PasswordHash(phc))
    }

    /// The PHC string, for the service to store.
    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// Whether `password` matches (argon2 compares in constant time).
    pub fn verify(&self, password: &str) -> bool {
        match PhcHash::new(&self.0) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// Spends the time of one verification, so an unknown name answers as slowly as a known one
/// and response times do not reveal which names exist.
pub(crate) fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<PasswordHash>> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not-a-real-password-0").ok());
    if let Some(hash) = dummy {
        let _ = hash.verify(password);
    }
}
