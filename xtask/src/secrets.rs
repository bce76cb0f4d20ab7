//! Development secrets, generated once into `.dev/` (which git ignores):
//!
//! * `.dev/nats.env`: the four `NATS_*_PASSWORD` variables that `nats.conf`
//!   reads from nats-server's environment (mode 0600). This file is the
//!   source of truth.
//! * `.dev/secrets/nats-<user>-password`: each process's own password, copied
//!   from `nats.env`, for compose secrets and `<PREFIX>_NATS__PASSWORD_FILE`.
//! * `.dev/secrets/pg-<who>-password`: PostgreSQL passwords, each file its
//!   own source of truth (made once, kept): `superuser` (compose's
//!   PostgreSQL), `migrator`, `auth-worker`, `user-worker` (the roles of
//!   `auth-worker provision`, which sets them on the cluster in use).
//! * `.dev/keys/jwt-ed25519.pem`: the token-signing key, made by
//!   `auth-worker gen-key`.
//! * `.dev/secrets/session-key`: the gateway's key for the browser session
//!   cookie (32 random bytes, base64; mode 0600).

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use rand::{Rng, seq::SliceRandom};

use crate::{term, util};

/// The passwords file, relative to the workspace root.
pub const NATS_ENV: &str = ".dev/nats.env";
/// Per-process password files, for compose and `*_NATS__PASSWORD_FILE`.
pub const SECRETS_DIR: &str = ".dev/secrets";
/// The JWT signing key `auth-worker` reads by default.
pub const JWT_KEY: &str = ".dev/keys/jwt-ed25519.pem";
/// The session-cookie key the gateway reads by default.
pub const SESSION_KEY: &str = ".dev/secrets/session-key";
/// The key that seals authenticator-app secrets (the auth-worker's
/// `mfa.key_file`).
pub const MFA_KEY: &str = ".dev/secrets/mfa-key";

/// The PostgreSQL password files in [`SECRETS_DIR`]: the superuser's and
/// those `auth-worker provision --passwords-dir` reads.
pub const PG_PASSWORD_FILES: [&str; 4] = [
    "pg-superuser-password",
    "pg-migrator-password",
    "pg-auth-worker-password",
    "pg-user-worker-password",
];

/// The PostgreSQL roles (made by `auth-worker provision`) and their password
/// files.
pub const PG_MIGRATOR: (&str, &str) = ("natsauth_migrator", "pg-migrator-password");
pub const PG_AUTH_WORKER: (&str, &str) = ("natsauth_auth_worker", "pg-auth-worker-password");
pub const PG_USER_WORKER: (&str, &str) = ("natsauth_user_worker", "pg-user-worker-password");

/// The NATS users of `nats.conf` and the variable holding each password.
pub const NATS_USERS: [(&str, &str); 5] = [
    ("gateway", "NATS_GATEWAY_PASSWORD"),
    ("auth-worker", "NATS_AUTH_WORKER_PASSWORD"),
    ("user-worker", "NATS_USER_WORKER_PASSWORD"),
    ("mail-worker", "NATS_MAIL_WORKER_PASSWORD"),
    ("ops", "NATS_OPS_PASSWORD"),
];

/// `cargo xtask secrets`.
pub fn run() -> anyhow::Result<()> {
    let passwords = NatsPasswords::ensure()?;
    passwords.write_process_files()?;
    ensure_pg_passwords()?;
    ensure_session_key()?;
    ensure_mfa_key()?;
    println!(
        "NATS passwords: {NATS_ENV} (nats-server's environment; delete it to make new ones)\n\
         per process:    {SECRETS_DIR}/nats-<user>-password (mounted by compose.yaml)\n\
         PostgreSQL:     {SECRETS_DIR}/pg-<superuser|migrator|auth-worker|user-worker>-password \
         (delete one to make a new one)\n\
         session cookie: {SESSION_KEY} (the gateway's sealing key; to rotate, move it to \
         GATEWAY_SESSION__PREVIOUS_KEY_FILE's path and run this again)\n\
         JWT key:        {JWT_KEY} is made by `cargo xtask up`; compose keeps its own \
         in the `jwt-key` volume"
    );
    Ok(())
}

/// The NATS passwords, one per user of `nats.conf`.
#[derive(Debug)]
pub struct NatsPasswords {
    /// Variable name → password.
    by_var: BTreeMap<String, String>,
}

