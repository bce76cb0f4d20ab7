//! One trait binds a subject to its request and reply types.
//!
//! Each subject is a zero-sized type implementing [`Endpoint`], declared once
//! in [`crate::auth`], [`crate::user`] or [`crate::post`]. The gateway calls
//! `rpc.call::<auth::Login>(&ctx, &request)` (the client is `runtime::rpc`);
//! a worker registers the same `auth::Login` with its handler
//! (`runtime::service`). No subject string exists anywhere else.
//!
//! The body rules both sides apply are here too: [`require_object`] (the
//! gateway's JSON extractor) and [`decode_request`] (the worker's service
//! loop).

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{ServiceError, headers::Access};

/// The reply of a command with nothing to say: `{}` (HTTP 204).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Done {}

/// A NATS request/reply endpoint: its subject, its name in the service API,
/// the worker service that serves it, and its payload types.
pub trait Endpoint: Send + Sync + 'static {
    /// `<service>.<operation>`, e.g. `auth.login`.
    const SUBJECT: &'static str;
    /// The endpoint's name in `nats micro info` (`^[A-Za-z0-9_-]+$`): the
    /// subject with `_` for `.`, e.g. `auth_login`, `user_get`.
    const NAME: &'static str;
    /// The worker service (and queue group) that serves the subject.
    const SERVICE: &'static str;
    /// Who may call: [`Caller`](crate::Caller) (a live session),
    /// `Option<Caller>` or [`Anonymous`](crate::headers::Anonymous). The
    /// worker checks it before the handler runs (see [`Access`]).
    type Caller: Access;
    /// Validated by the gateway before sending and by the worker on receipt;
    /// its JSON Schema is published in the endpoint's service metadata.
    type Request: Serialize
        + DeserializeOwned
        + validator::Validate
        + utoipa::ToSchema
        + Send
        + Sync
        + 'static;
    type Reply: Serialize + DeserializeOwned + utoipa::ToSchema + Send + Sync + 'static;
}

/// Declares a marker type and its [`Endpoint`] impl in one line.
macro_rules! endpoint {
    ($(#[$doc:meta])* $marker:ident, $subject:literal, $name:literal, $service:expr, $caller:ty, $req:ty => $reply:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $marker;

        impl $crate::endpoint::Endpoint for $marker {
            const SUBJECT: &'static str = $subject;
            const NAME: &'static str = $name;
            const SERVICE: &'static str = $service;
            type Caller = $caller;
            type Request = $req;
            type Reply = $reply;
        }
    };
}
pub(crate) use endpoint;

/// Declares the types of one partial update whose fields are written once:
/// after `fields { … }`, each `Name { before } { after }` is a struct with the
/// fields `before`, then the shared fields, then `after` (so the NATS request
/// can add the target's `id` and an HTTP body can add what only its route
/// may send). Every one refuses unknown fields, so nothing sent is silently
/// ignored; absent fields are `None` (keep), and serialize back as absent.
macro_rules! partial_update {
    (fields { $($fields:tt)* }) => {};
    (
        fields { $($fields:tt)* }
        $(#[$doc:meta])* $name:ident { $($before:tt)* } { $($after:tt)* }
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize,
            validator::Validate, utoipa::ToSchema,
        )]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($before)*
            $($fields)*
            $($after)*
        }

        $crate::endpoint::partial_update! { fields { $($fields)* } $($rest)* }
    };
}
pub(crate) use partial_update;

/// Refuses a body whose top-level JSON value is not an object: serde would
/// read a struct from an array (`["a@b.co", "password"]`), and no request of
/// this contract is one.
pub fn require_object(body: &[u8]) -> Result<(), ServiceError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => Ok(()),
        Some(_) => Err(ServiceError::bad_request(
            "request body must be a JSON object",
        )),
    }
}

/// Decodes and validates a request body as a worker receives it (an empty
/// body counts as `{}`), so a request published straight onto NATS is held to
/// the gateway's rules.
pub fn decode_request<T: DeserializeOwned + validator::Validate>(
    payload: &[u8],
) -> Result<T, ServiceError> {
    let body: &[u8] = if payload.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        payload
    };
    require_object(body)?;
    let request: T = serde_json::from_slice(body).map_err(|e| {
        ServiceError::bad_request(format!(
            "invalid request body: {}",
            crate::error::describe_json_error(&e)
        ))
    })?;
    request.validate()?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, decode_request};
    use crate::{
        auth::{self, JwksRequest},
        post,
        user::{self, GetRequest},
    };

    fn named_after_its_subject<E: Endpoint>() {
        assert_eq!(E::NAME, E::SUBJECT.replace('.', "_"), "{}", E::SUBJECT);
        // ADR-32's rule for endpoint names.
        assert!(
            E::NAME
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{}",
            E::NAME
        );
    }

    #[test]
    fn every_endpoint_is_named_after_its_subject() {
        named_after_its_subject::<auth::CreateUser>();
        named_after_its_subject::<auth::GetUser>();
        named_after_its_subject::<auth::Login>();
        named_after_its_subject::<auth::Jwks>();
        named_after_its_subject::<auth::Refresh>();
        named_after_its_subject::<auth::Logout>();
        named_after_its_subject::<auth::ChangePassword>();
        named_after_its_subject::<user::Get>();
        named_after_its_subject::<user::List>();
        named_after_its_subject::<user::Update>();
        named_after_its_subject::<user::Delete>();
        named_after_its_subject::<post::Create>();
        named_after_its_subject::<post::Get>();
        named_after_its_subject::<post::List>();
        named_after_its_subject::<post::Update>();
        named_after_its_subject::<post::Delete>();
    }

    #[test]
    fn an_empty_body_decodes_as_an_empty_object() {
        let _: JwksRequest = decode_request(b"").unwrap();
        let _: JwksRequest = decode_request(b"  \n").unwrap();
    }

    #[test]
    fn a_json_array_is_not_read_as_a_struct() {
        let err = decode_request::<GetRequest>(b" [1]").unwrap_err();
        assert_eq!(err.status_code, 400);
        assert_eq!(err.message, "request body must be a JSON object");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_400() {
        let err = decode_request::<JwksRequest>(b"{nope").unwrap_err();
        assert_eq!(err.status_code, 400);
        assert!(err.message.starts_with("invalid request body"));
    }

    #[test]
    fn a_request_that_breaks_the_rules_is_a_400_with_details() {
        let err = decode_request::<GetRequest>(br#"{"id":0}"#).unwrap_err();
        assert_eq!(err.status_code, 400);
        assert_eq!(err.details[0].field, "id");
    }
}
