//! The web app in `web/`: Node.js and npm found (or installed), its
//! dependencies installed from the lock file, and `web/dist/` built, each
//! only when what it depends on changed.
//!
//! * `npm ci` runs when `node_modules` is missing or was installed from
//!   another `package-lock.json` (a hash of it is kept in `node_modules`).
//! * `npm run build` (type-check, then Vite) runs when any source of the app
//!   changed since the last build (a hash of them is kept in `target/`).
//! * [`check`] runs the app's own checks for `cargo xtask test`: the
//!   type-check, its unit tests, and that `src/api/schema.d.ts` is what
//!   openapi-typescript makes of the committed `openapi.json` (which the
//!   gateway's tests compare with the document the code generates).
//!
//! Debian 12's `apt-get install nodejs npm` gives Node 18 and npm 9; the
//! app's pinned versions allow it (and newer).

use std::{
    collections::hash_map::DefaultHasher,
    fs,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{term, util};

/// The app's folder, relative to the workspace root.
pub const DIR: &str = "web";
/// The build the gateway serves (`web.dir`'s default).
pub const DIST: &str = "web/dist";
/// The oldest Node.js major version the app builds with.
const MIN_NODE: u32 = 18;
/// What decides the build: everything else in `web/` is output or
/// dependencies.
const SOURCES: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "tsconfig.app.json",
    "tsconfig.node.json",
];

/// Options of `cargo xtask web`.
#[derive(Debug, Default, clap::Args)]
pub struct WebArgs {
    /// Build even when nothing changed
    #[arg(long)]
    force: bool,
}

/// `cargo xtask web`.
pub fn run(args: &WebArgs) -> anyhow::Result<()> {
    ensure_node()?;
    install()?;
    build(args.force)?;
    Ok(())
}

/// `node` and `npm`, installed with apt-get when missing and we are root;
/// otherwise an error that says what to install. Returns node's version.
pub fn ensure_node() -> anyhow::Result<String> {
    if util::which("node").is_none() || util::which("npm").is_none() {
        util::apt_install(&["nodejs", "npm"], "Node.js and npm (to build the web app)")?;
    }
    let output =
        util::capture(Command::new("node").arg("--version")).context("running `node --version`")?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("`node --version` said {version:?}"))?;
    if major < MIN_NODE {
        bail!(
            "Node.js {version} is too old for the web app: it needs {MIN_NODE} or newer \
             (Debian 12's `apt-get install nodejs npm` gives 18)"
        );
    }
    let npm = util::capture(Command::new("npm").arg("--version"))
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    term::step(&format!("node {version}, npm {npm}"));
    Ok(version)
}

fn npm(args: &[&str]) -> Command {
    let mut cmd = Command::new("npm");
    cmd.args(args)
        .current_dir(DIR)
        // No update nags or audit round trips in a build.
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false");
    if !term::color() {
        // Vitest and Vite colour their output even into a pipe or a CI log.
        cmd.env("NO_COLOR", "1").env("FORCE_COLOR", "0");
    }
    cmd
}

/// `npm ci` unless `node_modules` came from this very lock file.
pub fn install() -> anyhow::Result<()> {
    let lock = fs::read(Path::new(DIR).join("package-lock.json"))
        .context("reading web/package-lock.json")?;
    let wanted = format!("{:016x}", hash_bytes(&lock));
    let stamp = Path::new(DIR).join("node_modules/.xtask-lock-hash");
    if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted) {
        term::step("web/node_modules: current");
        return Ok(());
    }
    term::step("web/node_modules: installing from package-lock.json (npm ci)");
    util::run(&mut npm(&["ci"])).context("`npm ci` in web/ failed (see above)")?;
    fs::write(&stamp, &wanted).context("writing web/node_modules/.xtask-lock-hash")?;
    Ok(())
}

