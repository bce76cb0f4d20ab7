//! argon2id hashing, on threads of its own and bounded to the cores.
//!
//! Hashing is deliberately expensive (19 MiB and two passes by default, the
//! OWASP baseline), so it runs on threads of its own, at most
//! `max_concurrent_hashes` at once: unbounded hashing only adds memory and
//! latency, never throughput.
//!
//! The engine is `argon2-rust`, a port of the reference implementation
//! (phc-winner-argon2) that picks AVX-512, AVX2 or SSE code at run time and
//! asks for huge pages for its working memory. It hashes faster than the
//! RustCrypto `argon2` crate (`cargo xtask bench` compares the two), and
//! its strings are the reference's PHC strings. The
//! `argon2` crate stays as the tests' oracle: each engine verifies the
//! other's strings, and a string the old engine wrote still verifies.
//!
//! Each hash needs `memory_kib` of working memory. Allocating it per hash
//! costs page faults on every use, so each of the `max_concurrent_hashes`
//! hashing threads keeps an engine `Hasher` whose arena is reused: the
//! process holds at most `max_concurrent_hashes` × `memory_kib`, allocated
//! on first use.
//!
//! The hashing threads run at a lower priority (`argon2.nice`, 10 by
//! default): a login flood then gets the CPU the other requests leave, and
//! `/me` and the pages on the same machine keep theirs (isolation between
//! routes under overload).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use anyhow::Context;
use argon2_rust::{Algorithm, Argon2, Error, Params, Version, params::Memory};

use crate::settings::Argon2Settings;

/// The largest costs a stored string may ask for (on top of the configured
/// ones): a row must not be able to make one verification allocate
/// gigabytes or spawn a thread per lane.
const CEILING_MEMORY_MIB: u64 = 256;
const CEILING_PASSES: u32 = 16;
const CEILING_LANES: u32 = 16;

/// One piece of work for a hashing thread, with its engine lent.
type Job = Box<dyn FnOnce(&mut argon2_rust::Hasher) + Send>;

/// Hashes and verifies passwords.
#[derive(Debug)]
pub struct Hasher {
    /// What a stored string may cost at most (see [`CEILING_MEMORY_MIB`]).
    ceiling: Params,
    /// The hashing threads' queue. Each of `max_concurrent_hashes` threads
    /// owns an engine hasher (and so keeps its working memory between
    /// hashes) and runs at the configured nice value. Dropping the sender
    /// ends them.
    jobs: std::sync::mpsc::Sender<Job>,
    /// A hash of a random password, verified against when the email is
    /// unknown, so that case costs the same time as a wrong password.
    dummy_hash: String,
    /// Password verifications started (what the login throttle bounds).
    verifications: AtomicU64,
}

impl Hasher {
    pub fn new(settings: &Argon2Settings) -> anyhow::Result<Self> {
        let invalid = |e: Error| anyhow::anyhow!("invalid argon2 settings: {e}");
        let params = Params::builder()
            .memory(Memory::kib(settings.memory_kib.into()))
            .passes(settings.iterations)
            .lanes(settings.parallelism)
            .build()
            .map_err(invalid)?;
        let ceiling = Params::builder()
            .memory(Memory::kib(
                u64::from(settings.memory_kib).max(CEILING_MEMORY_MIB * 1024),
            ))
            .passes(settings.iterations.max(CEILING_PASSES))
            .lanes(settings.parallelism.max(CEILING_LANES))
            .threads(settings.parallelism)
            .build()
            .map_err(invalid)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let threads = match settings.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let random = uuid::Uuid::new_v4().to_string();
        let dummy_hash = argon2
            .hasher()
            .hash_password_with_random_salt(random.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("hashing the timing dummy")?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let nice = settings.nice;
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&argon2, &queue, nice))
                .context("starting a hashing thread")?;
        }
        Ok(Self {
            ceiling,
            jobs,
            dummy_hash,
            verifications: AtomicU64::new(0),
        })
    }

    /// The argon2id PHC string of `password`, with a fresh 16-byte salt.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        self.on_hashing_thread(move |engine| {
            engine
                .hash_password_with_random_salt(password.as_bytes())
                .map_err(|e| anyhow::anyhow!("argon2 failed: {e}"))
        })
        .await?
    }

    /// Whether `password` matches `phc`; `None` for `phc` checks the dummy hash
    /// and always answers `false`, in the same time.
    pub async fn verify(&self, password: &str, phc: Option<String>) -> anyhow::Result<bool> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_owned();
        let ceiling = self.ceiling;
        let matched = self
            .on_hashing_thread(move |engine| verify_with(engine, &password, &phc, &ceiling))
            .await??;
        Ok(known && matched)
    }

    /// How many verifications this hasher has started.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Runs `work` on the next free hashing thread and waits for its answer
    /// without blocking the runtime.
    async fn on_hashing_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut argon2_rust::Hasher) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |engine| {
                let _ = answer.send(work(engine));
            }))
            .ok()
            .context("hasher closed")?;
        answered.await.context("hashing failed (a panic)")
    }
}

