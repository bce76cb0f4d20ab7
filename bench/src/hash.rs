//! argon2id's cost on this machine, with the auth-worker's settings
//! (`AUTH_WORKER_ARGON2__*`, default m=19456 KiB, t=2, p=1):
//! * one core, for the crate the auth-worker uses (`argon2` 0.5) and the next
//!   major version (0.6; both pick AVX2 code at run time), same inputs, same
//!   output checked, working memory reused as the auth-worker does;
//! * the auth-worker's own `Hasher` (bounded to the cores, on the blocking
//!   pool) kept busy by more callers than cores: the ceiling for sign-ups
//!   and logins per second.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
}

pub async fn run(args: HashArgs) -> anyhow::Result<()> {
    let settings = auth_worker::Settings::load(None)?.argon2;
    let (m, t, p) = (
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
    );
    let budget = Duration::from_secs_f64(args.seconds);
    let (password, salt) = (b"correct horse battery staple", b"benchmark-salt-16");

    // The same measurement for each crate version (their types differ).
    macro_rules! ms_per_hash {
        ($krate:ident) => {
            tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, Vec<u8>)> {
                use $krate::{Algorithm, Argon2, Block, Params, Version};
                let params = Params::new(m, t, p, Some(32)).map_err(|e| anyhow::anyhow!("{e}"))?;
                // Working memory reused, as the auth-worker's hasher does.
                let mut memory = vec![Block::default(); params.block_count()];
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut out = vec![0; 32];
                let ms = per_call(budget, || {
                    argon2
                        .hash_password_into_with_memory(password, salt, &mut out, &mut memory)
                        .map_err(|e| anyhow::anyhow!("{e}"))
                })?;
                Ok((ms, out))
            })
            .await??
        };
    }
    let current = ms_per_hash!(argon2);
    let next = ms_per_hash!(argon2_next);
    anyhow::ensure!(current.1 == next.1, "the two versions disagree");

    // The auth-worker's hasher, saturated.
    let hasher = Arc::new(auth_worker::password::Hasher::new(&settings)?);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..cores * 4 {
        let hasher = Arc::clone(&hasher);
        callers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < budget {
                hasher.hash("correct horse battery staple").await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut hashes = 0;
    for caller in callers {
        hashes += caller.await??;
    }
    let per_second = hashes as f64 / started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "params": {"memoryKib": m, "iterations": t, "parallelism": p},
            "cores": cores,
            "msPerHash": {"argon2 0.5": current.0, "argon2 0.6": next.0},
            "hasherPerSecond": per_second,
            "maxConcurrentHashes": if settings.max_concurrent_hashes == 0 { cores } else { settings.max_concurrent_hashes },
        })
    );
    Ok(())
}

/// Mean milliseconds per call of `f`, called for about `budget`.
fn per_call(budget: Duration, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?; // warm: page the memory in once
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < budget || n < 3 {
        f()?;
        n += 1;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(n))
}
