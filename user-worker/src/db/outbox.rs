//! Events of this worker's changes (a role changed, a user deleted),
//! written to the outbox in the transaction of the change; the
//! auth-worker's relay publishes them.

use shared::events::{Envelope, Event};
use sqlx::PgExecutor;

use crate::Error;

/// Adds `event` to the outbox on `db` (the change's transaction).
pub async fn write(db: impl PgExecutor<'_>, event: Event) -> Result<(), Error> {
    let envelope = Envelope::new(event);
    let payload = serde_json::to_string(&envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
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
