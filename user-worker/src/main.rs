use std::path::PathBuf;

use clap::Parser;

/// mimalloc rather than glibc's malloc (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The user worker: serves `user.*` on NATS against PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables
    /// `USER_WORKER_<SECTION>__<KEY>` override both).
    #[arg(long, env = "USER_WORKER_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    // Before the first large allocation (see `runtime::process`).
    let thp = runtime::process::no_transparent_huge_pages();
    let cli = Cli::parse();
    let settings = user_worker::Settings::load(cli.config.as_deref())?;
    // `service.threads`: one by default (see `config/service.toml`).
    settings.service.runtime()?.block_on(async move {
        let _telemetry = runtime::telemetry::init(&settings.log, "user-worker")?;
        if let Err(e) = thp {
            tracing::warn!(
                error = e,
                "transparent huge pages stay on (more resident memory)"
            );
        }
        user_worker::run(settings, runtime::shutdown::signal()).await
    })
}
