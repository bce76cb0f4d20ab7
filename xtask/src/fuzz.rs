//! `cargo xtask fuzz`: Schemathesis, a property-based API fuzzer, against a
//! private stack, driven by the OpenAPI document the gateway serves.
//!
//! 1. Installs Schemathesis (pinned, with every dependency, by
//!    `xtask/fuzz/requirements.txt`) into the Python venv `.dev/tools/schemathesis`
//!    with pip, unless that exact set is already there. No root needed.
//! 2. Builds the binaries and starts a stack of its own: nats-server with the
//!    project's `nats.conf` and fresh in-memory passwords, a fresh database
//!    (`natsauth_fuzz_<pid>`, migrated), a fresh JWT key, one copy of each
//!    worker and the gateway, all on free ports. Their logs go to
//!    `.dev/logs/fuzz/<name>.log` only.
//! 3. Signs up a user and an admin (promoted with SQL, as the contract's
//!    "first ADMIN from the command line"), and logs both in.
//! 4. Pass 1: every operation of `GET /api/openapi.json`, with the ADMIN's
//!    token (an ADMIN reaches every route's handler, where a USER stops at the
//!    role check), every Schemathesis check, a fixed seed and a bounded number
//!    of examples per operation. `ignored_auth` re-sends each secured request
//!    that succeeded without the token and with a forged one.
//! 5. Pass 2: the operations that require a bearer token, with no valid token
//!    at all (Schemathesis generates missing, malformed and random ones); the
//!    custom check in `xtask/fuzz/hooks.py` wants a 401 for each.
//! 6. Stops the stack (also on failure), drops the database, prints a summary
//!    and fails if either pass found anything.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{
    nats,
    pg::{self, PgArgs, Postgres},
    signals,
    supervise::Supervisor,
    term,
    up::{self, Stack},
    util,
};

/// The venv Schemathesis is installed into.
const VENV: &str = ".dev/tools/schemathesis";
/// Every package of that venv, pinned.
const REQUIREMENTS: &str = "xtask/fuzz/requirements.txt";
/// Settings shared by both passes (hooks, no example database, no cache).
const CONFIG: &str = "xtask/fuzz/schemathesis.toml";
/// The processes' logs and Schemathesis's reports.
const LOG_DIR: &str = ".dev/logs/fuzz";
/// The default seed: any fixed number; this one is the day the step landed.
pub const SEED: u64 = 20_261_121;
/// The default number of examples per operation in pass 1, per phase that
/// generates at random (the coverage phase adds its own deterministic cases).
pub const MAX_EXAMPLES: u32 = 100;
/// Pass 2 only needs to show that no secured route answers without a token.
const MAX_EXAMPLES_NO_TOKEN: u32 = 10;
/// The environment variable that tells `hooks.py` the valid token.
const TOKEN_VAR: &str = "NATSAUTH_FUZZ_TOKEN";
const PASSWORD: &str = "fuzzing correct horse";
const USER_EMAIL: &str = "fuzz-user@example.com";
const ADMIN_EMAIL: &str = "fuzz-admin@example.com";
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub options: FuzzOptions,
    #[command(flatten)]
    pg: PgArgs,
}

/// What the fuzzing run generates.
#[derive(Debug, Clone, clap::Args)]
pub struct FuzzOptions {
    /// The seed of the generator: the same seed sends the same requests
    #[arg(long, default_value_t = SEED)]
    pub seed: u64,
    /// Examples per API operation (pass 1, per random phase)
    #[arg(long, value_name = "N", default_value_t = MAX_EXAMPLES,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_examples: u32,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        Self {
            seed: SEED,
            max_examples: MAX_EXAMPLES,
        }
    }
}

/// `cargo xtask fuzz`.
pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    signals::install()?;
    term::header("nats-server and PostgreSQL");
    let nats_server = nats::ensure_server()?;
    let mut pg = Postgres::ensure(args.pg.private_pg)?;
    let result = fuzz(&nats_server, &pg, &args.options);
    let stopped = pg.stop();
    let summary = result?;
    stopped?;
    summary.print();
    Ok(())
}

