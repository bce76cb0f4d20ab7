//! `cargo xtask test`: every check, in the order that fails fastest.
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`
//! 3. no source comment or Markdown page names an issue, and every relative
//!    link of a Markdown page resolves (`history`: the why goes in the
//!    comment, the issue in the commit or an ADR)
//! 4. compose.yaml's validation (skipped, saying why, when no Compose
//!    implementation can be found or installed)
//! 5. nats-server and PostgreSQL, found or provided exactly as `up` does
//! 6. `.sqlx/` is current: every `sqlx::query!` statement described again
//!    against a freshly migrated database gives the committed data
//! 7. the web app: Node.js (installed as root when missing), `npm ci` when
//!    the lock file changed, the type-check, its unit tests, its API types
//!    current with `web/openapi.json`, and the build the gateway serves
//! 8. `cargo test --workspace` with `NATS_SERVER_BIN` and `TEST_DATABASE_URL`
//!    (an admin URL: the integration tests create a database per test)
//! 9. the browser walk: Debian's Chromium and ChromeDriver (installed as root
//!    when missing) drive the built app on a real stack
//!    (`cargo test --workspace --test browser -- --ignored`)
//! 10. `cargo xtask fuzz`'s run against the same nats-server and PostgreSQL
//!     (Schemathesis against a private stack; `--no-fuzz` skips it)

use anyhow::Context;

use crate::{
    compose, fuzz, history, mail, nats,
    pg::{PgArgs, Postgres},
    signals, sqlx, term, util, web,
};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Skip `cargo fmt --check` and `cargo clippy`
    #[arg(long)]
    no_lint: bool,
    /// Skip the fuzzing step (`cargo xtask fuzz` runs it alone)
    #[arg(long)]
    no_fuzz: bool,
    #[command(flatten)]
    pg: PgArgs,
    /// Extra arguments for `cargo test`, after `--` (e.g. `-- signup` runs the
    /// tests whose names contain "signup")
    #[arg(last = true, value_name = "CARGO_TEST_ARGS")]
    cargo_test_args: Vec<String>,
}

/// `cargo xtask test`.
pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    // Ctrl-C still stops the cargo child (same process group); the handler
    // only keeps xtask alive long enough to stop a private PostgreSQL.
    signals::install()?;
    util::ensure_build_deps()?;
    let total = (if args.no_lint { 7 } else { 9 }) + usize::from(!args.no_fuzz);
    let mut n = 0;
    let started = std::time::Instant::now();
    let mut step_started = started;
    // Each header says how long the step before it took, so a slow CI run
    // shows where its time went.
    let mut next = |title: &str| {
        if n > 0 {
            term::step(&format!(
                "step {n} took {:.0} s ({:.0} s so far)",
                step_started.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64()
            ));
        }
        step_started = std::time::Instant::now();
        n += 1;
        term::header(&format!("[{n}/{total}] {title}"));
    };

    if args.no_lint {
        term::step("--no-lint: skipping cargo fmt and cargo clippy");
    } else {
        next("cargo fmt --all -- --check");
        let mut fmt = util::cargo();
        fmt.args(["fmt", "--all", "--", "--check"]);
        if !term::color() {
            // rustfmt colours its diff even into a pipe or a CI log.
            fmt.args(["--color", "never"]);
        }
        util::run(&mut fmt)
            .context("formatting differs: run `cargo fmt --all` and commit the result")?;
        next("cargo clippy --workspace --all-targets -- -D warnings");
        util::run(util::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
        .context("clippy found problems (listed above)")?;
    }

    next("no comment names an issue; the docs' links resolve");
    let checked = history::check()?;
    term::step(&format!("{checked} source and Markdown files checked"));

    next("compose.yaml");
    let compose = match compose::validate_if_possible()? {
        compose::Outcome::Validated(tool) => format!("validated by {tool}"),
        compose::Outcome::Skipped(why) => {
            term::warn(&format!("SKIPPED the compose.yaml validation: {why}"));
            format!("SKIPPED ({why})")
        }
    };

    next("nats-server, the mail catcher and PostgreSQL");
    let nats_server = nats::ensure_server()?;
    let mail_python = mail::ensure_catcher()?;
    let mut pg = Postgres::ensure(args.pg.private_pg)?;

    next("sqlx query data (.sqlx/) against the migrations");
    let statements = match sqlx::check(&pg) {
        Ok(n) => n,
        Err(e) => {
            pg.stop()?;
            return Err(e);
        }
    };
    term::step(&format!("{statements} statements, data current"));

    next("the web app: type-check, unit tests, build");
    let webbed = (|| {
        web::ensure_node()?;
        web::install()?;
        web::check()?;
        web::build(false)
    })();
    if let Err(e) = webbed {
        pg.stop()?;
        return Err(e);
    }

    next("cargo test --workspace");
    let mut test = util::cargo();
    test.args(["test", "--workspace"])
        .args(&args.cargo_test_args)
        .env("NATS_SERVER_BIN", &nats_server)
        .env("MAIL_CATCHER_PYTHON", &mail_python)
        .env("TEST_DATABASE_URL", pg.admin_url());
    term::step(&format!(
        "with NATS_SERVER_BIN={} TEST_DATABASE_URL={}",
        nats_server.display(),
        pg.admin_url()
    ));
    let mut tested = util::run(&mut test).context("tests failed (see above)");
    if tested.is_ok() {
        next("the browser walk in Chromium");
        tested = browser_walk(&nats_server, &pg);
    }
    let fuzzed = match (&tested, args.no_fuzz) {
        (Ok(()), false) => {
            next("fuzzing the HTTP API (cargo xtask fuzz)");
            Some(fuzz::fuzz(&nats_server, &pg, &fuzz::FuzzOptions::default()))
        }
        _ => None,
    };
    let stopped = pg.stop();
    tested?;
    let fuzzed = fuzzed.transpose()?;
    stopped?;

    term::header(&format!(
        "All checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    if !args.no_lint {
        println!("  fmt, clippy: clean");
    }
    println!("  compose.yaml: {compose}");
    println!("  sqlx query data: current ({statements} statements)");
    println!("  web app: type-checked, unit tests passed, built");
    println!("  cargo test --workspace: passed ({})", pg.describe());
    println!("  browser walk: passed in Chromium (screenshots in target/browser/)");
    match fuzzed {
        Some(summary) => {
            for line in summary.lines() {
                println!("  fuzzing, {line}");
            }
        }
        None => println!("  fuzzing: SKIPPED (--no-fuzz)"),
    }
    Ok(())
}

/// The browser tests (ignored by a plain `cargo test`, which has no
/// browser): Chromium found or installed, then the `browser` test binary
/// against the built app, one test at a time (one Chromium).
fn browser_walk(nats_server: &std::path::Path, pg: &Postgres) -> anyhow::Result<()> {
    let (chromium, chromedriver) = web::ensure_chromium()?;
    let mut test = util::cargo();
    // `--workspace` keeps the feature set of the step before: `-p gateway`
    // alone would resolve features anew and rebuild dependencies.
    test.args([
        "test",
        "--workspace",
        "--test",
        "browser",
        "--",
        "--ignored",
        "--test-threads=1",
    ])
    .env("NATS_SERVER_BIN", nats_server)
    .env("TEST_DATABASE_URL", pg.admin_url())
    .env("CHROMIUM", &chromium)
    .env("CHROMEDRIVER", &chromedriver)
    .env("WEB_DIST", util::workspace_root().join(web::DIST));
    util::run(&mut test).context("the browser walk failed (screenshots in target/browser/)")
}
