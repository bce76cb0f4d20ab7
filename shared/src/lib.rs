//! The wire contract between the HTTP gateway and the workers.
//!
//! Everything that crosses NATS is defined here exactly once, so the two sides
//! cannot drift:
//!
//! * [`endpoint`]: the [`Endpoint`] trait that binds a subject to its request
//!   and reply types and to the caller it needs, and the body rules both sides
//!   apply ([`endpoint::decode_request`], [`endpoint::require_object`]).
//! * [`auth`], [`user`], [`post`]: one type per request and reply, and one
//!   `Endpoint` impl per subject.
//! * [`mfa`]: the second factor (TOTP, recovery codes, passkeys), its
//!   login step, step-up and enrolment.
//! * [`events`]: the security events of the `AUTH_EVENTS` stream.
//! * [`paging`]: keyset paging (`Limit`, `Cursor`, `Page`).
//! * [`error`]: the error that travels in a reply ([`ServiceError`]) with its
//!   field details.
//! * [`headers`]: the caller, client address, request id and trace context
//!   headers, and `Access`: what a subject needs of its
//!   caller.
//! * [`types`]: the input rules (with `validator`), applied by the gateway
//!   and again by the worker that receives a request.
//!
//! Nothing here runs anything and nothing here connects: the processes'
//! runtime (settings, logging, connections, the gateway's NATS client
//! `runtime::rpc` and the workers' service loop `runtime::service`) is the
//! `runtime` crate. Feature `sqlx` lets the workers read [`User`] and
//! [`post::Post`] rows and turns database errors into the [`ServiceError`]
//! that travels.

pub mod auth;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod headers;
pub mod mfa;
pub mod paging;
pub mod post;
pub mod types;
pub mod user;

pub use endpoint::{Done, Endpoint};
pub use error::{FieldError, ServiceError};
pub use headers::{Caller, RequestContext};
pub use user::{Role, User};
