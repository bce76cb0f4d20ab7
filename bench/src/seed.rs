//! Seeds a migrated database in SQL: `--users` users (`user<N>@bench.example`,
//! all with the password `--password`), one ADMIN (`admin@bench.example`) and
//! `--posts` posts (nine in ten published) spread over the users. Prints a
//! [`Seeded`] as one JSON line.

use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

/// How much is seeded; `run` passes its own on to `seed`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Size {
    /// Users seeded (the deep page is near the last).
    #[arg(long, default_value_t = 1_000_000)]
    pub users: i64,
    /// Posts seeded.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: i64,
}

/// What `seed` put in the database: `load` reads the id ranges (`--seed`),
/// the report the counts and the time taken.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seeded {
    pub users: i64,
    pub user_min: i64,
    pub user_max: i64,
    pub posts: i64,
    pub post_min: i64,
    pub post_max: i64,
    pub seconds: f64,
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The database to seed [default: the auth-worker's `migrator.url` and
    /// `migrator.password_file`, as `AUTH_WORKER_MIGRATOR__…` set them: the
    /// schema's owner, who may write every table, unlike either worker]
    #[arg(long)]
    database_url: Option<String>,
    #[command(flatten)]
    size: Size,
    #[arg(long)]
    password: String,
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let Size { users, posts } = args.size;
    let started = Instant::now();
    // The auth-worker's own hasher and settings: the rows verify as if the
    // users had signed up.
    let settings = auth_worker::Settings::load(None)?;
    let hasher = auth_worker::password::Hasher::new(&settings.argon2)?;
    let phc = hasher.hash(&args.password).await?;

    let mut db = match &args.database_url {
        Some(url) => PgConnection::connect(url).await,
        None => PgConnection::connect_with(&settings.migrator.connect_options()?).await,
    }
    .context("connecting to the benchmark database")?;
    sqlx::query("set synchronous_commit = off")
        .execute(&mut db)
        .await?;
    let (user_min, user_max) = insert_users(&mut db, &phc, users).await?;
    let (post_min, post_max) = insert_posts(&mut db, (user_min, user_max), posts).await?;
    sqlx::query("analyze users").execute(&mut db).await?;
    sqlx::query("analyze posts").execute(&mut db).await?;

    let seeded = Seeded {
        users,
        user_min,
        user_max,
        posts,
        post_min,
        post_max,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", serde_json::to_string(&seeded)?);
    Ok(())
}

/// The ADMIN and `users` users, all with the password hash `phc`; returns
/// the users' id range (the ADMIN's id is outside it).
async fn insert_users(db: &mut PgConnection, phc: &str, users: i64) -> anyhow::Result<(i64, i64)> {
    let step = Instant::now();
    sqlx::query(
        "insert into users (email, password_hash, firstname, lastname, role) \
         values ('admin@bench.example', $1, 'Bench', 'Admin', 'ADMIN')",
    )
    .bind(phc)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "insert into users (email, password_hash, firstname, lastname) \
         select 'user' || g || '@bench.example', $1, 'First' || g, 'Last' || g \
         from generate_series(1, $2) g",
    )
    .bind(phc)
    .bind(users)
    .execute(&mut *db)
    .await?;
    id_range(
        db,
        ("users", users, step),
        "select min(id), max(id) from users where email like 'user%'",
    )
    .await
}

/// `posts` posts spread over the users of `user_min..=user_max`, every
/// tenth unpublished; returns the posts' id range.
async fn insert_posts(
    db: &mut PgConnection,
    (user_min, user_max): (i64, i64),
    posts: i64,
) -> anyhow::Result<(i64, i64)> {
    let step = Instant::now();
    sqlx::query(
        "insert into posts (title, content, published, author_id) \
         select 'Post ' || g, 'Body of post ' || g || '. ' || repeat('Lorem ipsum dolor sit amet. ', 4), \
                g % 10 <> 0, $1 + (g % $2) \
         from generate_series(1, $3) g",
    )
    .bind(user_min)
    .bind(user_max - user_min + 1)
    .bind(posts)
    .execute(&mut *db)
    .await?;
    id_range(
        db,
        ("posts", posts, step),
        "select min(id), max(id) from posts",
    )
    .await
}

/// Says how long seeding `count` rows of `what` took since `step`, and
/// returns the `(min, max)` ids that `range` selects.
async fn id_range(
    db: &mut PgConnection,
    (what, count, step): (&str, i64, Instant),
    range: &'static str,
) -> anyhow::Result<(i64, i64)> {
    eprintln!(
        "  seeded {count} {what} in {:.1} s",
        step.elapsed().as_secs_f64()
    );
    Ok(sqlx::query_as(range).fetch_one(db).await?)
}
