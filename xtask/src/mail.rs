//! The mail catcher (Debian's `python3-aiosmtpd`, installed like
//! `nats-server`) and `cargo xtask mail`, which lists what it caught.
//!
//! `cargo xtask up` runs `python3 -m aiosmtpd -n -l 127.0.0.1:<port> -c
//! aiosmtpd.handlers.Mailbox .dev/mail`: a real SMTP server that writes each
//! message to `.dev/mail/new/`, where a person opens the links.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;

use crate::{term, util};

/// Where `cargo xtask up` keeps caught mail (a maildir).
pub const MAILDIR: &str = ".dev/mail";
/// The catcher's SMTP port, unless taken.
pub const DEFAULT_SMTP_PORT: u16 = 1025;

/// Debian's Python, which sees Debian's `python3-aiosmtpd` (a `python3`
/// earlier on the `PATH`, such as pyenv's, does not).
fn python() -> PathBuf {
    let debian = Path::new("/usr/bin/python3");
    if debian.exists() {
        debian.to_owned()
    } else {
        "python3".into()
    }
}

fn has_aiosmtpd(python: &Path) -> bool {
    util::capture(Command::new(python).args(["-c", "import aiosmtpd"]))
        .is_ok_and(|o| o.status.success())
}

/// The Python with aiosmtpd: found, or installed with apt-get when we are
/// root; otherwise an error saying how to install it.
pub fn ensure_catcher() -> anyhow::Result<PathBuf> {
    let mut python = python();
    if !has_aiosmtpd(&python) {
        util::apt_install(&["python3-aiosmtpd"], "aiosmtpd (the mail catcher)")?;
        python = self::python();
        if !has_aiosmtpd(&python) {
            anyhow::bail!(
                "apt-get installed python3-aiosmtpd but {} cannot import it",
                python.display()
            );
        }
    }
    term::step(&format!("mail catcher: {} -m aiosmtpd", python.display()));
    Ok(python)
}

/// The catcher's command: SMTP on 127.0.0.1:`port`, each message a file in
/// `maildir/new/`.
pub fn catcher_command(python: &Path, port: u16, maildir: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir);
    cmd
}

/// One caught mail as listed.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    date: String,
    to: String,
    subject: String,
    links: Vec<String>,
}

/// `cargo xtask mail`: every caught mail, oldest first, with its links.
pub fn run() -> anyhow::Result<()> {
    let new = util::workspace_root().join(MAILDIR).join("new");
    let mut files: Vec<_> = match std::fs::read_dir(&new) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect(),
        Err(_) => Vec::new(),
    };
    if files.is_empty() {
        println!(
            "No mail caught yet in {}/ (`cargo xtask up` runs the catcher).",
            util::shown(&new)
        );
        return Ok(());
    }
    files.sort();
    for (_, path) in files {
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mail = list(&String::from_utf8_lossy(&raw));
        println!("{}  to {}  {}", mail.date, mail.to, mail.subject);
        for link in &mail.links {
            println!("    {link}");
        }
        println!("    ({})", util::shown(&path));
    }
    Ok(())
}

/// The headers and links of a raw message (quoted-printable bodies
/// decoded; the mail-worker writes ASCII, so nothing else is needed here).
fn list(raw: &str) -> Listed {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let header = |name: &str| {
        let mut value: Option<String> = None;
        for line in head.lines() {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value.unwrap_or_default()
    };
    let decoded = quoted_printable(body);
    let mut links: Vec<String> = Vec::new();
    for scheme in ["http://", "https://"] {
        for (at, _) in decoded.match_indices(scheme) {
            let link: String = decoded[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>'))
                .collect();
            if link.contains("token=") && !links.contains(&link) {
                links.push(link);
            }
        }
    }
    Listed {
        date: header("Date"),
        to: header("To"),
        subject: header("Subject"),
        links,
    }
}

/// Quoted-printable (RFC 2045) decoded: soft line breaks joined, `=XX`
/// bytes restored.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_mail_is_listed_with_its_decoded_links() {
        let raw = "Date: Mon, 07 Dec 2026 14:20:00 +0000\r\n\
                   To: ann@example.com\r\n\
                   Subject: Confirm your email\r\n\
                   \taddress\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\
                   \r\n\
                   Open http://127.0.0.1:8080/verify?token=3DabcDEF_-12=\r\n\
                   34 now.\r\n\
                   <a href=3D\"http://127.0.0.1:8080/verify?token=3DabcDEF_-1234\">\r\n";
        assert_eq!(
            list(raw),
            Listed {
                date: "Mon, 07 Dec 2026 14:20:00 +0000".into(),
                to: "ann@example.com".into(),
                subject: "Confirm your email address".into(),
                links: vec!["http://127.0.0.1:8080/verify?token=abcDEF_-1234".into()],
            }
        );
    }
}
