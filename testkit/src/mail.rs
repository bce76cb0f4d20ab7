//! A real SMTP server for the tests: Debian's `python3-aiosmtpd`, run as
//! `python3 -m aiosmtpd -n -l 127.0.0.1:<port> -c aiosmtpd.handlers.Mailbox
//! <maildir>`, which writes each message it accepts to `<maildir>/new/` (and
//! says 250 only after that). `cargo xtask test` installs it, as `cargo xtask
//! up` runs it for people.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

use crate::{TempDir, eventually, free_port};

/// One mail as caught: its headers and decoded bodies.
#[derive(Debug, Clone)]
pub struct CaughtMail {
    /// The `To` addresses (or the envelope's recipients without one).
    pub to: Vec<String>,
    pub subject: String,
    /// Without its angle brackets (`<id@domain>` → `id@domain`).
    pub message_id: String,
    /// The `text/plain` body, decoded (quoted-printable or base64).
    pub text: String,
    /// The `text/html` body, decoded; empty without one.
    pub html: String,
    /// The message as it was received.
    pub raw: String,
}

impl CaughtMail {
    /// The first link of the text body whose path starts with `path_prefix`
    /// (`/verify`, `/reset`): the whole URL.
    pub fn link(&self, path_prefix: &str) -> Option<String> {
        self.text
            .split_whitespace()
            .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
            .find(|url| {
                url.split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
                    .is_some_and(|path| path.starts_with(path_prefix))
            })
            .map(str::to_owned)
    }

    /// The `token` query parameter of [`link`](Self::link).
    pub fn token(&self, path_prefix: &str) -> Option<String> {
        let link = self.link(path_prefix)?;
        let (_, query) = link.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_owned)
    }

    fn parse(raw: &[u8]) -> Option<Self> {
        let message = mail_parser::MessageParser::default().parse(raw)?;
        let mut to: Vec<String> = message
            .to()
            .map(|list| {
                list.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if to.is_empty() {
            // The catcher's own header: the envelope's recipients.
            to = message
                .header_raw("X-RcptTo")
                .map(|v| v.split(',').map(|a| a.trim().to_owned()).collect())
                .unwrap_or_default();
        }
        Some(Self {
            to,
            subject: message.subject().unwrap_or_default().to_owned(),
            message_id: message.message_id().unwrap_or_default().to_owned(),
            text: message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            html: message
                .body_html(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            raw: String::from_utf8_lossy(raw).into_owned(),
        })
    }
}

/// The Python that has aiosmtpd: `MAIL_CATCHER_PYTHON`, else Debian's
/// (`/usr/bin/python3`: a `python3` earlier on the `PATH`, say pyenv's,
/// does not see Debian's packages), else `python3`.
pub fn mail_catcher_python() -> PathBuf {
    if let Some(python) = std::env::var_os("MAIL_CATCHER_PYTHON") {
        return python.into();
    }
    let debian = Path::new("/usr/bin/python3");
    if debian.exists() {
        debian.to_owned()
    } else {
        "python3".into()
    }
}

/// An SMTP server on a free loopback port that keeps every message in a
/// maildir of its own; killed on drop (the maildir removed with it).
#[derive(Debug)]
pub struct MailCatcher {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl MailCatcher {
    /// Starts the catcher and returns once it accepts connections.
    pub async fn start() -> Self {
        let python = mail_catcher_python();
        let has_aiosmtpd = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has_aiosmtpd,
            "the mail catcher needs aiosmtpd for {}: run `cargo xtask test`, it installs it, \
             or apt-get install python3-aiosmtpd",
            python.display()
        );
        let mut catcher = Self {
            child: None,
            port: free_port(),
            dir: TempDir::new(),
        };
        catcher.restart().await;
        catcher
    }

    /// The SMTP port (plain SMTP on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The maildir: each caught message is a file in `new/`.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path.join("maildir")
    }

    /// Kills the server (SIGKILL): a mail server that is down. The mail
    /// caught so far stays.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill the mail catcher");
        }
    }

    /// Starts the server again (stopping it first if it runs) on the same
    /// port and maildir, and returns once it accepts connections.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut child = Command::new(mail_catcher_python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the mail catcher (python3 -m aiosmtpd)");
        let port = self.port;
        let up = eventually(
            Duration::from_secs(15),
            Duration::from_millis(25),
            || async move { TcpStream::connect(("127.0.0.1", port)).is_ok() },
        )
        .await;
        if !up {
            let _ = child.kill().await;
            let output = child.wait_with_output().await.ok();
            panic!(
                "the mail catcher did not listen on port {port}: {}",
                output
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            );
        }
        self.child = Some(child);
    }

    /// Every message caught so far, oldest first.
    pub fn messages(&self) -> Vec<CaughtMail> {
        let Ok(entries) = std::fs::read_dir(self.maildir().join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, e.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .filter_map(|raw| CaughtMail::parse(&raw))
            .collect()
    }

    /// The caught messages to `to` whose subject contains `subject_contains`.
    pub fn messages_to(&self, to: &str, subject_contains: &str) -> Vec<CaughtMail> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.to.iter().any(|a| a.eq_ignore_ascii_case(to))
                    && m.subject.contains(subject_contains)
            })
            .collect()
    }

    /// Waits (15 s at most) for a message to `to` whose subject contains
    /// `subject_contains`, and returns the latest such.
    pub async fn wait_for(&self, to: &str, subject_contains: &str) -> CaughtMail {
        let caught = eventually(
            Duration::from_secs(15),
            Duration::from_millis(50),
            || async move { !self.messages_to(to, subject_contains).is_empty() },
        )
        .await;
        assert!(
            caught,
            "no mail to {to} with {subject_contains:?} in its subject; caught: {:?}",
            self.messages()
                .iter()
                .map(|m| (m.to.clone(), m.subject.clone()))
                .collect::<Vec<_>>()
        );
        self.messages_to(to, subject_contains)
            .pop()
            .expect("a mail just seen")
    }
}
