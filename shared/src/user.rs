//! Users as they travel, and the `user-worker`'s `user.*` subjects (its
//! `post.*` subjects are in [`crate::post`]).

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::{
    Caller, Done,
    endpoint::{endpoint, partial_update},
    paging::{Cursor, Limit, Page},
    post,
    types::{name, trimmed_optional},
};

/// The queue group and service name of the user worker.
pub const SERVICE: &str = "user-worker";

/// Ids are 64-bit integers (PostgreSQL `bigint`).
pub type UserId = i64;

/// A notice, with no reply, that a user's sessions or role changed (the
/// auth-worker publishes it on [`crate::auth::SESSIONS_ENDED`], this worker
/// on [`CHANGED`]): whoever caches something on the user's word (the
/// gateway's proxy assertions) drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChanged {
    pub user_id: UserId,
}

/// The user-worker's notice that a user's role changed or the user was
/// deleted ([`UserChanged`]); only it may publish it (`nats.conf`).
pub const CHANGED: &str = "user.changed";

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
    /// Whether the owner of `email` followed a verification link (see
    /// `auth.verify_email`). Proxied tools get the address only when it is.
    pub email_verified: bool,
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

/// `user.list` (ADMIN only), and the query of `GET /api/users`: every user
/// in id order, a page at a time.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema, IntoParams,
)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListRequest {
    #[serde(default)]
    #[param(inline)]
    pub limit: Limit,
    /// The `nextCursor` of the previous page; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(inline)]
    pub cursor: Option<Cursor>,
}

partial_update! {
    fields {
        /// A string to set, `null` or blank to clear, absent to keep.
        #[serde(default, deserialize_with = "clearable_name", skip_serializing_if = "Option::is_none")]
        #[validate(custom(function = "name"))]
        #[schema(value_type = Option<String>, max_length = 100, example = "Ada")]
        pub firstname: Option<Option<String>>,
        /// A string to set, `null` or blank to clear, absent to keep.
        #[serde(default, deserialize_with = "clearable_name", skip_serializing_if = "Option::is_none")]
        #[validate(custom(function = "name"))]
        #[schema(value_type = Option<String>, max_length = 100, example = "Lovelace")]
        pub lastname: Option<Option<String>>,
    }
    /// `user.update`: a partial update of one user. The caller must be that
    /// user or an ADMIN, and only an ADMIN may send `role`.
    UpdateRequest {
        #[validate(range(min = 1, message = "must be a positive id"))]
        pub id: UserId,
    } {
        /// The new role (ADMIN only); absent to keep (`null` is refused).
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Role)]
        pub role: Option<Role>,
    }
    /// The body of `PATCH /api/users/me`: the caller's own names (a `role` is
    /// refused).
    UpdateProfile {} {}
    /// The body of `PATCH /api/users/{id}` (ADMIN only): names and role.
    UpdateUser {} {
        /// The new role; absent to keep (`null` is refused).
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Role)]
        pub role: Option<Role>,
    }
}

impl UpdateRequest {
    /// True when the request changes nothing.
    pub fn is_empty(&self) -> bool {
        self.firstname.is_none() && self.lastname.is_none() && self.role.is_none()
    }
}

impl UpdateProfile {
    /// The `user.update` request for user `id`.
    pub fn for_user(self, id: UserId) -> UpdateRequest {
        UpdateRequest {
            id,
            firstname: self.firstname,
            lastname: self.lastname,
            role: None,
        }
    }
}

impl UpdateUser {
    /// The `user.update` request for user `id`.
    pub fn for_user(self, id: UserId) -> UpdateRequest {
        UpdateRequest {
            id,
            firstname: self.firstname,
            lastname: self.lastname,
            role: self.role,
        }
    }
}

/// `user.delete`: the user itself or an ADMIN. Their sessions end with them;
/// their posts stay, without an author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct DeleteRequest {
    #[validate(range(min = 1, message = "must be a positive id"))]
    pub id: UserId,
}

/// Decodes a field of a partial update that may be cleared: with
/// `#[serde(default)]`, absent stays `None`; `null` or blank text is
/// `Some(None)`; text is trimmed.
pub fn clearable_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    trimmed_optional(deserializer).map(Some)
}

/// Decodes a field of a partial update that may be changed but not cleared:
/// with `#[serde(default)]`, absent stays `None`, and `null` is refused.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

