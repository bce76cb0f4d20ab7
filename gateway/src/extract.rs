//! Extractors: typed input, and the verified caller.
//!
//! * [`Json`] is axum's, except that its rejection is an [`ApiError`], so a
//!   malformed body gets the contract's error body.
//! * [`Valid`] is a JSON body that also passed its `validator` rules (the
//!   same rules the worker applies again); every failing field is listed.
//! * [`Authenticated`] is the bearer-token guard: it yields the verified
//!   [`Caller`] or answers 401.
//! * [`Ctx`] is what travels to the worker in headers (request id, trace).

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{header, request::Parts},
};
use shared::{Caller, RequestContext};

use crate::{AppState, error::ApiError};

/// A JSON body whose rejection is the contract's error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A JSON body that passed validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Valid<T>(pub T);

impl<S, T> FromRequest<S> for Valid<T>
where
    Json<T>: FromRequest<S, Rejection = ApiError>,
    T: validator::Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        value.validate().map_err(|e| ApiError::Contract(e.into()))?;
        Ok(Self(value))
    }
}

/// The caller of a route that needs a bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized("malformed authorization header"))?;
        state.tokens.verify(token).await.map(Self)
    }
}

/// The request's context for the NATS hop: request id and trace parent. The
/// caller is added by routes that have one.
#[derive(Debug, Clone, Default)]
pub struct Ctx(pub RequestContext);

impl Ctx {
    pub fn with_caller(mut self, caller: Caller) -> RequestContext {
        self.0.caller = Some(caller);
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Self(RequestContext {
            caller: None,
            request_id: text(crate::REQUEST_ID),
            traceparent: text(shared::headers::TRACEPARENT),
        }))
    }
}
