use std::path::PathBuf;

use clap::Parser;

/// mimalloc rather than glibc's malloc (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mail worker: sends the mails of the security events (the JetStream
/// stream AUTH_EVENTS) over SMTP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file layered over the defaults (environment variables
    /// `MAIL_WORKER_<SECTION>__<KEY>` override both).
    #[arg(long, env = "MAIL_WORKER_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    // Before the first large allocation (see `runtime::process`).
    let thp = runtime::process::no_transparent_huge_pages();
    let cli = Cli::parse();
    let settings = mail_worker::Settings::load(cli.config.as_deref())?;
    settings.service.runtime()?.block_on(async move {
        let _telemetry = runtime::telemetry::init(&settings.log, mail_worker::NAME)?;
        if let Err(e) = thp {
            tracing::warn!(
                error = e,
                "transparent huge pages stay on (more resident memory)"
            );
        }
        mail_worker::run(settings, runtime::shutdown::signal()).await
    })
}
