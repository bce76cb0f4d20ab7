use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The HTTP gateway: JSON over HTTP in, one NATS request per call out.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables
    /// `GATEWAY_<SECTION>__<KEY>` override both).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Write a new session-cookie key to FILE (mode 0600; refuses to
    /// overwrite). To rotate: point `session.previous_key_file` at the old
    /// file and `session.key_file` at the new one.
    GenSessionKey { file: PathBuf },
    /// Print the OpenAPI document (the web app's types are made from it).
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before the first large allocation (see `runtime::process`).
    let thp = runtime::process::no_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {}
        Command::GenSessionKey { file } => return gen_session_key(&file),
        Command::Openapi => {
            println!("{}", gateway::openapi().to_pretty_json()?);
            return Ok(());
        }
    }
    let settings = gateway::Settings::load(cli.config.as_deref())?;
    let _telemetry = runtime::telemetry::init(&settings.log, "gateway")?;
    if let Err(e) = thp {
        tracing::warn!(
            error = e,
            "transparent huge pages stay on (more resident memory)"
        );
    }
    let listener = tokio::net::TcpListener::bind(&settings.http.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http.addr))?;
    gateway::run(settings, listener, runtime::shutdown::signal()).await
}

fn gen_session_key(file: &std::path::Path) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let key = gateway::session::seal::generate()?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("creating {} (it must not exist yet)", file.display()))?;
    out.write_all(gateway::session::seal::encode_key(&key).as_bytes())?;
    println!("wrote a session key to {}", file.display());
    Ok(())
}