impl NatsPasswords {
    /// Reads `.dev/nats.env`, creating it (or adding what it lacks) first.
    pub fn ensure() -> anyhow::Result<Self> {
        let path = Path::new(NATS_ENV);
        let mut by_var = if path.exists() {
            let text = fs::read_to_string(path).with_context(|| format!("reading {NATS_ENV}"))?;
            parse_env(&text)
        } else {
            BTreeMap::new()
        };
        let missing: Vec<&str> = NATS_USERS
            .iter()
            .map(|(_, var)| *var)
            .filter(|var| by_var.get(*var).is_none_or(|v| v.is_empty()))
            .collect();
        if !missing.is_empty() {
            for var in &missing {
                by_var.insert((*var).to_owned(), new_password());
            }
            write_env(path, &by_var)?;
            term::step(&format!(
                "generated {} in {NATS_ENV} (mode 0600)",
                missing.join(", ")
            ));
        }
        let passwords = Self { by_var };
        passwords.check()?;
        Ok(passwords)
    }

    /// New passwords for every user, kept in memory only (for a throwaway
    /// stack such as `cargo xtask fuzz`'s; `.dev/nats.env` is not touched).
    pub fn fresh() -> Self {
        let by_var = NATS_USERS
            .iter()
            .map(|(_, var)| ((*var).to_owned(), new_password()))
            .collect();
        Self { by_var }
    }

    /// The password of the NATS `user` (as named in `nats.conf`).
    pub fn for_user(&self, user: &str) -> anyhow::Result<&str> {
        let var = NATS_USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, var)| *var)
            .with_context(|| format!("no NATS user {user:?} in nats.conf"))?;
        self.by_var
            .get(var)
            .map(String::as_str)
            .with_context(|| format!("{var} missing from {NATS_ENV}"))
    }

    /// Refuses, naming the variable, a password that nats-server would not
    /// hold as one. It reads `password: $VAR` with `VAR` empty (or `""`) as
    /// a user without a password, whom anyone may log in as; a value that
    /// is not a plain token (a digit first, other characters) it misreads or
    /// refuses.
    pub fn check(&self) -> anyhow::Result<()> {
        for (user, var) in NATS_USERS {
            let value = self
                .by_var
                .get(var)
                .with_context(|| format!("{var} is missing (see {NATS_ENV})"))?;
            if value.trim_matches(['"', '\'', ' ']).is_empty() {
                bail!(
                    "{var} is empty (see {NATS_ENV}): nats-server would let anyone log in as \
                     NATS user {user:?} without a password. Delete the line and run `cargo \
                     xtask secrets` to make a new one"
                );
            }
            if !value.starts_with(|c: char| c.is_ascii_alphabetic())
                || !value.chars().all(|c| c.is_ascii_alphanumeric())
            {
                bail!(
                    "{var} (see {NATS_ENV}) must start with a letter and hold only letters \
                     and digits: nats-server reads it as a config token"
                );
            }
        }
        Ok(())
    }

    /// `(variable, password)` pairs: nats-server's environment.
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        NATS_USERS
            .iter()
            .filter_map(|(_, var)| self.by_var.get(*var).map(|v| (*var, v.as_str())))
    }

    /// Writes `.dev/secrets/nats-<user>-password` for each process user.
    ///
    /// The directory is 0700 so nobody else on this machine reads them; the
    /// files are 0644 because compose bind-mounts them into containers that
    /// run as an unprivileged user with another uid (compose ignores a
    /// secret's `mode` for file secrets).
    pub fn write_process_files(&self) -> anyhow::Result<()> {
        let dir = Path::new(SECRETS_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {SECRETS_DIR}"))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        for (user, _) in NATS_USERS.iter().filter(|(u, _)| *u != "ops") {
            let path = dir.join(format!("nats-{user}-password"));
            let want = format!("{}\n", self.for_user(user)?);
            if fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                fs::write(&path, &want).with_context(|| format!("writing {}", path.display()))?;
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }
}

