//! A PostgreSQL for the stack and the tests, in this order of preference:
//!
//! 1. the server named by `NATSAUTH_PG_ADMIN_URL` (a URL of a role that may
//!    create databases, e.g. `postgres://postgres@db:5432/postgres`);
//! 2. a server on 127.0.0.1:5432 that lets user `postgres` in without a
//!    password (Debian's default cluster, CI's service);
//! 3. a private, throwaway cluster in `.dev/pg` made with the installed
//!    `initdb`/`pg_ctl` (PostgreSQL installed with apt-get first if missing,
//!    when root), on 127.0.0.1:15432 or another free port, trust auth, stopped
//!    when xtask ends. `--private-pg` skips straight to this, whatever the
//!    environment says.
//!
//! initdb refuses to run as root, so as root the cluster belongs to the
//! `postgres` system user and every command runs through `runuser`.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{term, util};

/// An admin URL that overrides detection.
pub const ADMIN_URL_VAR: &str = "NATSAUTH_PG_ADMIN_URL";
/// The database the stack uses (the workers' default).
pub const APP_DATABASE: &str = "natsauth";
const LOCAL_PORT: u16 = 5432;
const PRIVATE_PORT: u16 = 15432;
/// The system user that owns a private cluster when we run as root.
const PG_SYSTEM_USER: &str = "postgres";

/// The PostgreSQL options shared by `up` and `test`.
#[derive(Debug, clap::Args)]
pub struct PgArgs {
    /// Start a private PostgreSQL cluster in .dev/pg, ignoring
    /// NATSAUTH_PG_ADMIN_URL and any server on 127.0.0.1:5432.
    #[arg(long)]
    pub private_pg: bool,
}

/// The PostgreSQL in use; a private cluster is stopped by [`Postgres::stop`]
/// or, failing that, on drop.
#[derive(Debug)]
pub struct Postgres {
    admin_url: String,
    description: String,
    private: Option<PrivateCluster>,
}

impl Postgres {
    /// Finds or starts a PostgreSQL (see the module docs).
    pub fn ensure(force_private: bool) -> anyhow::Result<Self> {
        let from_env = std::env::var(ADMIN_URL_VAR).ok().filter(|u| !u.is_empty());
        if let Some(url) = from_env.filter(|_| !force_private) {
            if let Err(why) = check_url(&url) {
                bail!(
                    "{ADMIN_URL_VAR} names a server we cannot use: {why}\n\
                     Fix it, or unset it to use 127.0.0.1:5432 or a private cluster."
                );
            }
            term::step(&format!(
                "PostgreSQL: {ADMIN_URL_VAR} ({})",
                testkit::redact(&url)
            ));
            return Ok(Self::external(url, format!("from {ADMIN_URL_VAR}")));
        }
        if force_private {
            term::step("PostgreSQL: --private-pg given, starting a private cluster");
        } else {
            match probe_local() {
                Ok(url) => return Ok(Self::local(url)),
                Err(why) => term::step(&format!(
                    "PostgreSQL: none usable on 127.0.0.1:{LOCAL_PORT} ({why}); \
                     starting a private cluster instead"
                )),
            }
        }
        let bin_dir = match find_bin_dir() {
            Some(dir) => dir,
            None => {
                util::apt_install(&["postgresql"], "PostgreSQL (initdb, pg_ctl, psql)")?;
                // Debian's package may have created and started its own cluster.
                if !force_private && let Ok(url) = probe_local() {
                    return Ok(Self::local(url));
                }
                find_bin_dir().context(
                    "PostgreSQL is installed but initdb is in neither /usr/lib/postgresql/*/bin \
                     nor on PATH; set NATSAUTH_PG_ADMIN_URL to a server instead",
                )?
            }
        };
        let cluster = PrivateCluster::start(&bin_dir)?;
        Ok(Self {
            admin_url: cluster.admin_url(),
            description: cluster.describe(),
            private: Some(cluster),
        })
    }

    fn external(admin_url: String, description: String) -> Self {
        Self {
            admin_url,
            description,
            private: None,
        }
    }

    fn local(url: String) -> Self {
        term::step(&format!(
            "PostgreSQL: using the server on 127.0.0.1:{LOCAL_PORT}"
        ));
        Self::external(url, format!("the local server on 127.0.0.1:{LOCAL_PORT}"))
    }

    /// A URL on the `postgres` database of a role that may create databases.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The URL of `database` on the same server, as the same role.
    pub fn database_url(&self, database: &str) -> String {
        testkit::with_database(&self.admin_url, database)
    }

    /// Where this PostgreSQL comes from, for the user.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Stops a private cluster (nothing otherwise).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match &mut self.private {
            Some(cluster) => cluster.stop(),
            None => Ok(()),
        }
    }
}

