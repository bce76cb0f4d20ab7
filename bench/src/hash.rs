//! argon2id's cost on this machine, with the auth-worker's settings
//! (`AUTH_WORKER_ARGON2__*`, default m=19456 KiB, t=2, p=1):
//! * one core, for the auth-worker's engine (`argon2-rust`, its SIMD backend
//!   picked at run time) and the design's crate (`argon2` 0.5, RustCrypto),
//!   interleaved round by round, same inputs, same output checked, working
//!   memory reused as the auth-worker does;
//! * the auth-worker's own `Hasher` (its hashing threads, one per core, at
//!   their nice value) kept busy by more callers than cores: the ceiling for
//!   sign-ups and logins per second.
//!
//! This command keeps transparent huge pages on, as the auth-worker does.

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

    // Both engines, interleaved in rounds so that drift hits both alike.
    let (engines, backend) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Working memory reused, as the auth-worker's hasher does.
        let mut memory = vec![argon2::Block::default(); params.block_count()];
        let rustcrypto =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let engine_params = argon2_rust::Params::builder()
            .memory(argon2_rust::params::Memory::kib(m.into()))
            .passes(t)
            .lanes(p)
            .build()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut engine = argon2_rust::Argon2::new(
            argon2_rust::Algorithm::Argon2id,
            argon2_rust::Version::V0x13,
            engine_params,
        )
        .hasher();
        let (mut theirs, mut ours) = (vec![0; 32], vec![0; 32]);
        let (mut ms_theirs, mut ms_ours) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            ms_theirs.push(per_call(budget / 3, || {
                rustcrypto
                    .hash_password_into_with_memory(password, salt, &mut theirs, &mut memory)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?);
            ms_ours.push(per_call(budget / 3, || {
                engine
                    .hash_into(password, salt, &mut ours)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?);
        }
        anyhow::ensure!(theirs == ours, "the two engines disagree");
        let backend = format!("{:?}", argon2_rust::detected_backend());
        Ok(([median(ms_theirs), median(ms_ours)], backend))
    })
    .await??;

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
            "msPerHash": {"argon2 0.5": engines[0], "argon2-rust": engines[1]},
            "engine": "argon2-rust",
            "backend": backend,
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

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