/// What a fuzzing run did, for the closing summary.
#[derive(Debug)]
pub struct Summary {
    passes: Vec<PassReport>,
    elapsed: Duration,
}

impl Summary {
    /// One line per pass.
    pub fn lines(&self) -> Vec<String> {
        self.passes
            .iter()
            .map(|p| format!("{}: {}", p.name, p.outcome))
            .chain([format!(
                "whole step (build, stack, both passes): {:.0}s",
                self.elapsed.as_secs_f64()
            )])
            .collect()
    }

    fn print(&self) {
        term::header("Fuzzing passed");
        for line in self.lines() {
            println!("  {line}");
        }
    }
}

#[derive(Debug)]
struct PassReport {
    name: &'static str,
    /// Schemathesis's own summary lines, condensed.
    outcome: String,
}

/// Installs Schemathesis, starts a private stack on `pg`, runs both passes,
/// stops everything. Fails if either pass found a problem.
pub fn fuzz(nats_server: &Path, pg: &Postgres, options: &FuzzOptions) -> anyhow::Result<Summary> {
    let started = Instant::now();
    term::header("Schemathesis");
    let schemathesis = ensure_schemathesis()?;

    term::header("Build");
    let bin_dir = up::build_for_tests()?;

    let passes = up::private_stack(
        "fuzz",
        bin_dir,
        nats_server,
        pg,
        Supervisor::new(Path::new(LOG_DIR), up::name_width(1))?.quiet(),
        |stack, sup| fuzz_stack(stack, &schemathesis, options, sup),
    )?;
    Ok(Summary {
        passes,
        elapsed: started.elapsed(),
    })
}

fn fuzz_stack(
    stack: &Stack<'_>,
    schemathesis: &Path,
    options: &FuzzOptions,
    sup: &mut Supervisor,
) -> anyhow::Result<Vec<PassReport>> {
    let gateway = util::connectable(stack.http_addr);
    // Without every worker, routes answer 503 and the fuzzer would report
    // the stack, not the API.
    match util::http_get(gateway, "/readyz", Duration::from_secs(5)) {
        Ok((200, _)) => term::step("the gateway is ready (GET /readyz answers 200)"),
        Ok((status, body)) => {
            bail!("the private stack is not ready: GET /readyz answers {status} {body}")
        }
        Err(e) => bail!("the private stack is not ready: GET /readyz: {e:#}"),
    }

    // A copy of the document the fuzzer reads, for whoever reads a failure.
    let document = Path::new(LOG_DIR).join("openapi.json");
    match util::http_get(gateway, "/api/openapi.json", Duration::from_secs(5)) {
        Ok((200, body)) => {
            fs::write(&document, body).with_context(|| format!("writing {}", document.display()))?
        }
        Ok((status, body)) => bail!("GET /api/openapi.json answers {status}: {body}"),
        Err(e) => bail!("GET /api/openapi.json: {e:#}"),
    }
    term::step(&format!(
        "the OpenAPI document fuzzed: {}",
        document.display()
    ));

    term::header("Accounts");
    // A second account gives the ADMIN's routes (`/api/users/{id}`, …)
    // someone else to find, and shows that a USER logs in too.
    sign_up_and_log_in(gateway, USER_EMAIL)?;
    term::step(&format!("{USER_EMAIL} (USER) signed up and logged in"));
    sign_up_and_log_in(gateway, ADMIN_EMAIL)?;
    promote(stack, ADMIN_EMAIL)?;
    let admin_token = log_in(gateway, ADMIN_EMAIL)?;
    if !admin_token.1.contains(r#""role":"ADMIN""#) {
        bail!(
            "{ADMIN_EMAIL} was promoted but its login reply says otherwise: {}",
            admin_token.1
        );
    }
    term::step(&format!(
        "{ADMIN_EMAIL} promoted to ADMIN with SQL and logged in again; pass 1 uses its token"
    ));

    let url = format!("http://{gateway}/api/openapi.json");
    let report_dir = Path::new(LOG_DIR);
    let passes = [
        Pass {
            name: "pass 1, every operation with an ADMIN token",
            report: "pass1",
            token: Some(&admin_token.0),
            max_examples: options.max_examples,
            secured_only: false,
        },
        Pass {
            name: "pass 2, secured operations without a valid token",
            report: "pass2",
            token: None,
            max_examples: MAX_EXAMPLES_NO_TOKEN.min(options.max_examples),
            secured_only: true,
        },
    ];
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for (i, pass) in passes.iter().enumerate() {
        term::header(&format!(
            "[{}/{}] Schemathesis, {}",
            i + 1,
            passes.len(),
            pass.name
        ));
        if pass.secured_only {
            term::step(
                "Schemathesis warns below that these operations \"returned only 401/403 \
                 responses\": without a valid token, that is what this pass requires",
            );
        }
        let (ok, outcome) = pass.run(schemathesis, &url, options.seed, report_dir, sup)?;
        if !ok {
            failed.push(pass.name);
        }
        reports.push(PassReport {
            name: pass.name,
            outcome,
        });
    }
    for report in &reports {
        term::step(&format!("{}: {}", report.name, report.outcome));
    }
    if !failed.is_empty() {
        bail!(
            "the fuzzer found problems ({}); each failure above shows the request (with a curl \
             command to reproduce it) and the response; the stack's logs are in {LOG_DIR}/",
            failed.join("; ")
        );
    }
    Ok(reports)
}

