//! Passwords kept in files (Docker/Kubernetes secrets, `.dev/secrets/`): the
//! one way every setting named `…password_file` is read.

use std::path::Path;

use anyhow::{Context, bail};
use secrecy::SecretString;

/// The first line of `path`, trimmed: a password. A missing or empty file is
/// an error naming the file (never the password).
pub fn from_file(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        bail!(
            "the password file {} is empty: write the password on its first line",
            path.display()
        );
    }
    Ok(SecretString::from(line.to_owned()))
}
