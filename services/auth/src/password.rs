//! Password hashing with scrypt at OWASP's recommended cost (N = 2^17, r = 8,
//! p = 1: about 128 MiB and a few hundred milliseconds per hash), stored as
//! PHC strings. Hashing runs on the blocking pool, at most one hash per core
//! at a time, so it never stalls the async runtime and memory stays bounded.

use std::sync::Arc;

use anyhow::Context as _;
use scrypt::Scrypt;
use scrypt::password_hash::phc::PasswordHash;
use scrypt::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::{OnceCell, Semaphore};

/// Passwords checked against a stored (or decoy) hash (counter): the work
/// the front door's limits bound.
pub const PASSWORD_VERIFICATIONS: &str = "auth_password_verifications_total";

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of nothing in particular, verified against when the email is
    /// unknown, so that an unknown email costs the same time as a wrong password.
    decoy: Arc<OnceCell<String>>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    /// The scrypt parameters new hashes use.
    pub fn params() -> scrypt::Params {
        scrypt::Params::RECOMMENDED
    }

    /// Hashes `password` into a PHC string with a fresh random salt.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.blocking(move || {
            Scrypt::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await
    }

    /// Whether `password` matches `stored`. With `stored = None` (unknown
    /// user) it does the same work against a decoy and returns false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let phc = match stored {
            Some(s) => s,
            None => self.decoy().await?,
        };
        metrics::counter!(PASSWORD_VERIFICATIONS).increment(1);
        let matches = self
            .blocking(move || {
                let hash = PasswordHash::new(&phc)
                    .map_err(|e| anyhow::anyhow!("stored hash is not PHC: {e}"))?;
                Ok(Scrypt::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    async fn decoy(&self) -> anyhow::Result<String> {
        self.decoy
            .get_or_try_init(|| self.hash("decoy password, never a user's".to_string()))
            .await
            .cloned()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("password hashing task failed")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Passwords::new();
        let hash = passwords.hash("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$scrypt$ln=17,r=8,p=1$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify("wrong horse".into(), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = Passwords::new();
        assert!(
            !passwords
                .verify("decoy password, never a user's".into(), None)
                .await
                .expect("verify")
        );
    }
}