/// `npm run build` unless the sources are those of the last build.
pub fn build(force: bool) -> anyhow::Result<()> {
    let wanted = format!("{:016x}", hash_sources()?);
    let stamp = util::target_dir().join("web-build.hash");
    let built = Path::new(DIST).join("index.html").is_file();
    if !force && built && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == wanted) {
        term::step("web/dist: current");
        return Ok(());
    }
    term::step("web/dist: building (npm run build: tsc, then vite)");
    util::run(&mut npm(&["run", "build"])).context("`npm run build` in web/ failed (see above)")?;
    if let Some(parent) = stamp.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

/// The app's own checks: type-check, unit tests, generated API types.
pub fn check() -> anyhow::Result<()> {
    term::step("type-check (npm run typecheck)");
    util::run(&mut npm(&["run", "typecheck"])).context("the web app does not type-check")?;
    term::step("unit tests (npm test)");
    util::run(&mut npm(&["test"])).context("the web app's unit tests failed")?;
    let generated = util::target_dir().join("web-schema.d.ts");
    util::run(
        Command::new(Path::new(DIR).join("node_modules/.bin/openapi-typescript"))
            .arg(Path::new(DIR).join("openapi.json"))
            .arg("--output")
            .arg(&generated),
    )
    .context("openapi-typescript failed")?;
    let committed = Path::new(DIR).join("src/api/schema.d.ts");
    if fs::read(&generated)? != fs::read(&committed)? {
        bail!(
            "{} is not what openapi-typescript makes of web/openapi.json: run \
             `cargo xtask openapi` and commit the result",
            committed.display()
        );
    }
    term::step("src/api/schema.d.ts: current with web/openapi.json");
    Ok(())
}

/// `cargo xtask openapi`: writes the gateway's OpenAPI document to
/// `web/openapi.json` and the app's types made from it.
pub fn write_openapi() -> anyhow::Result<()> {
    let output = util::capture(util::cargo().args(["run", "-q", "-p", "gateway", "--", "openapi"]))
        .context("running `gateway openapi`")?;
    if !output.status.success() {
        bail!(
            "`gateway openapi` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let file = Path::new(DIR).join("openapi.json");
    fs::write(&file, &output.stdout).with_context(|| format!("writing {}", file.display()))?;
    term::step(&format!("wrote {}", file.display()));
    ensure_node()?;
    install()?;
    util::run(&mut npm(&["run", "gen:api"])).context("`npm run gen:api` failed")?;
    term::step("wrote web/src/api/schema.d.ts");
    Ok(())
}

/// A hash of every source file's path and bytes, in a stable order.
fn hash_sources() -> anyhow::Result<u64> {
    let mut files = Vec::new();
    for source in SOURCES {
        collect(&Path::new(DIR).join(source), &mut files)?;
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in &files {
        file.hash(&mut hasher);
        fs::read(file)
            .with_context(|| format!("reading {}", file.display()))?
            .hash(&mut hasher);
    }
    Ok(hasher.finish())
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_file() {
        files.push(path.to_owned());
    } else if path.is_dir() {
        for entry in fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
            collect(&entry?.path(), files)?;
        }
    }
    Ok(())
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Debian's Chromium and its WebDriver, for the browser tests: found, or
/// installed with apt-get when we are root. Returns chromedriver's path.
pub fn ensure_chromium() -> anyhow::Result<(PathBuf, PathBuf)> {
    const DIRS: &[&str] = &["/usr/bin", "/usr/local/bin"];
    let find = || {
        Some((
            util::find_program("chromium", DIRS)?,
            util::find_program("chromedriver", DIRS)?,
        ))
    };
    let found = match find() {
        Some(found) => found,
        None => {
            util::apt_install(
                &["chromium", "chromium-driver"],
                "Chromium and ChromeDriver (for the browser tests)",
            )?;
            find()
                .context("apt-get installed chromium-driver but chromedriver is not in /usr/bin")?
        }
    };
    let version = util::capture(Command::new(&found.1).arg("--version"))
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    term::step(&format!("{} ({version})", found.1.display()));
    Ok(found)
}
