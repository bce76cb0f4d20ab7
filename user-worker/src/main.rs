use std::path::PathBuf;

use clap::Parser;

/// The user worker: serves `user.*` on NATS against PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables
    /// `USER_WORKER_<SECTION>__<KEY>` override both).
    #[arg(long, env = "USER_WORKER_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = user_worker::Settings::load(cli.config.as_deref())?;
    let _telemetry = runtime::telemetry::init(&settings.log, "user-worker")?;
    user_worker::run(settings, runtime::shutdown::signal()).await
}
