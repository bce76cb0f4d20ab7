//! The data step of `auth-worker migrate`: every stored email in its normal
//! form ([`Email`]), the one every request's email is parsed to.
//!
//! `migrations/0007_normalized_emails.sql` does what SQL can. The IDNA
//! mapping of other domains needs the Rust function itself, and rows may be
//! written after that migration by an earlier version still running (a
//! rolling upgrade) or by hand, so this runs after the migrations on every
//! `migrate`. It is idempotent; when every row is normal it only reads.
//!
//! Two accounts that would share a mailbox are never merged: the step then
//! fails, changing nothing, and names them, for an operator to settle (keep
//! one, or change the other's address) before running `migrate` again.

use std::fmt::Write;

use anyhow::bail;
use futures::TryStreamExt;
use shared::{types::Email, user::UserId};
use sqlx::{PgConnection, PgPool};

/// Rewrites every stored email that is not in its normal form, or fails
/// with a report, changing nothing, if two rows would then share a mailbox.
/// The number of rows rewritten.
pub async fn emails(db: &PgPool) -> anyhow::Result<usize> {
    // Look first without holding anyone up: most runs find nothing to do.
    let first = plan(&mut *db.acquire().await?).await?;
    if first.changes.is_empty() {
        return Ok(first.done(0));
    }
    let mut tx = db.begin().await?;
    // Sign-ups and every other write to users wait until this commits, so
    // nothing changes between the check and the update; reads go on, and two
    // runs take turns.
    sqlx::raw_sql("lock table users in share row exclusive mode")
        .execute(&mut *tx)
        .await?;
    let plan = plan(&mut tx).await?;
    let (ids, emails): (Vec<UserId>, Vec<String>) = plan
        .changes
        .iter()
        .map(|c| (c.id, c.normal.clone()))
        .collect();
    // Collisions as the unique index sees them: lower(email), over every
    // row as it would be.
    let collisions = sqlx::query!(
        r#"with changed (id, email) as (select * from unnest($1::bigint[], $2::text[])),
                after as (
                  select u.id, u.email as stored, coalesce(c.email, u.email) as email
                  from users u left join changed c using (id))
           select (array_agg(email order by id))[1] as "mailbox!",
                  array_agg(id order by id) as "ids!",
                  array_agg(stored order by id) as "stored!"
           from after group by lower(email) having count(*) > 1
           order by 1"#,
        &ids,
        &emails,
    )
    .fetch_all(&mut *tx)
    .await?;
    if !collisions.is_empty() {
        let mut report = format!(
            "{} mailbox(es) would have more than one account once stored emails are \
             normalized; no row was changed. Settle each (keep one account, or change \
             the others' addresses), then run `auth-worker migrate` again:",
            collisions.len()
        );
        for c in &collisions {
            let accounts: Vec<String> = c
                .ids
                .iter()
                .zip(&c.stored)
                .map(|(id, stored)| format!("id {id} {stored:?}"))
                .collect();
            let _ = write!(report, "\n  {}: {}", c.mailbox, accounts.join(", "));
        }
        // Dropping the transaction rolls it back.
        bail!(report);
    }
    sqlx::query!(
        "update users u set email = c.email
         from unnest($1::bigint[], $2::text[]) as c (id, email) where u.id = c.id",
        &ids,
        &emails,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(plan.done(ids.len()))
}

/// A row whose email changes.
struct Change {
    id: UserId,
    normal: String,
}

/// What a run would do.
struct Plan {
    changes: Vec<Change>,
    unparsable: Vec<(UserId, String)>,
}

impl Plan {
    /// The outcome, logged: `changed` rows were rewritten.
    fn done(self, changed: usize) -> usize {
        if changed > 0 {
            tracing::info!(changed, "stored emails normalized");
        }
        if !self.unparsable.is_empty() {
            // No request's email parses to these, so they cannot be found by
            // email until an operator corrects them.
            tracing::warn!(
                rows = ?self.unparsable,
                "stored emails that are no address by today's rules, left as they are"
            );
        }
        changed
    }
}

/// Every row whose email is not normal, read as the rows go by.
async fn plan(conn: &mut PgConnection) -> anyhow::Result<Plan> {
    let mut plan = Plan {
        changes: Vec::new(),
        unparsable: Vec::new(),
    };
    let mut rows = sqlx::query!("select id, email from users order by id").fetch(conn);
    while let Some(row) = rows.try_next().await? {
        match Email::parse(&row.email) {
            Ok(normal) if normal.as_str() == row.email => {}
            Ok(normal) => plan.changes.push(Change {
                id: row.id,
                normal: normal.into_string(),
            }),
            Err(_) => plan.unparsable.push((row.id, row.email)),
        }
    }
    Ok(plan)
}
