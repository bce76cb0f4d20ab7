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

use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
}

/// What `hash` prints as one JSON line, and the report's `argon2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argon2Costs {
    pub params: Argon2Params,
    pub cores: usize,
    pub ms_per_hash: MsPerHash,
    /// The crate the auth-worker hashes with.
    pub engine: String,
    /// `argon2-rust`'s SIMD backend on this machine.
    pub backend: String,
    /// The auth-worker's hasher kept busy: the ceiling for sign-ups and
    /// logins per second.
    pub hasher_per_second: f64,
    /// Hashes the auth-worker computes at once (its hashing threads), each
    /// with `params.memory_kib` of working memory.
    pub max_concurrent_hashes: usize,
}

/// The auth-worker's argon2id settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Milliseconds per hash on one core, per crate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MsPerHash {
    #[serde(rename = "argon2 0.5")]
    pub argon2: f64,
    #[serde(rename = "argon2-rust")]
    pub argon2_rust: f64,
}

pub async fn run(args: HashArgs) -> anyhow::Result<()> {
    let settings = auth_worker::Settings::load(None)?.argon2;
    let params = Argon2Params {
        memory_kib: settings.memory_kib,
        iterations: settings.iterations,
        parallelism: settings.parallelism,
    };
    let budget = Duration::from_secs_f64(args.seconds);
    let (ms_per_hash, backend) =
        tokio::task::spawn_blocking(move || one_core(params, budget)).await??;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let hasher = auth_worker::password::Hasher::new(&settings)?;
    let hasher_per_second = saturated(hasher, cores * 4, budget).await?;
    let costs = Argon2Costs {
        params,
        cores,
        ms_per_hash,
        engine: "argon2-rust".to_owned(),
        backend,
        hasher_per_second,
        max_concurrent_hashes: match settings.max_concurrent_hashes {
            0 => cores,
            n => n,
        },
    };
    println!("{}", serde_json::to_string(&costs)?);
    Ok(())
}

/// Both engines on one core, interleaved in rounds so that drift hits both
/// alike; returns each one's median and `argon2-rust`'s backend.
fn one_core(p: Argon2Params, budget: Duration) -> anyhow::Result<(MsPerHash, String)> {
    let (password, salt) = (b"correct horse battery staple", b"benchmark-salt-16");
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Working memory reused, as the auth-worker's hasher does.
    let mut memory = vec![argon2::Block::default(); params.block_count()];
    let rustcrypto =
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let engine_params = argon2_rust::Params::builder()
        .memory(argon2_rust::params::Memory::kib(p.memory_kib.into()))
        .passes(p.iterations)
        .lanes(p.parallelism)
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
    let ms = MsPerHash {
        argon2: median(ms_theirs),
        argon2_rust: median(ms_ours),
    };
    Ok((ms, backend))
}

/// Hashes per second of the auth-worker's hasher with `callers` hashing
/// at once for about `budget`.
async fn saturated(
    hasher: auth_worker::password::Hasher,
    callers: usize,
    budget: Duration,
) -> anyhow::Result<f64> {
    let hasher = Arc::new(hasher);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let hasher = Arc::clone(&hasher);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < budget {
                hasher.hash("correct horse battery staple").await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut hashes = 0;
    for task in tasks {
        hashes += task.await??;
    }
    Ok(hashes as f64 / started.elapsed().as_secs_f64())
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
