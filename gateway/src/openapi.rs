//! The OpenAPI document, generated from the route handlers' annotations and
//! the `shared` types (utoipa). Served at `GET /api/openapi.json`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::error::ErrorBody;

/// The document's root: info, shared components, the bearer scheme.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "natsauth",
        description = "Accounts, tokens, users and posts over an HTTP gateway and NATS workers.",
    ),
    components(schemas(ErrorBody, shared::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-up, login and token keys"),
        (name = "users", description = "Profiles and user management"),
        (name = "posts", description = "Posts and drafts"),
        (name = "session", description = "The browser session (an HttpOnly cookie)"),
        (name = "mfa", description = "The second factor: authenticator app, recovery codes, \
            passkeys; a login's second step and step-up"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` and `session` security schemes routes refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-natsauth",
                "The browser session, set by POST /api/session (HttpOnly; every bearer route \
                 also takes it)",
            ))),
        );
    }
}

/// Error responses a route can give, as OpenAPI response entries, all with
/// the [`ErrorBody`] schema. Used in `responses(...)` of route annotations.
macro_rules! error_responses {
    ($(#[$doc:meta])* $name:ident: $($status:literal => $text:literal),+ $(,)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                [$(($status, $text)),+]
                    .into_iter()
                    .map(|(status, text): (u16, &str)| {
                        let response = utoipa::openapi::ResponseBuilder::new()
                            .description(text)
                            .content(
                                "application/json",
                                utoipa::openapi::ContentBuilder::new()
                                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                                    .build(),
                            )
                            .build();
                        (status.to_string(), response.into())
                    })
                    .collect()
            }
        }
    };
}

error_responses!(
    /// A JSON body that is malformed, invalid, too large or not JSON.
    BodyErrors:
    400 => "Malformed JSON or a validation failure (`details` lists every field)",
    413 => "Request body too large",
    415 => "Content-Type is not application/json",
);
error_responses!(
    /// A route that needs a bearer token.
    AuthErrors:
    401 => "Missing, malformed, expired or forged access token",
);
error_responses!(
    /// Any route that makes a NATS request.
    UpstreamErrors:
    503 => "No worker serves the subject, or a dependency is down",
    504 => "A worker did not answer in time",
);
