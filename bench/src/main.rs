//! `natsauth-bench`: the tools `cargo xtask bench` drives, built in release.
//!
//! * `seed`: fills a migrated database with users and posts in SQL, far
//!   faster than the HTTP API could (one argon2 hash shared by every row).
//! * `load`: a closed-loop HTTP load generator at fixed concurrency; prints
//!   progress to stderr, `@start` and `@end` around the measured window on
//!   stdout (so the caller can sample the other processes), then one JSON
//!   line of results.
//! * `floor`: the same axum front (every layer, token checks) calling the
//!   workers' handlers in this process instead of over NATS: what the hop
//!   is measured against. Its caller checks are one query per request, as a
//!   monolith makes them, or (`--coalesced`) batched as the workers batch
//!   them.
//! * `hash`: argon2id's cost per hash on this machine, one core and all, for
//!   the crate the auth-worker uses and the next major version.

mod floor;
mod hash;
mod load;
mod report;
mod run;
mod seed;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "natsauth-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill the database with users and posts.
    Seed(seed::SeedArgs),
    /// Drive one scenario against a running gateway.
    Load(load::LoadArgs),
    /// Serve the API without NATS (handlers in-process).
    Floor(floor::FloorArgs),
    /// Measure argon2id per hash.
    Hash(hash::HashArgs),
    /// The whole benchmark against a running stack (`cargo xtask bench`).
    Run(run::RunArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Before the first large allocation (see `runtime::process`). `hash`
    // keeps them, as the auth-worker does, and so does `run`, whose children
    // (`hash` among them) would inherit the setting.
    if !matches!(cli.command, Command::Hash(_) | Command::Run(_))
        && let Err(e) = runtime::process::no_transparent_huge_pages()
    {
        eprintln!("transparent huge pages stay on: {e}");
    }
    match cli.command {
        Command::Seed(args) => runtime(2)?.block_on(seed::run(args)),
        // One thread: the load generator shares the cores with the system
        // under test, and one thread drives 32 connections easily.
        Command::Load(args) => runtime(1)?.block_on(load::run(args)),
        Command::Floor(args) => tokio::runtime::Runtime::new()?.block_on(floor::run(args)),
        Command::Hash(args) => runtime(2)?.block_on(hash::run(args)),
        Command::Run(args) => run::run(args),
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
