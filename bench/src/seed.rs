//! Seeds a migrated database in SQL: `--users` users (`user<N>@bench.example`,
//! all with the password `--password`), one ADMIN (`admin@bench.example`) and
//! `--posts` posts (nine in ten published) spread over the users. Prints the
//! id ranges as JSON.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;
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
    let step = Instant::now();
    sqlx::query(
        "insert into users (email, password_hash, firstname, lastname, role) \
         values ('admin@bench.example', $1, 'Bench', 'Admin', 'ADMIN')",
    )
    .bind(&phc)
    .execute(&mut db)
    .await?;
    sqlx::query(
        "insert into users (email, password_hash, firstname, lastname) \
         select 'user' || g || '@bench.example', $1, 'First' || g, 'Last' || g \
         from generate_series(1, $2) g",
    )
    .bind(&phc)
    .bind(users)
    .execute(&mut db)
    .await?;
    eprintln!(
        "  seeded {} users in {:.1} s",
        users,
        step.elapsed().as_secs_f64()
    );
    let (user_min, user_max): (i64, i64) =
        sqlx::query_as("select min(id), max(id) from users where email like 'user%'")
            .fetch_one(&mut db)
            .await?;

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
    .execute(&mut db)
    .await?;
    eprintln!(
        "  seeded {} posts in {:.1} s",
        posts,
        step.elapsed().as_secs_f64()
    );
    let (post_min, post_max): (i64, i64) = sqlx::query_as("select min(id), max(id) from posts")
        .fetch_one(&mut db)
        .await?;
    sqlx::query("analyze users").execute(&mut db).await?;
    sqlx::query("analyze posts").execute(&mut db).await?;

    println!(
        "{}",
        json!({
            "users": users, "userMin": user_min, "userMax": user_max,
            "posts": posts, "postMin": post_min, "postMax": post_max,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
