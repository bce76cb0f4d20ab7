//! Finding (or installing) `nats-server`.

use std::{path::PathBuf, process::Command};

use anyhow::Context;

use crate::{term, util};

/// Where `nats-server` is looked for after `PATH` (Debian puts it in /usr/sbin,
/// which is not on a normal user's `PATH`).
const DIRS: &[&str] = &["/usr/sbin", "/usr/local/bin", "/usr/bin"];

/// The `nats-server` binary: found, or installed with apt-get when we are
/// root; otherwise an error saying how to install it.
pub fn ensure_server() -> anyhow::Result<PathBuf> {
    let bin = match util::find_program("nats-server", DIRS) {
        Some(bin) => bin,
        None => {
            util::apt_install(&["nats-server"], "nats-server (the NATS server)")?;
            util::find_program("nats-server", DIRS)
                .context("apt-get installed nats-server but it is not in /usr/sbin or on PATH")?
        }
    };
    term::step(&format!(
        "nats-server: {} ({})",
        bin.display(),
        version(&bin)
    ));
    Ok(bin)
}

/// `nats-server --version`'s answer, e.g. `nats-server: v2.9.10`.
fn version(bin: &std::path::Path) -> String {
    util::capture(Command::new(bin).arg("--version"))
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "version unknown".to_owned())
}
