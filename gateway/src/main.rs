use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The HTTP gateway: JSON over HTTP in, one NATS request per call out.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables
    /// `GATEWAY_<SECTION>__<KEY>` override both).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = gateway::Settings::load(cli.config.as_deref())?;
    let _telemetry = runtime::telemetry::init(&settings.log, "gateway")?;
    let listener = tokio::net::TcpListener::bind(&settings.http.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
    gateway::run(settings, listener, runtime::shutdown::signal()).await
}
