//! argon2id hashing, off the async runtime and bounded to the cores.
//!
//! Hashing is deliberately expensive (19 MiB and two passes by default, the
//! OWASP baseline), so it runs on the blocking pool and at most
//! `max_concurrent_hashes` at once: unbounded hashing only adds memory and
//! latency, never throughput.

use std::sync::Arc;

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::settings::Argon2Settings;

/// Hashes and verifies passwords.
#[derive(Debug)]
pub struct Hasher {
    argon2: Argon2<'static>,
    slots: Arc<Semaphore>,
    /// A hash of a random password, verified against when the email is
    /// unknown, so that case costs the same time as a wrong password.
    dummy_hash: String,
}

impl Hasher {
    pub fn new(settings: &Argon2Settings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 settings: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let slots = match settings.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let random = uuid::Uuid::new_v4().to_string();
        let dummy_hash = hash_with(&argon2, &random).context("hashing the timing dummy")?;
        Ok(Self {
            argon2,
            slots: Arc::new(Semaphore::new(slots)),
            dummy_hash,
        })
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        self.blocking(move || hash_with(&argon2, &password)).await?
    }

    /// Whether `password` matches `phc`; `None` for `phc` checks the dummy hash
    /// and always answers `false`, in the same time.
    pub async fn verify(&self, password: &str, phc: Option<String>) -> anyhow::Result<bool> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        let matched = self
            .blocking(move || -> anyhow::Result<bool> {
                let parsed = PasswordHash::new(&phc)
                    .map_err(|e| anyhow::anyhow!("stored hash does not parse: {e}"))?;
                Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await??;
        Ok(known && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _slot = self.slots.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("hashing task panicked")
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(&Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent_hashes: 2,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_hash_is_an_argon2id_phc_string_that_verifies_its_password_only() {
        let h = cheap();
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("correct horse", Some(phc.clone())).await.unwrap());
        assert!(!h.verify("wrong horse", Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let h = cheap();
        assert!(!h.verify("anything", None).await.unwrap());
    }

    #[tokio::test]
    async fn the_default_parameters_are_the_owasp_baseline() {
        let s: crate::Settings = crate::Settings::load(None).unwrap();
        assert_eq!(
            (
                s.argon2.memory_kib,
                s.argon2.iterations,
                s.argon2.parallelism
            ),
            (19456, 2, 1)
        );
    }
}
