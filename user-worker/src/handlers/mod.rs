//! One plain async function per subject: `(state, ctx, request) -> reply`.
//!
//! Every handler decides authorization itself from `ctx.caller` (the verified
//! caller the gateway put in the `X-Caller` header): a request published
//! straight onto NATS without one is 401 and, for another user's data, 403 —
//! in both cases before anything is read or changed.

pub mod posts;
pub mod users;
