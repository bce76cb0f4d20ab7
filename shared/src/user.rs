//! Users as they travel, and the `user-worker`'s subjects.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use validator::Validate;

use crate::rpc::endpoint;

/// The queue group and service name of the user worker.
pub const SERVICE: &str = "user-worker";

/// Ids are 64-bit integers (PostgreSQL `bigint`).
pub type UserId = i64;

/// A user's role. Stored as the PostgreSQL enum `role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(
    feature = "sqlx",
    derive(sqlx::Type),
    sqlx(type_name = "role", rename_all = "UPPERCASE")
)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }
}

/// A user as every reply shows it. There is no password field: a hash can
/// never be serialized by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct User {
    #[schema(example = 1)]
    pub id: UserId,
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `user.get`: one user, for the user itself or an ADMIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct GetRequest {
    #[validate(range(min = 1, message = "must be a positive id"))]
    pub id: UserId,
}

endpoint!(
    /// `user.get`: a user by id; the caller must be that user or an ADMIN.
    Get, "user.get", "get", SERVICE, GetRequest => User
);

/// Every subject the user worker serves, for readiness checks and tests.
pub const SUBJECTS: &[&str] = &[<Get as crate::Endpoint>::SUBJECT];
