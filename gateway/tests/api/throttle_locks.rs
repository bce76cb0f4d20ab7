//! The login throttle's statements under contention: reservations and
//! releases of the same keys, many at once, on a real PostgreSQL.

use auth_worker::db::throttle::{self, Key};
use shared::headers::ClientAddress;
use testkit::TestDb;

/// What a login of one account from one address does to the throttle, with
/// nothing in between: 32 tasks reserving and releasing the same three rows
/// as fast as the database lets them. A deadlock is an error PostgreSQL
/// reports to one of the two statements (and a wait of `deadlock_timeout`).
#[tokio::test]
async fn reservations_and_releases_of_the_same_keys_never_deadlock() {
    let db = TestDb::create().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        .connect(&db.url)
        .await
        .unwrap();
    let address = ClientAddress("10.0.0.1".parse().unwrap());
    let tasks = (0..32).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let keys = [
                Key::Pair("ada@example.com", Some(address)),
                Key::Email("ada@example.com"),
                Key::Address(address),
            ];
            let mut errors = Vec::new();
            for _ in 0..20 {
                if let Err(e) = throttle::reserve(&pool, &keys, 900).await {
                    errors.push(e.to_string());
                }
                if let Err(e) = throttle::release(&pool, &keys).await {
                    errors.push(e.to_string());
                }
            }
            errors
        })
    });
    let mut errors = Vec::new();
    for task in futures::future::join_all(tasks).await {
        errors.extend(task.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        errors.first()
    );
}
