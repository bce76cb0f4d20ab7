//! [`Callers`]: the caller check of every request, coalesced. Requests that
//! arrive together (a worker reads them from NATS in bursts) are checked with
//! one query instead of one each: fewer round trips, fewer wake-ups of a
//! PostgreSQL backend, the same answer.
//!
//! A request's check waits in a queue; a lane takes everything queued (at
//! least one, at most [`MAX_BATCH`]) and runs one query for it. While a
//! lane's query is out, the next requests queue up for the next free lane. A
//! request that arrives alone is checked at once, in a batch of one: there
//! is no timer, so coalescing adds no wait at low load. Every check is still
//! a read made after its request arrived, so a revocation committed before
//! the request is seen, as with one query per request. A check waits for a
//! connection no longer than the pool's `acquire_timeout` from its arrival
//! (then 503), as its own query would: with the database down, a batch taken
//! late does not wait a whole timeout more. A failed query fails its whole
//! batch alike (503 when the database is out of reach, else 500).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use shared::{Caller, Role, ServiceError, User, user::UserId};
use sqlx::PgPool;
use tokio::{
    sync::{Mutex, mpsc, oneshot},
    time::Instant,
};
use uuid::Uuid;

use crate::service::ResolveCaller;

/// The most claims one query checks.
pub const MAX_BATCH: usize = 64;

/// How many batch queries may be out at once, by default.
pub const LANES: usize = 2;

type Answer = Result<Option<User>, ServiceError>;

struct Check {
    /// When the check was queued: it waits for a connection no longer than
    /// the pool's `acquire_timeout` from then, as a query of its own would.
    queued: Instant,
    session: Uuid,
    user: UserId,
    answer: oneshot::Sender<Answer>,
}

/// Checks claimed callers against the database in batches
/// ([`ResolveCaller`]); see the module's documentation. The lanes are tasks
/// that end when the last clone of this is dropped.
#[derive(Debug, Clone)]
pub struct Callers {
    queue: mpsc::UnboundedSender<Check>,
    queries: Arc<AtomicU64>,
}

impl Callers {
    /// Starts `lanes` lanes (at least one) on the current Tokio runtime.
    pub fn new(db: PgPool, lanes: usize) -> Self {
        // Unbounded, but never long: each entry is a request already within
        // its service's `max_in_flight` slots.
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let queries = Arc::new(AtomicU64::new(0));
        for _ in 0..lanes.max(1) {
            tokio::spawn(lane(
                db.clone(),
                Arc::clone(&receiver),
                Arc::clone(&queries),
            ));
        }
        Self { queue, queries }
    }

    /// How many queries the lanes have made so far: fewer than the checks
    /// when requests came together.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

impl ResolveCaller for Callers {
    async fn resolve_caller(&self, claimed: Caller) -> Result<User, ServiceError> {
        let ended = || ServiceError::unauthorized("session expired or revoked");
        let session = claimed.session.ok_or_else(ended)?;
        let (answer, answered) = oneshot::channel();
        let check = Check {
            queued: Instant::now(),
            session,
            user: claimed.id,
            answer,
        };
        // Either fails only if the lanes are gone (the runtime is shutting
        // down).
        let gone = || {
            tracing::error!("caller check lanes stopped");
            ServiceError::internal()
        };
        self.queue.send(check).map_err(|_| gone())?;
        answered.await.map_err(|_| gone())??.ok_or_else(ended)
    }
}

/// Takes what is queued, checks it with one query, answers each; until the
/// queue closes.
async fn lane(
    db: PgPool,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Check>>>,
    queries: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // The lock is held only while waiting for the first check and taking
        // the rest; the query runs without it, so another lane can take the
        // checks that arrive meanwhile.
        let taken = receiver.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if taken == 0 {
            return;
        }
        queries.fetch_add(1, Ordering::Relaxed);
        answer(&db, &mut batch).await;
    }
}

/// Answers every check in `batch` (and empties it): the user of each live
/// session, none for an ended one, or the same error for all when the query
/// fails.
async fn answer(db: &PgPool, batch: &mut Vec<Check>) {
    let sessions: Vec<Uuid> = batch.iter().map(|c| c.session).collect();
    // The oldest check's: a batch taken late (the lanes were all waiting for
    // connections, the database down) fails by then with the pool's 503,
    // before the gateway's own timeout, rather than waiting a whole
    // `acquire_timeout` more.
    let deadline = batch
        .iter()
        .map(|c| c.queued)
        .min()
        .unwrap_or_else(Instant::now)
        + db.options().get_acquire_timeout();
    match live_sessions(db, &sessions, deadline).await {
        Ok(live) => {
            for check in batch.drain(..) {
                // A session is live only for the user it belongs to.
                let user = live
                    .get(&check.session)
                    .filter(|u| u.id == check.user)
                    .cloned();
                let _ = check.answer.send(Ok(user));
            }
        }
        Err(e) => {
            let err = ServiceError::from(e);
            for check in batch.drain(..) {
                let _ = check.answer.send(Err(err.clone()));
            }
        }
    }
}

/// The users of those of `sessions` that are live (not revoked, not expired),
/// by session. A deleted user has no sessions left. `PoolTimedOut` when no
/// connection is free by `deadline`.
async fn live_sessions(
    db: &PgPool,
    sessions: &[Uuid],
    deadline: Instant,
) -> Result<HashMap<Uuid, User>, sqlx::Error> {
    let mut connection = tokio::time::timeout_at(deadline, db.acquire())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let rows = sqlx::query!(
        r#"select s.id as session, u.id, u.email, u.email_verified, u.firstname, u.lastname,
                  u.role as "role: Role", u.created_at, u.updated_at
           from sessions s join users u on u.id = s.user_id
           where s.id = any($1) and s.revoked_at is null and s.expires_at > now()"#,
        sessions
    )
    .fetch_all(&mut *connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let user = User {
                id: r.id,
                email: r.email,
                email_verified: r.email_verified,
                firstname: r.firstname,
                lastname: r.lastname,
                role: r.role,
                created_at: r.created_at,
                updated_at: r.updated_at,
            };
            (r.session, user)
        })
        .collect())
}