/// One Schemathesis run.
#[derive(Debug)]
struct Pass<'a> {
    name: &'static str,
    /// The name of its JUnit report in `LOG_DIR`.
    report: &'static str,
    /// The bearer token sent with every request, if any.
    token: Option<&'a str>,
    max_examples: u32,
    /// Only the operations whose security requirement is the bearer token.
    secured_only: bool,
}

impl Pass<'_> {
    /// Runs Schemathesis, its output shown as it comes. Returns whether it
    /// passed, and its summary condensed to one line.
    fn run(
        &self,
        schemathesis: &Path,
        url: &str,
        seed: u64,
        report_dir: &Path,
        sup: &mut Supervisor,
    ) -> anyhow::Result<(bool, String)> {
        let junit = report_dir.join(format!("{}.junit.xml", self.report));
        let mut cmd = Command::new(schemathesis);
        // Hypothesis keeps caches (Unicode tables, constants) in
        // `./.hypothesis` unless told otherwise; keep them with the venv.
        cmd.env(
            "HYPOTHESIS_STORAGE_DIRECTORY",
            Path::new(VENV).join("hypothesis"),
        )
        .args(["--config-file", CONFIG, "run", url])
        .args(["--checks", "all"])
        .args(["--seed", &seed.to_string()])
        .args(["--max-examples", &self.max_examples.to_string()])
        // One request at a time: with a fixed seed, the same requests in
        // the same order, so the database evolves the same way.
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        // Every distinct failure of an operation, not only its first.
        .arg("--continue-on-failure")
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&junit);
        if self.secured_only {
            // Operations whose (first) security requirement is the bearer
            // token; the hook then ignores any whose token is optional.
            cmd.args(["--include-by", "/security/0/bearer == []"]);
        }
        // Shown with the token elided; the real one goes in the environment
        // of hooks.py and on the command line.
        let mut shown = util::display(&cmd);
        if let Some(token) = self.token {
            cmd.args(["--header", &format!("Authorization: Bearer {token}")])
                .env(TOKEN_VAR, token);
            shown.push_str(" --header 'Authorization: Bearer <the token>'");
        } else {
            cmd.env_remove(TOKEN_VAR);
        }
        if !term::color() {
            cmd.arg("--no-color");
        }
        term::command(&shown);

        // Schemathesis's output goes to the terminal line by line (and its
        // summary is kept for ours); stderr is left alone.
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", schemathesis.display()))?;
        let log_path = report_dir.join(format!("{}.log", self.report));
        let mut log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut summary = SummaryParser::default();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line.context("reading Schemathesis's output")?;
                writeln!(log, "{line}")?;
                println!("{}", shorten(&line, &log_path));
                summary.feed(&line);
            }
        }
        let status = child.wait()?;
        // A stack process that died is the real story; say so first.
        if let Some((name, exit)) = sup.first_exit() {
            bail!(
                "{name} exited during fuzzing ({exit}); its log is {LOG_DIR}/{name}.log (the \
                 request that killed it is among the last in the gateway's log)"
            );
        }
        if signals::requested() {
            bail!("interrupted");
        }
        term::step(&format!(
            "its whole output: {}; JUnit report: {}",
            log_path.display(),
            junit.display()
        ));
        let outcome = match summary.summary() {
            text if text.is_empty() => format!("Schemathesis exited with {status}"),
            text if status.success() => text,
            text => format!("FAILED: {text}"),
        };
        Ok((status.success(), outcome))
    }
}

