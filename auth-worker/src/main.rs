use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The auth worker: serves `auth.*` on NATS against PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables
    /// `AUTH_WORKER_<SECTION>__<KEY>` override both).
    #[arg(long, global = true, env = "AUTH_WORKER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the auth subjects until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Create the database if missing and apply the migrations.
    Migrate,
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600).
    GenKey {
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::GenKey { out }) = &cli.command {
        auth_worker::tokens::generate_key_file(out)?;
        println!("wrote {}", out.display());
        return Ok(());
    }
    let settings = auth_worker::Settings::load(cli.config.as_deref())?;
    shared::telemetry::init(&settings.log);
    match cli.command {
        Some(Command::Migrate) => auth_worker::migrate(&settings.database).await,
        _ => auth_worker::run(settings, shared::service::shutdown_signal()).await,
    }
}