/// The admin URL of the server on 127.0.0.1:5432 if user `postgres` gets in
/// without a password; otherwise why not.
fn probe_local() -> Result<String, String> {
    if !util::accepts(("127.0.0.1", LOCAL_PORT), Duration::from_secs(1)) {
        return Err("nothing listens there".to_owned());
    }
    let url = testkit::loopback_url("postgres", None, LOCAL_PORT, "postgres");
    check_url(&url)?;
    Ok(url)
}

/// Whether `url` lets us in (`select 1` through psql). Without psql we can
/// only check that the port answers, and say so.
fn check_url(url: &str) -> Result<(), String> {
    let Some(psql) = find_psql() else {
        term::warn(&format!(
            "psql is not installed, so the PostgreSQL at {} is assumed to accept us; \
             install postgresql-client for a real check",
            testkit::redact(url)
        ));
        return Ok(());
    };
    let out = util::capture(
        Command::new(psql)
            .args(["-X", "-w", "-A", "-t", "-c", "select 1", "-d", url])
            .env("PGCONNECT_TIMEOUT", "5"),
    )
    .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "psql said: {}",
            err.lines().next().unwrap_or("nothing").trim()
        ))
    }
}

/// `psql`: on PATH, else beside the installed `initdb`.
pub fn find_psql() -> Option<PathBuf> {
    util::which("psql").or_else(|| {
        find_bin_dir()
            .map(|d| d.join("psql"))
            .filter(|p| util::is_executable(p))
    })
}

/// The newest `/usr/lib/postgresql/<N>/bin` with initdb (Debian's layout),
/// else `pg_config --bindir`, else where `initdb` on PATH really lives.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            util::is_executable(&bin.join("initdb")).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let from_pg_config = util::which("pg_config")
        .and_then(|pg_config| util::capture(Command::new(pg_config).arg("--bindir")).ok())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|dir| util::is_executable(&dir.join("initdb")));
    from_pg_config.or_else(|| {
        let initdb = fs::canonicalize(util::which("initdb")?).ok()?;
        let dir = initdb.parent()?.to_path_buf();
        util::is_executable(&dir.join("pg_ctl")).then_some(dir)
    })
}

/// A cluster of our own, started by us and stopped by us.
#[derive(Debug)]
struct PrivateCluster {
    bin_dir: PathBuf,
    /// Holds `data/` and `postgres.log`; owned by the cluster's user.
    base: PathBuf,
    port: u16,
    /// `Some("postgres")` when we are root and must switch user.
    run_as: Option<&'static str>,
    /// Whether we started it and so must stop it.
    running: bool,
}