endpoint!(
    /// `user.get`: a user by id; the caller must be that user or an ADMIN.
    Get, "user.get", "user_get", SERVICE, Caller, GetRequest => User
);
endpoint!(
    /// `user.list`: a page of users in id order; ADMIN only.
    List, "user.list", "user_list", SERVICE, Caller, ListRequest => Page<User>
);
endpoint!(
    /// `user.update`: names (self or ADMIN) and role (ADMIN only).
    Update, "user.update", "user_update", SERVICE, Caller, UpdateRequest => User
);
endpoint!(
    /// `user.delete`: self or ADMIN; sessions end, posts stay without author.
    Delete, "user.delete", "user_delete", SERVICE, Caller, DeleteRequest => Done
);

/// Every subject the user worker serves (`user.*` and `post.*`), for
/// readiness checks and tests.
pub const SUBJECTS: &[&str] = &[
    <Get as crate::Endpoint>::SUBJECT,
    <List as crate::Endpoint>::SUBJECT,
    <Update as crate::Endpoint>::SUBJECT,
    <Delete as crate::Endpoint>::SUBJECT,
    <post::Create as crate::Endpoint>::SUBJECT,
    <post::Get as crate::Endpoint>::SUBJECT,
    <post::List as crate::Endpoint>::SUBJECT,
    <post::Update as crate::Endpoint>::SUBJECT,
    <post::Delete as crate::Endpoint>::SUBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;

    #[test]
    fn an_update_keeps_absent_fields_and_clears_null_or_blank_names() {
        let req: UpdateRequest =
            serde_json::from_str(r#"{"id":1,"firstname":" Ada ","lastname":null}"#).unwrap();
        assert_eq!(req.firstname, Some(Some("Ada".into())));
        assert_eq!(req.lastname, Some(None));
        assert_eq!(req.role, None);
        let blank: UpdateProfile = serde_json::from_str(r#"{"lastname":"   "}"#).unwrap();
        assert_eq!(blank.firstname, None);
        assert_eq!(blank.lastname, Some(None));
        assert!(UpdateProfile::default().for_user(1).is_empty());
    }

    #[test]
    fn an_update_survives_the_hop_with_absent_and_null_kept_apart() {
        let req = UpdateUser {
            firstname: None,
            lastname: Some(None),
            role: Some(Role::Admin),
        }
        .for_user(7);
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(json, r#"{"id":7,"lastname":null,"role":"ADMIN"}"#);
        assert_eq!(serde_json::from_str::<UpdateRequest>(&json).unwrap(), req);
    }

    #[test]
    fn the_profile_body_refuses_a_role_and_unknown_fields() {
        assert!(serde_json::from_str::<UpdateProfile>(r#"{"role":"ADMIN"}"#).is_err());
        assert!(serde_json::from_str::<UpdateProfile>(r#"{"firstName":"Ada"}"#).is_err());
        assert!(serde_json::from_str::<UpdateUser>(r#"{"role":null}"#).is_err());
        assert!(serde_json::from_str::<UpdateUser>(r#"{"role":"ROOT"}"#).is_err());
    }

    #[test]
    fn update_names_follow_the_sign_up_rules() {
        let req: UpdateProfile = serde_json::from_str(&format!(
            r#"{{"firstname":"{}","lastname":"a\u0007b"}}"#,
            "x".repeat(101)
        ))
        .unwrap();
        let err = ServiceError::from(req.validate().unwrap_err());
        let fields: Vec<_> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["firstname", "lastname"]);
        let ok: UpdateProfile =
            serde_json::from_str(&format!(r#"{{"firstname":"{}"}}"#, "é".repeat(100))).unwrap();
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn a_list_request_defaults_to_the_first_page_of_20() {
        let req: ListRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(req.limit.get(), 20);
        assert_eq!(req.cursor, None);
        assert!(serde_json::from_str::<ListRequest>(r#"{"cursor":"nope!"}"#).is_err());
    }

    #[test]
    fn every_endpoint_name_is_unique_and_valid() {
        use crate::Endpoint;
        let names = [
            Get::NAME,
            List::NAME,
            Update::NAME,
            Delete::NAME,
            post::Create::NAME,
            post::Get::NAME,
            post::List::NAME,
            post::Update::NAME,
            post::Delete::NAME,
        ];
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for name in names {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
        }
        assert_eq!(SUBJECTS.len(), names.len());
    }
}
