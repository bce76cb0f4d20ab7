//! argon2id hashing, off the async runtime and bounded to the cores.
//!
//! Hashing is deliberately expensive (19 MiB and two passes by default, the
//! OWASP baseline), so it runs on the blocking pool and at most
//! `max_concurrent_hashes` at once: unbounded hashing only adds memory and
//! latency, never throughput.
//!
//! Each hash needs `memory_kib` of working memory. Allocating it per hash
//! costs page faults on every use, and glibc keeps freed blocks of that size
//! in per-thread arenas: the benchmark saw the auth-worker grow to 750 MiB.
//! So the hasher keeps one buffer per slot and reuses it: the process holds
//! at most `max_concurrent_hashes` × `memory_kib`, allocated on first use.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::settings::Argon2Settings;

/// Hashes and verifies passwords.
#[derive(Debug)]
pub struct Hasher {
    argon2: Argon2<'static>,
    params: Params,
    slots: Arc<Semaphore>,
    /// argon2's working memory, one buffer per hash in progress, reused.
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash of a random password, verified against when the email is
    /// unknown, so that case costs the same time as a wrong password.
    dummy_hash: String,
    /// Password verifications started (what the login throttle bounds).
    verifications: AtomicU64,
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
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let slots = match settings.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let random = uuid::Uuid::new_v4().to_string();
        let mut memory = Vec::new();
        let dummy_hash = hash_with(&argon2, &params, &random, &mut memory)
            .context("hashing the timing dummy")?;
        Ok(Self {
            argon2,
            params,
            slots: Arc::new(Semaphore::new(slots)),
            buffers: Arc::new(Mutex::new(vec![memory])),
            dummy_hash,
            verifications: AtomicU64::new(0),
        })
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let (argon2, params) = (self.argon2.clone(), self.params.clone());
        let password = password.to_owned();
        self.blocking(move |memory| hash_with(&argon2, &params, &password, memory))
            .await?
    }

    /// Whether `password` matches `phc`; `None` for `phc` checks the dummy hash
    /// and always answers `false`, in the same time.
    pub async fn verify(&self, password: &str, phc: Option<String>) -> anyhow::Result<bool> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_owned();
        let matched = self
            .blocking(move |memory| verify_with(&password, &phc, memory))
            .await??;
        Ok(known && matched)
    }

    /// How many verifications this hasher has started.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Runs `work` on the blocking pool once a slot is free, lending it a
    /// working-memory buffer.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _slot = self.slots.acquire().await.context("hasher closed")?;
        let buffers = Arc::clone(&self.buffers);
        tokio::task::spawn_blocking(move || {
            let mut memory = buffers
                .lock()
                .map(|mut b| b.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let result = work(&mut memory);
            if let Ok(mut b) = buffers.lock() {
                b.push(memory);
            }
            result
        })
        .await
        .context("hashing task panicked")
    }
}

/// Grows `memory` to what `params` needs; the buffer keeps its size after.
fn blocks<'a>(memory: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    &mut memory[..needed]
}

/// What `PasswordHasher::hash_password` makes, with our working memory.
fn hash_with(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    memory: &mut Vec<Block>,
) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                out,
                blocks(memory, params),
            )
            .map_err(Into::into)
    })
    .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// What `PasswordVerifier::verify_password` does (the stored string's own
/// algorithm, version and parameters; a constant-time comparison), with our
/// working memory.
fn verify_with(password: &str, phc: &str, memory: &mut Vec<Block>) -> anyhow::Result<bool> {
    let hash =
        PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash does not parse: {e}"))?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        anyhow::bail!("stored hash has no salt or output");
    };
    let invalid = |e: argon2::password_hash::Error| anyhow::anyhow!("stored hash: {e}");
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(invalid)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?
        .unwrap_or_default();
    let params = Params::try_from(&hash).map_err(invalid)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(invalid)?;
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                out,
                blocks(memory, &params),
            )
            .map_err(Into::into)
    })
    .map_err(invalid)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
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

    /// The reused-memory path makes and checks exactly what the crate's own
    /// `PasswordHasher`/`PasswordVerifier` do, both ways.
    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_crates_own_phc_api() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let h = cheap();
        let ours = h.hash("correct horse").await.unwrap();
        let theirs_argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            theirs_argon2
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            theirs_argon2
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );

        // Different parameters than the hasher's: the stored string's win.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        )
        .hash_password(b"battery staple", &salt)
        .unwrap()
        .to_string();
        assert!(
            h.verify("battery staple", Some(theirs.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify("battery stapler", Some(theirs)).await.unwrap());
    }

    /// A vector of the reference implementation's own tests
    /// (phc-winner-argon2 `src/test.c`: Argon2id v1.3, t=2, m=2^16 KiB, p=1,
    /// "password", "somesalt").
    #[test]
    fn the_reused_memory_path_matches_the_reference_implementation() {
        let params = Params::new(65536, 2, 1, Some(32)).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut memory = vec![Block::default(); 8]; // too small: grown
        let mut out = [0u8; 32];
        for _ in 0..2 {
            // Twice through the same (dirty) buffer: same answer.
            argon2
                .hash_password_into_with_memory(
                    b"password",
                    b"somesalt",
                    &mut out,
                    blocks(&mut memory, &params),
                )
                .unwrap();
            assert_eq!(
                hex(&out),
                "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
            );
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
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
