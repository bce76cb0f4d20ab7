//! The query data that lets every `sqlx::query!` build without a database:
//! `.sqlx/`, one JSON file per statement (its parameter and column types, as
//! PostgreSQL described them for the migrated schema), committed. Builds read
//! it (`SQLX_OFFLINE=true` in `.cargo/config.toml`).
//!
//! * `cargo xtask sqlx-prepare` writes it anew after a statement or a
//!   migration changed.
//! * `cargo xtask test` checks it first: it describes every statement again
//!   against a database migrated from `migrations/` and fails when the result
//!   differs from what is committed (a statement without data, data of a
//!   statement that is gone, or a type that a migration changed).
//!
//! Both make a throwaway database `natsauth_sqlx_<pid>`, apply the migrations
//! with `psql` as the admin role (no project binary is needed, so this works
//! when the data is missing and nothing builds offline), then run `cargo
//! check` on the workspace, online, with `SQLX_OFFLINE_DIR` naming an empty
//! folder that sqlx's macros write into.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

use anyhow::{Context, bail};

use crate::{
    pg::{self, Postgres},
    term, util,
};

/// Where the committed query data lives (the workspace root's, which sqlx's
/// macros look in for every crate).
const DATA_DIR: &str = ".sqlx";
/// The crates whose sources hold `sqlx::query!` statements, touched so that
/// `cargo check` expands their macros again.
const CRATES_WITH_STATEMENTS: &[&str] = &["runtime", "auth-worker", "user-worker"];
/// The roles the migrations grant to (`auth-worker provision` makes them with
/// passwords; here they only need to exist).
const ROLES: &[&str] = &[
    "natsauth_migrator",
    "natsauth_auth_worker",
    "natsauth_user_worker",
];

/// `cargo xtask sqlx-prepare`.
pub fn run_prepare(pg_args: &pg::PgArgs) -> anyhow::Result<()> {
    term::header("PostgreSQL");
    let mut pg = Postgres::ensure(pg_args.private_pg)?;
    term::header("describing every statement against the migrated schema");
    let made = describe(&pg);
    let stopped = pg.stop();
    let made = made?;
    stopped?;
    let dir = Path::new(DATA_DIR);
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("emptying {DATA_DIR}/"))?;
    }
    fs::create_dir_all(dir)?;
    for (name, text) in &made {
        fs::write(dir.join(name), text)?;
    }
    term::step(&format!(
        "wrote {} statements' data to {DATA_DIR}/: commit it",
        made.len()
    ));
    Ok(())
}

/// The check in `cargo xtask test`: fails when `.sqlx/` is not what the
/// statements and the migrations make.
pub fn check(pg: &Postgres) -> anyhow::Result<usize> {
    let made = describe(pg)?;
    let committed = read_dir(Path::new(DATA_DIR))?;
    let missing: Vec<_> = made
        .keys()
        .filter(|k| !committed.contains_key(*k))
        .collect();
    let stale: Vec<_> = committed
        .keys()
        .filter(|k| !made.contains_key(*k))
        .collect();
    let changed: Vec<_> = made
        .iter()
        .filter(|(k, v)| committed.get(*k).is_some_and(|c| c != *v))
        .map(|(k, _)| k)
        .collect();
    if missing.is_empty() && stale.is_empty() && changed.is_empty() {
        return Ok(made.len());
    }
    for (what, names) in [
        ("no data for", &missing),
        ("data of a statement that is gone:", &stale),
        ("types changed for", &changed),
    ] {
        for name in names {
            term::warn(&format!("{DATA_DIR}/: {what} {name}"));
        }
    }
    bail!(
        "the committed query data in {DATA_DIR}/ is stale: run `cargo xtask sqlx-prepare` and \
         commit {DATA_DIR}/"
    )
}

/// Every statement's query data, by file name, as the macros write it for a
/// freshly migrated database.
fn describe(pg: &Postgres) -> anyhow::Result<BTreeMap<String, String>> {
    let psql =
        pg::find_psql().context("psql is not installed (apt-get install postgresql-client)")?;
    let database = format!("natsauth_sqlx_{}", std::process::id());
    let result =
        migrate(&psql, pg, &database).and_then(|()| check_online(&pg.database_url(&database)));
    let dropped = pg::drop_database(pg, &database);
    let made = result?;
    dropped?;
    Ok(made)
}

/// Creates `database` and applies `migrations/` to it, in order, each in
/// one transaction, as the admin role.
fn migrate(psql: &Path, pg: &Postgres, database: &str) -> anyhow::Result<()> {
    let mut setup = String::new();
    for role in ROLES {
        // Roles are the cluster's: they may exist already (tests, `up`).
        setup.push_str(&format!(
            "do $$ begin create role {role}; \
             exception when duplicate_object or unique_violation then null; end $$;\n"
        ));
    }
    sql(psql, pg.admin_url(), &["-c", &setup])?;
    // Alone: `psql -c` runs several statements as one transaction, and a
    // database cannot be created inside one.
    sql(
        psql,
        pg.admin_url(),
        &["-c", &format!("create database \"{database}\"")],
    )?;
    let mut files: Vec<PathBuf> = fs::read_dir("migrations")
        .context("reading migrations/")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|f| f.extension().is_some_and(|e| e == "sql"));
    files.sort();
    let url = pg.database_url(database);
    for file in &files {
        let file = file.to_string_lossy();
        sql(psql, &url, &["--single-transaction", "-f", &file])?;
    }
    term::step(&format!(
        "migrated the database {database} ({} migrations)",
        files.len()
    ));
    Ok(())
}

fn sql(psql: &Path, url: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = util::capture(
        Command::new(psql)
            .args(["-X", "-w", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .args(["-d", url]),
    )?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// `cargo check` of the crates with statements, online against
/// `database_url`, with the macros writing each statement's data into a
/// fresh folder; returns that folder's files.
fn check_online(database_url: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let out = util::target_dir().join("sqlx-describe");
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::create_dir_all(&out)?;
    // sqlx's macros read DATABASE_URL when they run, which cargo does not
    // track: touching the sources makes cargo expand them again.
    for krate in CRATES_WITH_STATEMENTS {
        touch_tree(&Path::new(krate).join("src"))?;
    }
    // The whole workspace with every target, as clippy checked it just
    // before in `cargo xtask test`: the same features for every dependency,
    // so only the workspace's own crates are checked again. `-p` of the two
    // workers alone unifies features differently and checked dependencies
    // again (186 s of a 27-minute CI run on a slow VM; 24 s this way).
    util::run(
        util::cargo()
            .args(["check", "--quiet", "--workspace", "--all-targets"])
            .env("DATABASE_URL", database_url)
            .env("SQLX_OFFLINE", "false")
            .env("SQLX_OFFLINE_DIR", &out),
    )
    .context("a statement does not fit the migrated schema (see above)")?;
    let made = read_dir(&out)?;
    if made.is_empty() {
        bail!("no statement wrote its data to {}", out.display());
    }
    Ok(made)
}

fn touch_tree(dir: &Path) -> anyhow::Result<()> {
    let now = SystemTime::now();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            touch_tree(&path)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            fs::File::options()
                .append(true)
                .open(&path)?
                .set_modified(now)
                .with_context(|| format!("touching {}", path.display()))?;
        }
    }
    Ok(())
}

/// The `query-*.json` files of `dir` by name (none when it does not exist).
fn read_dir(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return Ok(files);
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name.filter(|n| n.starts_with("query-") && n.ends_with(".json")) {
            files.insert(name, fs::read_to_string(&path)?);
        }
    }
    Ok(files)
}
