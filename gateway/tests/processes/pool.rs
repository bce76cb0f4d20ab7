//! The PostgreSQL pool both workers use (`runtime::db::pool`) against a real
//! server: a connection goes back to the pool without a round trip when its
//! query left it clean (the vendored sqlx-postgres patch), and is still
//! rolled back or dropped when it was not. (A query dropped mid-flight is
//! drained by sqlx before the connection's next query whether or not the
//! release pings, so no test here could tell the patch from its absence.)

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use testkit::{TestDb, db_settings};

/// One connection, so every query of a test meets the same one.
async fn one_connection(db: &TestDb) -> PgPool {
    let mut settings = db_settings(&db.url);
    settings.max_connections = 1;
    let pool = runtime::db::pool(&settings).unwrap();
    // Connected before the test starts, so its first query goes out at once.
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    pool
}

/// Ends `pid`'s session from another connection, and waits until it is gone.
async fn terminate(db: &TestDb, pid: i32) {
    let admin = db.pool().await;
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(ended, "no backend {pid}");
    let admin = &admin;
    let gone = testkit::eventually(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async move {
            let left: i64 =
                sqlx::query_scalar("select count(*) from pg_stat_activity where pid = $1")
                    .bind(pid)
                    .fetch_one(admin)
                    .await
                    .unwrap();
            left == 0
        },
    )
    .await;
    assert!(gone, "backend {pid} still there");
}

#[tokio::test]
async fn a_clean_connection_answers_a_ping_without_asking_the_server() {
    let db = TestDb::create().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    terminate(&db, pid).await;
    // Nothing in flight: the release ping sends nothing, so it cannot see
    // that the server is gone (before the patch, it asked and failed).
    conn.ping().await.unwrap();
    // The next query finds out, and leaves its ReadyForQuery pending: from
    // then on the ping asks the server again, and fails.
    assert!(sqlx::query("select 1").execute(&mut conn).await.is_err());
    assert!(conn.ping().await.is_err());
}

#[tokio::test]
async fn a_connection_that_died_fails_one_query_then_the_pool_replaces_it() {
    let db = TestDb::create().await;
    let pool = one_connection(&db).await;
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    terminate(&db, pid).await;
    assert!(sqlx::query("select 1").execute(&pool).await.is_err());
    // Its failed query left it unclean, so the ping on release asked, failed,
    // and the pool dropped it: the next query gets a new session.
    let next: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(next, pid);
}

#[tokio::test]
async fn a_dropped_transaction_is_rolled_back_as_its_connection_goes_back_not_when_reused() {
    let db = TestDb::create().await;
    let pool = one_connection(&db).await;
    let admin = db.pool().await;
    sqlx::query("create table scratch (x int primary key)")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("insert into scratch values (1)")
        .execute(&admin)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select x from scratch where x = 1 for update")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Dropped: sqlx queues a ROLLBACK in the connection's write buffer, and
    // the release must send it (its ping is not skipped for that), or the
    // row stays locked for as long as the connection idles in the pool.
    drop(tx);
    let pool = &pool;
    let back = testkit::eventually(
        Duration::from_secs(10),
        Duration::from_millis(5),
        || async move { pool.num_idle() == 1 },
    )
    .await;
    assert!(back, "the connection did not go back to the pool");
    let locked = sqlx::query("select x from scratch where x = 1 for update nowait")
        .execute(&admin)
        .await;
    assert!(
        locked.is_ok(),
        "the dropped transaction still holds its lock: {locked:?}"
    );
    let (rows, in_transaction): (i64, bool) = sqlx::query_as(
        // A transaction left open would hold a transaction id (it locked a row).
        "select (select count(*) from scratch), txid_current_if_assigned() is not null",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    assert!(
        !in_transaction,
        "the next query ran inside the old transaction"
    );
}
