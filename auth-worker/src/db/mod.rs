//! The auth worker's SQL, one module per table group. SQL stays inline and
//! lowercase; emails are matched with `lower(email)`, which the unique index
//! `users_email_key` serves.

pub mod email_tokens;
pub mod mfa;
pub mod outbox;
pub mod purge;
pub mod sessions;
pub mod throttle;
pub mod users;
