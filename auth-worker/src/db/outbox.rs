//! The outbox: events written in the transaction of the change they report,
//! published later by the relay (`crate::relay`).

use shared::events::Envelope;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Error;

/// Adds `envelope` to the outbox; run it on the transaction of the change,
/// so the event exists exactly when the change does.
pub async fn write(db: impl PgExecutor<'_>, envelope: &Envelope) -> Result<(), Error> {
    let payload = serde_json::to_string(envelope).map_err(anyhow::Error::from)?;
    sqlx::query!(
        "insert into outbox (id, kind, payload) values ($1, $2, $3::text::jsonb)",
        envelope.id,
        envelope.event.kind(),
        payload,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One row waiting to be published.
#[derive(Debug)]
pub struct Pending {
    pub id: Uuid,
    pub kind: String,
    pub payload: String,
}

/// Up to `limit` unpublished rows, oldest (lowest id) first.
pub async fn pending(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<Pending>, Error> {
    Ok(sqlx::query_as!(
        Pending,
        r#"select id, kind, payload::text as "payload!" from outbox
           where published_at is null order by id limit $1"#,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// Marks rows the stream acknowledged.
pub async fn mark_published(db: impl PgExecutor<'_>, ids: &[Uuid]) -> Result<(), Error> {
    sqlx::query!(
        "update outbox set published_at = now() where id = any($1) and published_at is null",
        ids
    )
    .execute(db)
    .await?;
    Ok(())
}

/// How many rows wait to be published.
pub async fn pending_count(db: impl PgExecutor<'_>) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar!(r#"select count(*) as "n!" from outbox where published_at is null"#)
            .fetch_one(db)
            .await?,
    )
}