/// Writes each of [`PG_PASSWORD_FILES`] that is missing or empty, with a new
/// password, and keeps the others. Returns the directory, absolute.
///
/// Modes as for the NATS password files: the directory 0700, the files 0644
/// (compose bind-mounts them for another uid).
pub fn ensure_pg_passwords() -> anyhow::Result<PathBuf> {
    let dir = util::workspace_root().join(SECRETS_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {SECRETS_DIR}"))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    let mut made = Vec::new();
    for name in PG_PASSWORD_FILES {
        let path = dir.join(name);
        let present = fs::read_to_string(&path).is_ok_and(|t| !t.trim().is_empty());
        if !present {
            fs::write(&path, format!("{}\n", new_password()))
                .with_context(|| format!("writing {}", path.display()))?;
            made.push(name);
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    }
    if !made.is_empty() {
        term::step(&format!(
            "generated the PostgreSQL passwords {} in {SECRETS_DIR}",
            made.join(", ")
        ));
    }
    Ok(dir)
}

/// `KEY=value` lines; blank lines and `#` comments skipped.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn write_env(path: &Path, by_var: &BTreeMap<String, String>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut text = String::from(
        "# NATS passwords for nats.conf, generated by `cargo xtask`. Not in git.\n\
         # Delete this file to generate new ones (then restart the stack).\n",
    );
    for (var, value) in by_var {
        text.push_str(&format!("{var}={value}\n"));
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only when the file is created; an older file is fixed up.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// 32 random letters and digits, starting with a letter: nats-server parses
/// an environment variable's value as a config token, so a value such as
/// `12k…` could be read as a number; a leading letter keeps it a string.
fn new_password() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    let first = char::from(*LETTERS.choose(&mut rng).unwrap_or(&b'a'));
    std::iter::once(first)
        .chain((0..31).map(|_| char::from(rng.sample(rand::distributions::Alphanumeric))))
        .collect()
}

/// Creates the directory of a key file, readable by its owner only.
fn private_dir_of(path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().context("the key path has a directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// The gateway's session-cookie key, made if missing (32 random bytes in
/// base64, as `gateway gen-session-key` writes). Returns its absolute path.
pub fn ensure_session_key() -> anyhow::Result<PathBuf> {
    ensure_key(SESSION_KEY)
}

/// The auth-worker's second-factor key, made if missing (the same format).
pub fn ensure_mfa_key() -> anyhow::Result<PathBuf> {
    ensure_key(MFA_KEY)
}

/// 32 random bytes in base64 at `relative` (under the workspace), made if
/// missing, readable by the owner only.
fn ensure_key(relative: &str) -> anyhow::Result<PathBuf> {
    let path = util::workspace_root().join(relative);
    if path.exists() {
        return Ok(path);
    }
    private_dir_of(&path)?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill(&mut key);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{}", base64_standard(&key))?;
    Ok(path)
}

/// Standard base64 with padding (what the gateway's key reader takes);
/// xtask keeps its dependencies few, and this is all it needs.
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The JWT signing key: made with `auth-worker gen-key` if missing. Returns
/// its absolute path.
pub fn ensure_jwt_key(auth_worker: &Path) -> anyhow::Result<PathBuf> {
    let path = util::workspace_root().join(JWT_KEY);
    if path.exists() {
        return Ok(path);
    }
    private_dir_of(&path)?;
    util::run(
        Command::new(auth_worker)
            .arg("gen-key")
            .arg("--out")
            .arg(&path),
    )
    .context("generating the JWT signing key")?;
    if !path.exists() {
        bail!("`auth-worker gen-key` did not write {}", path.display());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64_standard(b""), "");
        assert_eq!(base64_standard(b"f"), "Zg==");
        assert_eq!(base64_standard(b"fo"), "Zm8=");
        assert_eq!(base64_standard(b"foo"), "Zm9v");
        assert_eq!(base64_standard(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_standard(&[0xff; 32]).len(), 44);
        assert_eq!(base64_standard(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn passwords_are_long_alphanumeric_and_start_with_a_letter() {
        for _ in 0..200 {
            let p = new_password();
            assert_eq!(p.len(), 32);
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(p.starts_with(|c: char| c.is_ascii_alphabetic()));
        }
        assert_ne!(new_password(), new_password());
    }

    fn with(var: &str, value: &str) -> NatsPasswords {
        let mut passwords = NatsPasswords::fresh();
        passwords.by_var.insert(var.to_owned(), value.to_owned());
        passwords
    }

    #[test]
    fn an_empty_nats_password_is_refused_naming_its_variable() {
        assert!(NatsPasswords::fresh().check().is_ok());
        // `""` is how a hand-edited env file spells empty; nats-server reads
        // the value as a config token, so it would be an empty password too.
        for empty in ["", "\"\"", "''"] {
            let err = with("NATS_USER_WORKER_PASSWORD", empty)
                .check()
                .expect_err("an empty password was accepted")
                .to_string();
            assert!(err.contains("NATS_USER_WORKER_PASSWORD"), "{err}");
            assert!(err.contains(NATS_ENV), "{err}");
        }
        let mut missing = NatsPasswords::fresh();
        missing.by_var.remove("NATS_OPS_PASSWORD");
        let err = missing
            .check()
            .expect_err("a missing password was accepted");
        assert!(err.to_string().contains("NATS_OPS_PASSWORD"), "{err}");
    }

    #[test]
    fn a_nats_password_that_is_not_a_plain_token_is_refused() {
        for bad in ["12345abc", "pass word", "pa$$word"] {
            let err = with("NATS_GATEWAY_PASSWORD", bad)
                .check()
                .expect_err("a password nats-server misreads was accepted")
                .to_string();
            assert!(err.contains("NATS_GATEWAY_PASSWORD"), "{err}");
        }
    }

    #[test]
    fn env_files_skip_comments_and_blank_lines() {
        let vars = parse_env("# x\n\nA=1\n B = two \nnot a pair\nC=x=y\n");
        assert_eq!(vars.len(), 3);
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two");
        assert_eq!(vars["C"], "x=y");
    }
}
