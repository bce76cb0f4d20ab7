//! Each worker reaches PostgreSQL as its own role, holding only what its SQL
//! needs (`migrations/0005_worker_roles.sql`): a user-worker that is taken
//! over still cannot read a password hash or a refresh token, and an
//! auth-worker cannot touch posts. The pools below connect with the very
//! settings the harness gives the workers.

use runtime::db::DatabaseSettings;
use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::helpers::{Options, TestApp, spawn_app_with};

async fn database_only() -> TestApp {
    spawn_app_with(Options::without_workers()).await
}

async fn connect(settings: &DatabaseSettings) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(settings.connect_options().unwrap())
        .await
        .expect("connect with the worker's settings")
}

/// Runs `sql` and asserts that PostgreSQL refuses it for want of a privilege
/// (SQLSTATE 42501, insufficient_privilege).
async fn assert_denied(db: &PgPool, sql: &str) {
    match sqlx::query(sql).execute(db).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {}
        other => panic!("{sql:?} should be denied (42501), got {other:?}"),
    }
}

#[tokio::test]
async fn the_user_worker_role_cannot_read_password_hashes_or_refresh_tokens() {
    let app = database_only().await;
    // A user with a password hash, a session and a refresh token.
    let admin = app.db.pool().await;
    sqlx::raw_sql(
        "insert into users (email, password_hash) values ('ada@example.com', '$argon2id$v=19$x'); \
         insert into sessions (id, user_id, expires_at) \
           values (gen_random_uuid(), 1, now() + interval '1 day'); \
         insert into refresh_tokens (token_hash, session_id, expires_at) \
           select '\\x00'::bytea, id, now() + interval '1 day' from sessions",
    )
    .execute(&admin)
    .await
    .unwrap();
    let db = connect(&app.user_worker_settings().database).await;
    for sql in [
        "select password_hash from users",
        "select * from users",
        "select token_hash from refresh_tokens",
        "select count(*) from refresh_tokens",
        "select created_at from sessions",
        "delete from refresh_tokens",
        "update users set password_hash = '$argon2id$x' where id = 1",
        "update users set email = 'x@example.com' where id = 1",
        "insert into users (email, password_hash) values ('x@example.com', '$argon2id$x')",
    ] {
        assert_denied(&db, sql).await;
    }
    // What it does need is there.
    let users = sqlx::query(
        "select id, email, firstname, lastname, role, created_at, updated_at from users",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(users.len(), 1);
    sqlx::query("select id, user_id, expires_at, revoked_at from sessions")
        .fetch_one(&db)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_auth_worker_role_cannot_touch_posts_or_profiles() {
    let app = database_only().await;
    let db = connect(&app.auth_worker_settings().database).await;
    for sql in [
        "select * from posts",
        "insert into posts (title) values ('x')",
        "update posts set title = 'x'",
        "delete from posts",
        "update users set role = 'ADMIN'",
        "update users set firstname = 'x'",
        "delete from users",
    ] {
        assert_denied(&db, sql).await;
    }
}

#[tokio::test]
async fn the_worker_roles_cannot_create_or_change_tables_or_roles() {
    let app = database_only().await;
    let settings = [
        app.auth_worker_settings().database,
        app.user_worker_settings().database,
    ];
    for settings in &settings {
        let db = connect(settings).await;
        for sql in [
            "create table stash (secret text)",
            "create temporary table stash (secret text)",
            "create schema stash",
            "alter table users add column stash text",
            "drop table posts",
            "create role stash",
            "create database stash",
        ] {
            assert_denied(&db, sql).await;
        }
        let (superuser, create_role, create_db): (bool, bool, bool) = sqlx::query_as(
            "select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = current_user",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert!(!superuser && !create_role && !create_db);
    }
}
