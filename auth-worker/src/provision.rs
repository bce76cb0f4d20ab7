//! Provisioning PostgreSQL for natsauth, as a superuser, before the first
//! migration: `auth-worker provision`.
//!
//! It makes three login roles, the same in every database of a cluster
//! (roles are cluster-wide):
//!
//! * [`MIGRATOR_ROLE`] owns the database, its `public` schema and every
//!   table; `auth-worker migrate` and `set-role` connect as it;
//! * [`AUTH_WORKER_ROLE`] and [`USER_WORKER_ROLE`], which the workers connect
//!   as, with only the privileges `migrations/0005_worker_roles.sql` grants.
//!
//! None is a superuser or may create roles or databases. Creating roles needs
//! a privilege the migrator must not hold (in PostgreSQL before 16,
//! CREATEROLE can make itself a member of almost any role), so this is a
//! separate step run by a superuser — `cargo xtask up`, compose's `provision`
//! service and the test harness all call it — and the migrations only grant
//! to the roles by name.
//!
//! It is idempotent and safe to run concurrently (tests make databases in
//! parallel on one cluster): each run creates what is missing, sets the
//! passwords it is given, creates the database owned by the migrator if
//! missing, and hands the database and anything already in its `public`
//! schema (a database migrated as another role before roles existed) to the
//! migrator. Passwords go to the server as SCRAM-SHA-256 verifiers computed
//! here, so no clear-text password reaches the server or its logs.
//!
//! The queries are checked at build time like every other (`sqlx::query!`);
//! the DDL is not and cannot be: it names roles and a database, which are
//! identifiers, not bindable values. Those names are this file's constants
//! and a database name held to `[A-Za-z0-9_]`.

use std::{num::NonZeroU32, path::Path};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, PgConnection, postgres::PgConnectOptions};

/// Owns the schema and runs the migrations.
pub const MIGRATOR_ROLE: &str = "natsauth_migrator";
/// The auth-worker's role.
pub const AUTH_WORKER_ROLE: &str = "natsauth_auth_worker";
/// The user-worker's role.
pub const USER_WORKER_ROLE: &str = "natsauth_user_worker";
/// Every role, with the name of its password file in a passwords directory.
pub const ROLES: [(&str, &str); 3] = [
    (MIGRATOR_ROLE, "pg-migrator-password"),
    (AUTH_WORKER_ROLE, "pg-auth-worker-password"),
    (USER_WORKER_ROLE, "pg-user-worker-password"),
];

/// Serializes provisioning runs that connect to the same database (advisory
/// locks are per database): concurrent `alter role` of one role would fail
/// with "tuple concurrently updated". Runs through other databases are still
/// safe for role creation (errors for an existing role are ignored).
const LOCK_KEY: i64 = 0x6e61_7473_6175_7468; // "natsauth"

