use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shared::Role;

/// mimalloc rather than glibc's malloc (see the workspace's Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// As a PostgreSQL superuser, once and after any change of password
    /// (idempotent): create the roles natsauth_migrator,
    /// natsauth_auth_worker and natsauth_user_worker, set their passwords,
    /// and create the database (migrator.url's) owned by natsauth_migrator.
    Provision {
        /// A superuser's URL, on any database of the cluster.
        #[arg(long, env = "NATSAUTH_PG_ADMIN_URL")]
        admin_url: String,
        /// A file holding the superuser's password (first line).
        #[arg(long, env = "NATSAUTH_PG_ADMIN_PASSWORD_FILE")]
        admin_password_file: Option<PathBuf>,
        /// A directory holding pg-migrator-password, pg-auth-worker-password
        /// and pg-user-worker-password; without it passwords are unchanged.
        #[arg(long)]
        passwords_dir: Option<PathBuf>,
    },
    /// Apply the migrations, as the migrator (migrator.url).
    Migrate,
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600).
    GenKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Set a user's role, e.g. make the first ADMIN:
    /// `auth-worker set-role --email a@example.com --role ADMIN`
    /// (as the migrator: migrator.url).
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

fn main() -> anyhow::Result<()> {
    // Unlike the gateway and the user-worker, this process keeps transparent
    // huge pages: the argon2id engine asks for them for its working memory
    // (`madvise`) and hashes faster with them. Its heap is small beside the
    // hashers' arenas (`memory_kib` each).
    let cli = Cli::parse();
    if let Some(Command::GenKey { out }) = &cli.command {
        auth_worker::tokens::generate_key_file(out)?;
        println!("wrote {}", out.display());
        return Ok(());
    }
    let settings = auth_worker::Settings::load(cli.config.as_deref())?;
    // `service.threads`: one by default (see `config/service.toml`); the
    // hashing has threads of its own.
    settings.service.runtime()?.block_on(serve(cli, settings))
}

async fn serve(cli: Cli, settings: auth_worker::Settings) -> anyhow::Result<()> {
    let _telemetry = runtime::telemetry::init(&settings.log, "auth-worker")?;
    match cli.command {
        Some(Command::Provision {
            admin_url,
            admin_password_file,
            passwords_dir,
        }) => {
            let admin = runtime::db::DatabaseSettings {
                url: admin_url.into(),
                password_file: admin_password_file,
                max_connections: 1,
                acquire_timeout_ms: 10_000,
            }
            .connect_options()
            .context("--admin-url")?;
            let migrator = settings.migrator.connect_options()?;
            let database = migrator
                .get_database()
                .context("migrator.url names no database")?;
            let passwords = passwords_dir
                .as_deref()
                .map(auth_worker::provision::RolePasswords::from_dir)
                .transpose()?;
            auth_worker::provision::provision(&admin, database, passwords.as_ref()).await?;
            println!(
                "provisioned the database {database} and its roles{}",
                if passwords.is_some() {
                    " (passwords set)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Some(Command::Migrate) => auth_worker::migrate(&settings.migrator).await,
        Some(Command::SetRole { email, role }) => {
            let user = auth_worker::set_role(&settings.migrator, &email, role).await?;
            println!(
                "{} (id {}) is now {}",
                user.email,
                user.id,
                user.role.as_str()
            );
            Ok(())
        }
        _ => auth_worker::run(settings, runtime::shutdown::signal()).await,
    }
}
