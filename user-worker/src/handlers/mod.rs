//! One plain async function per subject: `(state, call, request) -> reply`.
//!
//! `call.caller` is the caller the gateway vouched for, already checked by
//! the service loop against the database: its session is live and its role
//! is the current one (see `runtime::service::ResolveCaller`). A request
//! published straight onto NATS without a live caller never gets here; the
//! handlers decide ownership, before anything is read or changed.

pub mod posts;
pub mod users;
