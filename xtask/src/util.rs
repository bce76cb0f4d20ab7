//! Small helpers: where the workspace is, running commands so the user sees
//! them, finding programs, installing Debian packages, talking HTTP. (Free
//! ports and PostgreSQL URLs are `testkit`'s, shared with the tests.)

use std::{
    ffi::OsStr,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{signals, term};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// The `cargo` that runs us (cargo sets `CARGO`), so nested builds use the
/// same toolchain.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, or `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A command line as the user would type it (environment not shown: it may
/// hold secrets).
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with the terminal attached, after printing it; fails unless it
/// exits 0.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = display(cmd);
    term::command(&shown);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`; is it installed?"))?;
    if status.success() {
        Ok(())
    } else if signals::requested() {
        // Ctrl-C reached the command too (same process group).
        bail!("interrupted: `{shown}` stopped ({status})")
    } else {
        bail!("`{shown}` failed ({status})")
    }
}

/// Runs `cmd` quietly and returns its output, whatever its exit status.
pub fn capture(cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{}`", display(cmd)))
}

/// The first executable called `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `name` on `PATH`, else the first of `dirs` that holds it.
pub fn find_program(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    which(name).or_else(|| {
        dirs.iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| is_executable(p))
    })
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What the workspace needs to build beyond Rust: OpenSSL's headers and
/// pkg-config (webauthn-rs, the auth-worker's passkeys, links OpenSSL).
/// Installed when missing, as the other tools are.
pub fn ensure_build_deps() -> anyhow::Result<()> {
    let found = Command::new("pkg-config")
        .args(["--exists", "openssl"])
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Ok(());
    }
    apt_install(
        &["libssl-dev", "pkg-config"],
        "OpenSSL's headers (the auth-worker's passkeys build against them)",
    )
}

/// Installs Debian packages when we may (root, apt-get present); otherwise
/// fails with the command the user should run.
pub fn apt_install(packages: &[&str], what: &str) -> anyhow::Result<()> {
    let list = packages.join(" ");
    if which("apt-get").is_none() {
        bail!(
            "{what} is missing and this machine has no apt-get. Install it with your \
             system's package manager (Debian/Ubuntu: `sudo apt-get install {list}`), \
             then run this command again."
        );
    }
    if !is_root() {
        bail!(
            "{what} is missing. Install it with:\n\n    sudo apt-get update && sudo apt-get install -y {list}\n\n\
             then run this command again."
        );
    }
    term::step(&format!(
        "{what} is missing: installing {list} with apt-get"
    ));
    run(Command::new("apt-get")
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| format!("installing {list}"))
}

/// `preferred` if it is free, else any free port.
pub fn preferred_or_free_port(preferred: u16) -> u16 {
    if testkit::port_is_free(preferred) {
        preferred
    } else {
        testkit::free_port()
    }
}

/// Whether something accepts TCP connections at `addr` within `timeout`.
pub fn accepts(addr: impl ToSocketAddrs, timeout: Duration) -> bool {
    addr.to_socket_addrs()
        .into_iter()
        .flatten()
        .any(|a| TcpStream::connect_timeout(&a, timeout).is_ok())
}

/// Polls `ready` every 100 ms until it says yes, `timeout` passes, the user
/// interrupts, or `alive` reports a problem (e.g. the process died).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        alive()?;
        if signals::requested() {
            bail!("interrupted while waiting for {what}");
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready after {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The address to connect to for a listener bound at `addr` (a wildcard
/// address is reached on loopback).
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// A minimal `GET` over HTTP/1.1 (no TLS, no redirects): the status code and
/// the body as text. Enough for health checks without an HTTP client crate.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    http_request(addr, "GET", path, None, timeout)
}

/// [`http_get`] for any method, with an optional JSON body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = json_body.unwrap_or_default();
    let content = match json_body {
        Some(body) => format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ),
        None => String::new(),
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: xtask\r\n\
         {content}\r\n{body}"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status line from {addr}"))?;
    Ok((status, body.trim().to_owned()))
}

/// `path` relative to the workspace root when it is inside it (for messages).
pub fn shown(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn commands_are_shown_as_a_shell_would_read_them() {
        let mut cmd = Command::new("psql");
        cmd.args(["-c", "select 1", "--x=it's"]);
        assert_eq!(display(&cmd), r"psql -c 'select 1' '--x=it'\''s'");
    }

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        let addr: SocketAddr = "0.0.0.0:8080".parse().expect("an address");
        assert_eq!(connectable(addr).to_string(), "127.0.0.1:8080");
        let addr: SocketAddr = "10.1.2.3:80".parse().expect("an address");
        assert_eq!(connectable(addr), addr);
    }

    #[test]
    fn a_port_in_use_is_not_free_and_another_is_offered() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = held.local_addr().expect("addr").port();
        assert!(!testkit::port_is_free(port));
        let other = preferred_or_free_port(port);
        assert_ne!(other, port);
    }
}