/// The blocks of Schemathesis's closing summary worth repeating: operations,
/// failures by kind, test cases.
#[derive(Debug, Default)]
struct SummaryParser {
    in_summary: bool,
    /// `(heading, its lines)`, in order.
    blocks: Vec<(String, Vec<String>)>,
    /// Whether the lines now read belong to the last block.
    open: bool,
}

impl SummaryParser {
    const HEADINGS: [&'static str; 3] = ["API Operations", "Failures", "Test cases"];

    fn feed(&mut self, line: &str) {
        let plain = strip_ansi(line);
        let text = plain
            .trim()
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .trim();
        if plain.contains("= SUMMARY =") {
            self.in_summary = true;
        } else if !self.in_summary || text.is_empty() {
            self.open = false;
        } else if let Some(heading) = text
            .strip_suffix(':')
            .filter(|h| Self::HEADINGS.contains(h))
        {
            self.blocks.push((heading.to_owned(), Vec::new()));
            self.open = true;
        } else if self.open
            && plain.starts_with(' ')
            && let Some((_, lines)) = self.blocks.last_mut()
        {
            lines.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
        } else {
            self.open = false;
        }
    }

    /// E.g. `API Operations: Selected: 6/6, Tested: 6; Test cases: 106
    /// generated, 0 found`.
    fn summary(&self) -> String {
        self.blocks
            .iter()
            .map(|(heading, lines)| format!("{heading}: {}", lines.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `line`, cut when it is very long (a failing request with a 60 KiB body
/// makes a curl command of that size); the whole line stays in `log`.
fn shorten(line: &str, log: &Path) -> String {
    const MAX: usize = 2000;
    match line.char_indices().nth(MAX) {
        None => line.to_owned(),
        Some((cut, _)) => format!(
            "{}… [{} more characters: see {}]",
            &line[..cut],
            line[cut..].chars().count(),
            log.display()
        ),
    }
}

/// `text` without ANSI escape sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ … final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Schemathesis's command in the venv, installed or brought up to date first.
fn ensure_schemathesis() -> anyhow::Result<PathBuf> {
    let venv = Path::new(VENV);
    let bin = venv.join("bin/schemathesis");
    let wanted =
        fs::read_to_string(REQUIREMENTS).with_context(|| format!("reading {REQUIREMENTS}"))?;
    // A copy of the requirements that were installed, written after pip
    // succeeded: pip runs again only when the list changes.
    let stamp = venv.join("installed-requirements.txt");
    let current = fs::read_to_string(&stamp).ok();
    if current.as_deref() != Some(wanted.as_str()) || !util::is_executable(&bin) {
        term::step(&format!(
            "installing Schemathesis and its dependencies, pinned by {REQUIREMENTS}, into the \
             Python venv {VENV} (pip from PyPI; nothing outside {VENV} is touched)"
        ));
        let python = util::which("python3").context(
            "python3 is not installed; Schemathesis needs Python 3.9 or newer \
             (Debian: `apt-get install python3 python3-venv`)",
        )?;
        if !venv.join("bin/python").exists() {
            util::run(Command::new(&python).args(["-m", "venv", VENV])).context(
                "creating a Python venv (on Debian: `apt-get install python3-venv`, as root)",
            )?;
        }
        util::run(Command::new(venv.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--requirement",
            REQUIREMENTS,
        ]))
        .context("pip could not install Schemathesis")?;
        fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    }
    let out = util::capture(Command::new(&bin).arg("--version"))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || version.is_empty() {
        bail!(
            "{} does not run; delete {VENV} and try again",
            bin.display()
        );
    }
    term::step(&format!("{version} ({VENV})"));
    Ok(bin)
}

/// Signs `email` up (a 409 means it exists already) and logs it in; returns
/// the access token and the login reply.
fn sign_up_and_log_in(gateway: SocketAddr, email: &str) -> anyhow::Result<(String, String)> {
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}","firstname":"Fuzz"}}"#);
    match util::http_request(
        gateway,
        "POST",
        "/api/auth/signup",
        Some(&body),
        HTTP_TIMEOUT,
    )? {
        (201 | 409, _) => {}
        (status, reply) => bail!("POST /api/auth/signup for {email} answered {status}: {reply}"),
    }
    log_in(gateway, email)
}

/// Logs `email` in; returns the access token and the whole reply.
fn log_in(gateway: SocketAddr, email: &str) -> anyhow::Result<(String, String)> {
    let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    let (status, reply) = util::http_request(
        gateway,
        "POST",
        "/api/auth/login",
        Some(&body),
        HTTP_TIMEOUT,
    )?;
    if status != 200 {
        bail!("POST /api/auth/login for {email} answered {status}: {reply}");
    }
    let token = json_string(&reply, "accessToken")
        .with_context(|| format!("no accessToken in the login reply: {reply}"))?;
    Ok((token, reply))
}

/// The string value of `"key":"…"` in compact JSON (enough for a JWT, which
/// holds no quotes or escapes).
fn json_string(json: &str, key: &str) -> Option<String> {
    let marker = format!(r#""{key}":""#);
    let start = json.find(&marker)? + marker.len();
    let len = json[start..].find('"')?;
    Some(json[start..start + len].to_owned())
}

/// `update users set role='ADMIN'` for `email`, through psql.
fn promote(stack: &Stack<'_>, email: &str) -> anyhow::Result<()> {
    let psql = pg::find_psql().context("psql is needed to promote the fuzzing admin")?;
    let sql = format!("update users set role = 'ADMIN' where email = '{email}' returning id");
    let out = util::capture(
        Command::new(psql)
            .args([
                "-X",
                "-w",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
                "-d",
            ])
            .arg(&stack.database_url),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || stdout.trim().is_empty() {
        bail!(
            "promoting {email} failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn very_long_lines_are_cut_on_a_character_boundary() {
        let log = Path::new("pass1.log");
        assert_eq!(shorten("short", log), "short");
        let long = "é".repeat(2500);
        let cut = shorten(&long, log);
        assert!(cut.starts_with(&"é".repeat(2000)));
        assert!(cut.ends_with("… [500 more characters: see pass1.log]"));
    }

    #[test]
    fn a_token_is_read_from_a_login_reply() {
        let reply = r#"{"accessToken":"a.b.c","refreshToken":"r","tokenType":"Bearer"}"#;
        assert_eq!(json_string(reply, "accessToken").as_deref(), Some("a.b.c"));
        assert_eq!(json_string(reply, "missing"), None);
    }

    #[test]
    fn the_closing_summary_is_condensed_without_colour_or_icons() {
        let output = "\
API Operations:
  Selected: 1/6
=================================== SUMMARY ====================================

\x1b[1mAPI Operations:\x1b[0m
  Selected: 6/6
  Tested: 6

Test Phases:
  ❌ Examples

Failures:
  ❌ ST202 Schema-valid request rejected: 2

For more information, run `st explain ST202`.

Test cases:
  106 generated, 2 found 2 unique failures, 2 skipped

Seed: 20261121
";
        let mut parser = SummaryParser::default();
        for line in output.lines() {
            parser.feed(line);
        }
        assert_eq!(
            parser.summary(),
            "API Operations: Selected: 6/6, Tested: 6; \
             Failures: ST202 Schema-valid request rejected: 2; \
             Test cases: 106 generated, 2 found 2 unique failures, 2 skipped"
        );
    }
}