impl PrivateCluster {
    fn start(bin_dir: &Path) -> anyhow::Result<Self> {
        let run_as = util::is_root().then_some(PG_SYSTEM_USER);
        let base = prepare_base(run_as)?;
        let mut cluster = Self {
            bin_dir: bin_dir.to_path_buf(),
            base,
            port: 0,
            run_as,
            running: false,
        };
        if !cluster.data().join("PG_VERSION").exists() {
            cluster.init()?;
        } else if let Some(port) = cluster.running_port()? {
            // Another xtask's (an `up` beside a `test`), or one left by an
            // xtask that was killed: use it, and leave it to its owner.
            cluster.port = port;
            term::warn(&format!(
                "a private PostgreSQL already runs in {} on port {port}; using it and leaving \
                 it running (stop it with `{}`)",
                util::shown(&cluster.base),
                util::display(&cluster.stop_command()),
            ));
            return Ok(cluster);
        }
        cluster.port = util::preferred_or_free_port(PRIVATE_PORT);
        let log = cluster.base.join("postgres.log");
        let mut start = cluster.pg_command("pg_ctl");
        start
            .arg("-D")
            .arg(cluster.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", cluster.port))
            .arg("start");
        // Its own process group: Ctrl-C in the terminal must not reach the
        // postmaster before the workers that use it have stopped.
        std::os::unix::process::CommandExt::process_group(&mut start, 0);
        util::run(&mut start).with_context(|| {
            format!(
                "starting the private PostgreSQL (its log: {}; if {} was made by another \
                 PostgreSQL version, delete it)",
                util::shown(&log),
                util::shown(&cluster.base)
            )
        })?;
        cluster.running = true;
        term::step(&format!(
            "PostgreSQL: private cluster in {} on 127.0.0.1:{} (log: {})",
            util::shown(&cluster.base),
            cluster.port,
            util::shown(&log)
        ));
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    fn admin_url(&self) -> String {
        testkit::loopback_url("postgres", None, self.port, "postgres")
    }

    fn describe(&self) -> String {
        let fate = if self.running {
            "stopped on exit"
        } else {
            "already running; left running"
        };
        format!("a private cluster in {} ({fate})", util::shown(&self.base))
    }

    /// A command running `program` from the PostgreSQL bin dir, as the
    /// cluster's user, from a directory that user may enter.
    fn pg_command(&self, program: &str) -> Command {
        let bin = self.bin_dir.join(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        cmd.current_dir(&self.base);
        cmd
    }

    fn init(&self) -> anyhow::Result<()> {
        let mut initdb = self.pg_command("initdb");
        initdb.arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        term::command(&util::display(&initdb));
        let out = util::capture(&mut initdb)?;
        if !out.status.success() {
            bail!(
                "initdb failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Loopback only, no Unix socket (its default directory may not exist
        // or belong to another cluster), and no durability: this cluster
        // holds throwaway development and test data, and tests create a
        // database each.
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .context("opening the new cluster's postgresql.conf")?;
        conf.write_all(
            b"\n# Added by `cargo xtask`: a private throwaway cluster.\n\
              listen_addresses = '127.0.0.1'\n\
              unix_socket_directories = ''\n\
              max_connections = 300\n\
              fsync = off\n\
              synchronous_commit = off\n\
              full_page_writes = off\n",
        )?;
        Ok(())
    }

    /// The port of the cluster if it is already running.
    fn running_port(&self) -> anyhow::Result<Option<u16>> {
        let mut status = self.pg_command("pg_ctl");
        status.arg("-D").arg(self.data()).arg("status");
        if !util::capture(&mut status)?.status.success() {
            return Ok(None);
        }
        // postmaster.pid: pid, data directory, start time, port, …
        let pid_file = self.data().join("postmaster.pid");
        let text = fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        let port = text
            .lines()
            .nth(3)
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("no port in {}", pid_file.display()))?;
        Ok(Some(port))
    }

    /// The command that stops this cluster.
    fn stop_command(&self) -> Command {
        let mut stop = self.pg_command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "30", "stop"]);
        stop
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        util::run(&mut self.stop_command()).context("stopping the private PostgreSQL")
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            term::warn(&format!("{e:#}"));
        }
    }
}

/// Creates the directory for the private cluster: `.dev/pg`, owned by
/// `run_as` if given. When that user cannot reach `.dev/pg` (the repository
/// is under a private home directory, say), a directory under the system's
/// temporary directory is used instead.
fn prepare_base(run_as: Option<&str>) -> anyhow::Result<PathBuf> {
    let root = util::workspace_root();
    let base = root.join(".dev/pg");
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let Some(user) = run_as else {
        return Ok(base);
    };
    let account = nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .with_context(|| {
            format!(
                "we run as root, and initdb refuses root, but there is no `{user}` system user \
                 to own the private cluster. Create one (`useradd --system --create-home \
                 --home-dir /var/lib/postgresql {user}`), or run as a normal user, or set \
                 {ADMIN_URL_VAR}"
            )
        })?;
    let own = |dir: &Path| -> anyhow::Result<()> {
        std::os::unix::fs::chown(dir, Some(account.uid.as_raw()), Some(account.gid.as_raw()))
            .with_context(|| format!("giving {} to {user}", dir.display()))
    };
    own(&base)?;
    let reachable = util::capture(
        Command::new("runuser")
            .args(["-u", user, "--", "test", "-w"])
            .arg(&base)
            .current_dir("/"),
    )
    .context("runuser (util-linux) is needed to run initdb as postgres")?
    .status
    .success();
    if reachable {
        return Ok(base);
    }
    let fallback = std::env::temp_dir().join(format!("natsauth-pg-{}", path_tag(&root)));
    fs::create_dir_all(&fallback)?;
    own(&fallback)?;
    fs::set_permissions(
        &fallback,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    term::warn(&format!(
        "user {user} cannot reach {}; the private cluster lives in {} instead",
        base.display(),
        fallback.display()
    ));
    Ok(fallback)
}

/// A short stable tag for a path (FNV-1a), to name per-checkout directories.
fn path_tag(path: &Path) -> String {
    let hash = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// Drops a run's own database (its stack is stopped by now).
pub fn drop_database(pg: &Postgres, database: &str) -> anyhow::Result<()> {
    let Some(psql) = find_psql() else {
        term::warn(&format!(
            "psql is not installed, so the database {database} is left behind; drop it by hand"
        ));
        return Ok(());
    };
    let mut drop = Command::new(psql);
    drop.args(["-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            r#"drop database if exists "{database}" with (force)"#
        ))
        .args(["-d", pg.admin_url()]);
    let out = util::capture(&mut drop)?;
    if !out.status.success() {
        bail!(
            "dropping the database {database}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    term::step(&format!("dropped the database {database}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tags_are_stable_and_distinct() {
        assert_eq!(path_tag(Path::new("/a")), path_tag(Path::new("/a")));
        assert_ne!(path_tag(Path::new("/a")), path_tag(Path::new("/b")));
    }
}
