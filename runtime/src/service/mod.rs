//! The worker side of the NATS service API (ADR-32).
//!
//! A worker lists its endpoints and handlers on a [`ServiceBuilder`], then
//! calls [`ServiceBuilder::serve`]. Every endpoint is a queue subscription in
//! the group named after the service, so copies of a worker share the load.
//! The service answers `$SRV.PING|INFO|STATS` (all, by name, by id) so that
//! `nats micro ls/info/stats` see it, with async-nats's own wire types.
//!
//! * `builder`: [`ServiceBuilder`], which binds each [`shared::Endpoint`] to a
//!   handler: caller check, decoding, validation, encoding.
//! * `dispatch`: serving: one loop per endpoint, bounded concurrency (a fast
//!   503 when full), error replies, statistics, drain on shutdown.
//! * `verbs`: the service API's `PING`, `INFO` and `STATS`.
//!
//! Why not `async_nats::service::Service` itself: its error replies carry an
//! empty body (the contract wants the JSON error body as well as the
//! `Nats-Service-Error*` headers), and its `stop()` unsubscribes without
//! draining, which loses requests already routed to the stopping copy. Here a
//! shutdown drains each subscription, finishes every request in hand, replies,
//! and flushes.

mod builder;
mod dispatch;
mod verbs;

use std::future::Future;

use shared::{Caller, ServiceError, User, headers::ClientAddress};

pub use builder::{ServiceBuilder, json_schema};

/// What a handler learns about its request besides the body.
#[derive(Debug, Clone)]
pub struct Call<C> {
    /// The caller as the endpoint's [`Access`](shared::headers::Access) wants
    /// it, already checked against the database: a live session and the
    /// current role.
    pub caller: C,
    /// The caller's own user row, as read when the caller was checked (none
    /// when no caller was checked): `user.get` of oneself, the hottest
    /// route, needs no second query.
    pub user: Option<User>,
    /// The HTTP client's address, when the gateway sent one.
    pub client: Option<ClientAddress>,
    /// The HTTP client's `User-Agent`, when the gateway sent one (a login).
    pub user_agent: Option<String>,
    /// The gateway's public origin, when it sent one (the passkey calls).
    pub origin: Option<String>,
}

/// Checks a claimed caller against the current state: the user exists, the
/// session in the token is live (not revoked, not expired), and the role is
/// the user's current one. The service loop calls it once per request, before
/// decoding, for every endpoint whose [`Access`](shared::headers::Access)
/// asks for it. Both workers use the database's, coalesced
/// ([`crate::db::callers::Callers`], feature `postgres`: one query for the
/// requests that arrive together); `impl ResolveCaller for PgPool` makes one
/// query per request (the benchmark's monolith floor).
pub trait ResolveCaller: Send + Sync + 'static {
    /// The caller's user as it is now (its role is the one that counts), or
    /// 401 when the caller's session has ended.
    fn resolve_caller(
        &self,
        claimed: Caller,
    ) -> impl Future<Output = Result<User, ServiceError>> + Send;
}