/// SCRAM iteration count; PostgreSQL's default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// The roles' passwords.
#[derive(Debug)]
pub struct RolePasswords {
    by_role: Vec<(&'static str, SecretString)>,
}

impl RolePasswords {
    /// Reads `dir/pg-migrator-password`, `dir/pg-auth-worker-password` and
    /// `dir/pg-user-worker-password` (first line each; none may be empty).
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let by_role = ROLES
            .iter()
            .map(|(role, file)| Ok((*role, runtime::secret::from_file(&dir.join(file))?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { by_role })
    }
}

/// Provisions `database` on the cluster `admin` (a superuser's connection
/// options, on any database) reaches. Without `passwords`, existing
/// passwords are left as they are (new roles get none: they can log in only
/// where `pg_hba.conf` trusts them).
pub async fn provision(
    admin: &PgConnectOptions,
    database: &str,
    passwords: Option<&RolePasswords>,
) -> anyhow::Result<()> {
    if database.is_empty()
        || !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("database name {database:?}: use letters, digits and _ only");
    }
    let verifiers = match passwords {
        Some(p) => p
            .by_role
            .iter()
            .map(|(role, password)| Ok((*role, scram_verifier(password)?)))
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let mut conn = PgConnection::connect_with(admin)
        .await
        .context("connecting to PostgreSQL as the superuser")?;
    let me = sqlx::query!(
        r#"select rolname::text as "name!", rolsuper as "superuser!"
           from pg_roles where rolname = current_user"#
    )
    .fetch_one(&mut conn)
    .await?;
    if !me.superuser {
        bail!(
            "provisioning creates roles, so it needs a superuser; {:?} is not one",
            me.name
        );
    }

    let mut tx = conn.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    for (role, _) in ROLES {
        // `duplicate_object`: it exists; `unique_violation`: another run
        // (through another database) created it a moment ago.
        sqlx::raw_sql(&format!(
            "do $$ begin create role {role}; \
             exception when duplicate_object or unique_violation then null; end $$"
        ))
        .execute(&mut *tx)
        .await?;
        // Also for a role that existed: whatever it was, it is now only this.
        sqlx::raw_sql(&format!(
            "alter role {role} with login nosuperuser nocreatedb nocreaterole \
             noreplication nobypassrls"
        ))
        .execute(&mut *tx)
        .await?;
    }
    for (role, verifier) in &verifiers {
        // A verifier is base64, digits, `$` and `:`: nothing to escape.
        sqlx::raw_sql(&format!("alter role {role} password '{verifier}'"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;

    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from pg_database where datname = $1) as "exists!""#,
        database
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        match sqlx::raw_sql(&format!(
            r#"create database "{database}" owner {MIGRATOR_ROLE}"#
        ))
        .execute(&mut conn)
        .await
        {
            Ok(_) => tracing::info!(database, "created the database"),
            // Another run created it meanwhile.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    // PUBLIC may connect to a new database and create temporary tables in
    // it by default; here only our roles may connect, and only the migrator
    // (as owner) create anything.
    sqlx::raw_sql(&format!(
        r#"alter database "{database}" owner to {MIGRATOR_ROLE};
           revoke all on database "{database}" from public;
           grant connect on database "{database}" to {MIGRATOR_ROLE}, {AUTH_WORKER_ROLE}, {USER_WORKER_ROLE};"#
    ))
    .execute(&mut conn)
    .await
    .context("setting the database's owner and privileges")?;
    conn.close().await?;

    let mut conn = PgConnection::connect_with(&admin.clone().database(database))
        .await
        .with_context(|| format!("connecting to the database {database}"))?;
    // Before PostgreSQL 15 `public` belongs to the bootstrap superuser; the
    // migrator must own it to revoke CREATE from PUBLIC there (0005).
    sqlx::raw_sql(&format!(
        "alter schema public owner to {MIGRATOR_ROLE};
         do $$
         declare r record;
         begin
           for r in select c.oid::regclass as name from pg_class c
                    where c.relnamespace = 'public'::regnamespace
                      and c.relkind in ('r', 'p', 'v', 'm', 'f')
                      and c.relowner <> '{MIGRATOR_ROLE}'::regrole loop
             execute format('alter table %s owner to {MIGRATOR_ROLE}', r.name);
           end loop;
           for r in select t.oid::regtype as name from pg_type t
                    where t.typnamespace = 'public'::regnamespace and t.typtype = 'e'
                      and t.typowner <> '{MIGRATOR_ROLE}'::regrole loop
             execute format('alter type %s owner to {MIGRATOR_ROLE}', r.name);
           end loop;
         end $$;"
    ))
    .execute(&mut conn)
    .await
    .context("handing the schema to the migrator")?;
    conn.close().await?;
    Ok(())
}

/// A SCRAM-SHA-256 verifier for `password`, as PostgreSQL stores it
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802).
///
/// PostgreSQL runs a password through SASLprep before hashing; for printable
/// ASCII that changes nothing, so other passwords are refused rather than
/// risk a verifier the server would compute differently.
fn scram_verifier(password: &SecretString) -> anyhow::Result<String> {
    let password = password.expose_secret();
    if !password.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        bail!("a database password must be printable ASCII");
    }
    let mut salt = [0_u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
    let (stored_key, server_key) = scram_keys(password, &salt, SCRAM_ITERATIONS);
    Ok(format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    ))
}

/// `(StoredKey, ServerKey)` of RFC 5802 for SHA-256.
fn scram_keys(password: &str, salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    let mut salted = [0_u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN),
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    (stored_key.as_ref().to_vec(), server_key.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange (user "user", password "pencil"): the
    /// server's signature, HMAC(ServerKey, AuthMessage), must match.
    #[test]
    fn the_keys_match_rfc_7677s_example() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let (_, server_key) = scram_keys("pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &server_key),
            auth_message.as_bytes(),
        );
        assert_eq!(
            STANDARD.encode(signature.as_ref()),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn verifiers_have_postgresqls_shape_and_a_fresh_salt() {
        let password = SecretString::from("correct horse".to_owned());
        let a = scram_verifier(&password).unwrap();
        assert!(a.starts_with("SCRAM-SHA-256$4096:"), "{a}");
        assert!(!a.contains("correct"));
        assert_ne!(a, scram_verifier(&password).unwrap());
        assert!(scram_verifier(&SecretString::from("pässword".to_owned())).is_err());
        assert!(scram_verifier(&SecretString::from("it's \"quoted\"".to_owned())).is_ok());
    }
}
