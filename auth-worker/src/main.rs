use std::path::PathBuf;

use clap::{Parser, Subcommand};
use shared::Role;

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
    /// Set a user's role, e.g. make the first ADMIN:
    /// `auth-worker set-role --email a@example.com --role ADMIN`.
    SetRole {
        #[arg(long)]
        email: String,
        /// USER or ADMIN.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s.to_ascii_uppercase().as_str() {
        "USER" => Ok(Role::User),
        "ADMIN" => Ok(Role::Admin),
        _ => Err(format!("{s:?} is not a role: use USER or ADMIN")),
    }
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
    let _telemetry = shared::telemetry::init(&settings.log, "auth-worker")?;
    match cli.command {
        Some(Command::Migrate) => auth_worker::migrate(&settings.database).await,
        Some(Command::SetRole { email, role }) => {
            let user = auth_worker::set_role(&settings.database, &email, role).await?;
            println!(
                "{} (id {}) is now {}",
                user.email,
                user.id,
                user.role.as_str()
            );
            Ok(())
        }
        _ => auth_worker::run(settings, shared::service::shutdown_signal()).await,
    }
}