/// One hashing thread: lowers its priority to `nice`, then runs jobs until
/// the queue closes. A panicking job costs its caller an error, not the
/// thread.
fn hashing_thread(argon2: &Argon2, queue: &Mutex<std::sync::mpsc::Receiver<Job>>, nice: i32) {
    if nice > 0
        && let Err(e) = runtime::process::lower_this_threads_priority(nice)
    {
        tracing::warn!(
            error = e,
            nice,
            "hashing thread keeps the process's priority"
        );
    }
    let mut engine = argon2.hasher();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut engine)));
    }
}

/// Checks `password` against a stored PHC string, with the string's own
/// algorithm, version and parameters (up to `ceiling`) and a constant-time
/// comparison. A mismatch is `false`; a string that does not parse, or asks
/// for more than the ceiling, is an error.
fn verify_with(
    engine: &mut argon2_rust::Hasher,
    password: &str,
    phc: &str,
    ceiling: &Params,
) -> anyhow::Result<bool> {
    let algorithm = [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d]
        .into_iter()
        .find(|a| {
            phc.strip_prefix('$')
                .and_then(|rest| rest.strip_prefix(a.as_str()))
                .is_some_and(|rest| rest.starts_with('$'))
        })
        .context("stored hash is not an argon2 PHC string")?;
    match engine.verify_encoded_bounded(phc, password.as_bytes(), algorithm, ceiling) {
        Ok(()) => Ok(true),
        Err(Error::VerifyMismatch) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("stored hash: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(memory_kib: u32, iterations: u32) -> Argon2Settings {
        Argon2Settings {
            memory_kib,
            iterations,
            parallelism: 1,
            max_concurrent_hashes: 2,
            nice: 0,
        }
    }

    fn hasher(memory_kib: u32, iterations: u32) -> Hasher {
        Hasher::new(&settings(memory_kib, iterations)).unwrap()
    }

    fn cheap() -> Hasher {
        hasher(64, 1)
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
    async fn every_hash_has_its_own_salt() {
        let h = cheap();
        let (a, b) = (h.hash("same").await.unwrap(), h.hash("same").await.unwrap());
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let h = cheap();
        assert!(!h.verify("anything", None).await.unwrap());
    }

    /// The design's `argon2` crate (RustCrypto) is the oracle: it verifies
    /// our strings, and ours verify its strings, also at other parameters
    /// than the hasher's (the stored string's win).
    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_argon2_crate_both_ways() {
        use argon2::{
            PasswordHash, PasswordHasher, PasswordVerifier,
            password_hash::{SaltString, rand_core::OsRng},
        };
        let oracle = |m, t| {
            argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(m, t, 1, None).unwrap(),
            )
        };
        let h = cheap();
        let ours = h.hash("correct horse").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            oracle(64, 1)
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            oracle(64, 1)
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );

        let salt = SaltString::generate(&mut OsRng);
        let theirs = oracle(128, 2)
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

    /// A string the previous engine (the `argon2` 0.5 crate) wrote with the
    /// default parameters, as the users table holds them from before the
    /// change.
    #[tokio::test]
    async fn a_hash_written_by_the_previous_engine_still_verifies() {
        const OLD: &str = "$argon2id$v=19$m=19456,t=2,p=1$yH7OB6J6MRwkxq6SFOynIw$QHqoEvTP6k4EESRnYkjsnVqA0+N77HgQ7CJJgqpvU3c";
        let h = hasher(19456, 2);
        let old = Some(OLD.to_owned());
        assert!(
            h.verify("correct horse battery staple", old.clone())
                .await
                .unwrap()
        );
        assert!(
            !h.verify("correct horse battery stapler", old)
                .await
                .unwrap()
        );
    }

    /// A vector of the reference implementation's own tests
    /// (phc-winner-argon2 `src/test.c`: Argon2id v1.3, t=2, m=2^16 KiB, p=1,
    /// "password", "somesalt"), through a hasher whose working memory is
    /// smaller (so grown) and then reused dirty, and through the PHC path.
    #[tokio::test]
    async fn the_reference_implementations_vector_holds_with_reused_memory() {
        const TAG: &str = "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7";
        let h = cheap();
        let params = Params::builder()
            .memory(Memory::kib(65536))
            .passes(2)
            .build()
            .unwrap();
        let small = params.to_builder().memory(Memory::kib(8)).build().unwrap();
        let mut engine = Argon2::new(Algorithm::Argon2id, Version::V0x13, small).hasher();
        engine.hash(b"first", b"somesalt").unwrap();
        engine.set_argon2(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        for _ in 0..2 {
            let mut out = [0u8; 32];
            engine
                .hash_into(b"password", b"somesalt", &mut out)
                .unwrap();
            assert_eq!(hex(&out), TAG);
        }

        use base64::Engine as _;
        let tag: Vec<u8> = (0..TAG.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&TAG[i..i + 2], 16).unwrap())
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let phc = format!(
            "$argon2id$v=19$m=65536,t=2,p=1${}${}",
            b64.encode(b"somesalt"),
            b64.encode(&tag)
        );
        assert!(h.verify("password", Some(phc.clone())).await.unwrap());
        assert!(!h.verify("passwort", Some(phc)).await.unwrap());
    }

    /// A stored string may not make a verification allocate what it likes.
    #[tokio::test]
    async fn a_stored_string_beyond_the_ceiling_is_an_error_not_an_allocation() {
        let h = cheap();
        let huge = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        let err = h.verify("password", Some(huge.into())).await.unwrap_err();
        assert!(err.to_string().contains("stored hash"), "{err}");
        let wide =
            "$argon2id$v=19$m=512,t=1,p=64$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(h.verify("password", Some(wide.into())).await.is_err());
        for junk in [
            "",
            "$argon2$x",
            "$bcrypt$v=19$m=64,t=1,p=1$c29tZXNhbHQ$AAAA",
        ] {
            assert!(
                h.verify("password", Some(junk.into())).await.is_err(),
                "{junk}"
            );
        }
    }

    /// The hashing threads run at the configured nice value, so a login
    /// flood yields the CPU to the other requests of the machine.
    #[tokio::test]
    async fn the_hashing_threads_run_at_the_configured_nice_value() {
        let h = Hasher::new(&Argon2Settings {
            nice: 7,
            ..settings(64, 1)
        })
        .unwrap();
        for _ in 0..4 {
            assert_eq!(nice_of_a_hashing_thread(&h).await, 7);
        }
        assert_eq!(runtime::process::this_threads_nice().unwrap(), 0);
        assert_eq!(nice_of_a_hashing_thread(&cheap()).await, 0);
    }

    async fn nice_of_a_hashing_thread(h: &Hasher) -> i32 {
        h.on_hashing_thread(|_| runtime::process::this_threads_nice())
            .await
            .unwrap()
            .unwrap()
    }

    /// A panic in a job is its caller's error; the thread lives on.
    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_only() {
        let h = Hasher::new(&Argon2Settings {
            max_concurrent_hashes: 1,
            ..settings(64, 1)
        })
        .unwrap();
        let failed = h.on_hashing_thread(|_| -> () { panic!("boom") }).await;
        assert!(failed.is_err());
        let phc = h.hash("still here").await.unwrap();
        assert!(h.verify("still here", Some(phc)).await.unwrap());
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
        assert_eq!(s.argon2.nice, 10);
    }
}
