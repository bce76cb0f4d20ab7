//! `cargo xtask`: the project's task runner (the `xtask` pattern: a plain
//! binary crate run through the alias in `.cargo/config.toml`).
//!
//! * `cargo xtask up` runs the whole stack on this machine: it finds (or
//!   installs) `nats-server` and a PostgreSQL, generates the development
//!   secrets in `.dev/`, builds the binaries, starts nats-server (and its
//!   HTTP monitoring on loopback, which the gateway proxies to ADMINs at
//!   `/proxy/nats/`), migrates, starts the workers and the gateway, prints
//!   how to reach them and stops everything cleanly on Ctrl-C. A mail
//!   catcher (Debian's aiosmtpd, installed like nats-server) receives the
//!   mail-worker's mail in `.dev/mail/`; `cargo xtask mail` lists it.
//! * `cargo xtask test` runs every check: fmt, clippy, the compose file's
//!   validation and `cargo test --workspace` against a real nats-server and
//!   PostgreSQL, found or provided exactly as `up` does.
//! * `cargo xtask fuzz` runs Schemathesis (installed into `.dev/tools/`)
//!   against a private stack, from the OpenAPI document the gateway serves;
//!   `test` runs it too, after `cargo test`.
//! * `cargo xtask bench` builds the release binaries, starts a private stack
//!   on a seeded database and measures every route, the no-hop floor, the
//!   reverse proxy against nats-server's monitor called directly, and argon2
//!   (the `bench` crate's `natsauth-bench` does the measuring).
//! * `cargo xtask compose-check` validates `compose.yaml` with a real Compose
//!   implementation, installing one into `.dev/tools/` when none is found.
//! * `cargo xtask secrets` writes the NATS passwords (`.dev/nats.env`, and a
//!   file per process in `.dev/secrets/`) that the stack and compose use.
//! * `cargo xtask sqlx-prepare` writes `.sqlx/`, the query data that lets the
//!   compile-time checked statements build without a database; `test` checks
//!   that it is current.
//!
//! Layout: one module per command (`up`, `test`, `fuzz`, `compose`,
//! `secrets`, `sqlx`, `mail`), the services they share (`nats`, `pg`, the
//! mail catcher in `mail`), the process supervisor
//! (`supervise`) and small helpers (`signals`, `term`, `util`).

mod bench;
mod compose;
mod fuzz;
mod history;
mod mail;
mod nats;
mod pg;
mod secrets;
mod signals;
mod sqlx;
mod supervise;
mod term;
mod test;
mod up;
mod util;
mod web;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The project's task runner.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack (nats-server, PostgreSQL, workers, gateway) until Ctrl-C.
    Up(up::UpArgs),
    /// Benchmark the stack (release build, seeded database) and write target/bench/report.md.
    Bench(bench::BenchArgs),
    /// Run every check: fmt, clippy, compose validation, cargo test, fuzzing.
    Test(test::TestArgs),
    /// Fuzz the HTTP API from its OpenAPI document with Schemathesis, against a private stack.
    Fuzz(fuzz::FuzzArgs),
    /// Validate compose.yaml with a Compose implementation (installed if missing).
    ComposeCheck,
    /// Generate the development secrets in .dev/ if missing, and say where they are.
    Secrets,
    /// Write .sqlx/ anew: the query data that lets sqlx::query! build without a database.
    SqlxPrepare(pg::PgArgs),
    /// Build the web app (web/dist) if its sources changed, installing Node.js and npm if missing.
    Web(web::WebArgs),
    /// Write web/openapi.json from the gateway and the web app's API types from it.
    Openapi,
    /// List the mail `cargo xtask up`'s catcher caught (.dev/mail/new/), with its links.
    Mail,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The error and its causes, without the backtrace that anyhow's
            // own report adds when RUST_BACKTRACE is set: the failing
            // command's output above says more than our stack would.
            eprintln!("{} {error}", term::paint("1;31", "error:"));
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let root = util::workspace_root();
    std::env::set_current_dir(&root)
        .with_context(|| format!("entering the workspace root {}", root.display()))?;
    match command {
        Command::Up(args) => up::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::ComposeCheck => compose::run(),
        Command::Secrets => secrets::run(),
        Command::SqlxPrepare(args) => sqlx::run_prepare(&args),
        Command::Web(args) => web::run(&args),
        Command::Openapi => web::write_openapi(),
        Command::Mail => mail::run(),
    }
}
