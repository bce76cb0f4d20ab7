//! A fresh PostgreSQL database per test, on the cluster of
//! `TEST_DATABASE_URL`.

use std::path::Path;

use secrecy::SecretString;

use crate::{with_database, with_user};

/// A fresh database, dropped when the test ends: provisioned (the roles, the
/// database owned by the migrator) and migrated as the migrator, as
/// operators do. The roles get no password here: they are cluster-wide, and
/// a test must not change a password a stack on the same cluster uses; the
/// test cluster lets them in from loopback (trust), as `cargo xtask`'s do.
#[derive(Debug)]
pub struct TestDb {
    /// The database as the superuser of `TEST_DATABASE_URL`, for tests that
    /// set up or inspect rows behind the workers' backs.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("natsauth_test_{}", uuid::Uuid::new_v4().simple());
        let url = provision_and_migrate(&admin_url, &name, None).await;
        Self {
            url,
            admin_url,
            name,
        }
    }

    /// The database as one of the roles of `auth_worker::provision`
    /// (no password: loopback is trusted).
    pub fn url_as(&self, role: &str) -> String {
        with_user(&self.url, role)
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url)
            .await
            .expect("connect to test db")
    }

    /// How many rows `table` holds.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&self.pool().await)
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&admin).await.ok()?;
                sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                    .execute(&pool)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Provisions `database` on the cluster of `admin_url` (a superuser's URL),
/// with the role passwords of `passwords_dir` if given, and migrates it as
/// the migrator; returns the database's URL as that superuser.
pub async fn provision_and_migrate(
    admin_url: &str,
    database: &str,
    passwords_dir: Option<&Path>,
) -> String {
    let admin: sqlx::postgres::PgConnectOptions = admin_url.parse().expect("an admin URL");
    let passwords = passwords_dir
        .map(|dir| auth_worker::provision::RolePasswords::from_dir(dir).expect("role passwords"));
    auth_worker::provision::provision(&admin, database, passwords.as_ref())
        .await
        .expect(
            "provision the test database (is PostgreSQL running? `cargo xtask test` starts one)",
        );
    let url = with_database(admin_url, database);
    let mut migrator = db_settings(&with_user(&url, auth_worker::provision::MIGRATOR_ROLE));
    migrator.password_file = passwords_dir.map(|dir| dir.join("pg-migrator-password"));
    auth_worker::migrate(&migrator)
        .await
        .expect("migrate the test database as the migrator");
    url
}

/// A process's database settings for `url`: eight connections, a 3 s
/// acquire timeout.
pub fn db_settings(url: &str) -> runtime::db::DatabaseSettings {
    runtime::db::DatabaseSettings {
        url: SecretString::from(url.to_owned()),
        password_file: None,
        max_connections: 8,
        acquire_timeout_ms: 3000,
    }
}
