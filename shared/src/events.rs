//! Security events: what the workers write to the outbox and the
//! auth-worker's relay publishes to the JetStream stream [`STREAM`], one
//! subject per kind (`events.auth.<kind>`), with the outbox id as
//! `Nats-Msg-Id`. The `mail-worker` is one consumer; others subscribe to the
//! same stream without touching the writers.
//!
//! A payload never carries a password, a token or a hash. A mail that needs
//! a link names the token's row ([`TokenId`]); the mail-worker asks the
//! auth-worker for the token itself (`auth.mail_token`) when it sends.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Role, user::UserId};

/// The JetStream stream of security events.
pub const STREAM: &str = "AUTH_EVENTS";
/// Every event's subject starts with this and a dot, then the kind.
pub const SUBJECT_PREFIX: &str = "events.auth";
/// The subjects of [`STREAM`].
pub const SUBJECTS: &str = "events.auth.>";

/// The id of an `email_tokens` row: which token a mail carries. Not a
/// secret; the token is made and handed only to the mail-worker.
pub type TokenId = Uuid;

/// One event as it travels: the outbox row's id (also `Nats-Msg-Id`), when
/// the change happened, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    #[serde(flatten)]
    pub event: Event,
}

impl Envelope {
    /// A new event with a fresh UUIDv7 id, happening now.
    pub fn new(event: Event) -> Self {
        Self {
            id: Uuid::now_v7(),
            occurred_at: OffsetDateTime::now_utc(),
            event,
        }
    }

    /// `events.auth.<kind>`.
    pub fn subject(&self) -> String {
        format!("{SUBJECT_PREFIX}.{}", self.event.kind())
    }
}

/// Why sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// The user ended it from the sessions list.
    Revoked,
    /// The user ended every other session.
    EndOthers,
    /// An ADMIN ended the user's sessions.
    Admin,
    /// The password was changed or reset.
    Password,
    /// A spent refresh token was presented again.
    TokenReuse,
    /// The role was lowered.
    RoleChanged,
    /// An ADMIN reset the user's second factors.
    MfaReset,
}

/// Who asked for a password reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestedBy {
    /// The account's owner (`POST /api/auth/recover`).
    User,
    /// An ADMIN (`POST /api/users/{id}/recover`).
    Admin,
}

/// What happened. `kind` names the variant on the wire, and is the last
/// part of the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind")]
pub enum Event {
    /// A sign-up.
    #[serde(rename = "user.created", rename_all = "camelCase")]
    UserCreated { user_id: UserId, email: String },
    /// A verification mail is to be sent to `email` with the token `token_id`.
    #[serde(rename = "email.verification_requested", rename_all = "camelCase")]
    EmailVerificationRequested {
        user_id: UserId,
        email: String,
        token_id: Uuid,
    },
    /// `email` was verified.
    #[serde(rename = "email.verified", rename_all = "camelCase")]
    EmailVerified { user_id: UserId, email: String },
    /// A reset mail is to be sent to `email` with the token `token_id`.
    #[serde(rename = "password.reset_requested", rename_all = "camelCase")]
    PasswordResetRequested {
        user_id: UserId,
        email: String,
        token_id: Uuid,
        requested_by: RequestedBy,
    },
    /// The password was set from a reset link; every session ended.
    #[serde(rename = "password.reset", rename_all = "camelCase")]
    PasswordReset { user_id: UserId, email: String },
    /// The password was changed by its owner (current password given).
    #[serde(rename = "password.changed", rename_all = "camelCase")]
    PasswordChanged { user_id: UserId, email: String },
    /// A change of address was asked for: a confirmation to `new_email`
    /// (token `token_id`), a notice to `old_email`.
    #[serde(rename = "email.change_requested", rename_all = "camelCase")]
    EmailChangeRequested {
        user_id: UserId,
        old_email: String,
        new_email: String,
        token_id: Uuid,
    },
    /// The address changed from `old_email` to `new_email` (confirmed).
    #[serde(rename = "email.changed", rename_all = "camelCase")]
    EmailChanged {
        user_id: UserId,
        old_email: String,
        new_email: String,
    },
    /// A login. `user_agent` is the browser family and system ("Firefox on
    /// Linux"), `network` the client's /24 (IPv4) or /48 (IPv6);
    /// `new_device` is true when no earlier session of the user had both.
    #[serde(rename = "session.created", rename_all = "camelCase")]
    SessionCreated {
        user_id: UserId,
        email: String,
        session_id: Uuid,
        user_agent: Option<String>,
        network: Option<String>,
        new_device: bool,
    },
    /// Sessions ended: one (`session_id`) or `count` of them.
    #[serde(rename = "session.revoked", rename_all = "camelCase")]
    SessionRevoked {
        user_id: UserId,
        session_id: Option<Uuid>,
        count: u64,
        reason: RevokeReason,
    },
    /// An ADMIN (or the command line) changed a role.
    #[serde(rename = "role.changed", rename_all = "camelCase")]
    RoleChanged {
        user_id: UserId,
        email: String,
        from: Role,
        to: Role,
    },
    /// The account was deleted.
    #[serde(rename = "user.deleted", rename_all = "camelCase")]
    UserDeleted { user_id: UserId, email: String },
    /// Logins to the account were refused for too many attempts, from one
    /// client address or network (written once per throttle window).
    #[serde(rename = "login.throttled", rename_all = "camelCase")]
    LoginThrottled {
        user_id: UserId,
        email: String,
        network: Option<String>,
    },
    /// A second factor was added: an authenticator app, or a passkey named
    /// `name`.
    #[serde(rename = "mfa.enabled", rename_all = "camelCase")]
    MfaEnabled {
        user_id: UserId,
        email: String,
        method: crate::mfa::Method,
        name: Option<String>,
    },
    /// A second factor was removed by its owner; `remaining` factors are
    /// left.
    #[serde(rename = "mfa.disabled", rename_all = "camelCase")]
    MfaDisabled {
        user_id: UserId,
        email: String,
        method: crate::mfa::Method,
        name: Option<String>,
        remaining: u32,
    },
    /// An ADMIN removed every second factor of the user; the user's
    /// sessions ended.
    #[serde(rename = "mfa.reset", rename_all = "camelCase")]
    MfaReset {
        user_id: UserId,
        email: String,
        admin_id: UserId,
    },
    /// A recovery code was spent at a login or step-up; `left` remain.
    #[serde(rename = "mfa.recovery_code_used", rename_all = "camelCase")]
    RecoveryCodeUsed {
        user_id: UserId,
        email: String,
        left: u32,
    },
}

impl Event {
    /// Every kind, in the order the contract lists them.
    pub const KINDS: &'static [&'static str] = &[
        "user.created",
        "email.verification_requested",
        "email.verified",
        "password.reset_requested",
        "password.reset",
        "password.changed",
        "email.change_requested",
        "email.changed",
        "session.created",
        "session.revoked",
        "role.changed",
        "user.deleted",
        "login.throttled",
        "mfa.enabled",
        "mfa.disabled",
        "mfa.reset",
        "mfa.recovery_code_used",
    ];

    /// The kind, as `kind` says on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UserCreated { .. } => "user.created",
            Self::EmailVerificationRequested { .. } => "email.verification_requested",
            Self::EmailVerified { .. } => "email.verified",
            Self::PasswordResetRequested { .. } => "password.reset_requested",
            Self::PasswordReset { .. } => "password.reset",
            Self::PasswordChanged { .. } => "password.changed",
            Self::EmailChangeRequested { .. } => "email.change_requested",
            Self::EmailChanged { .. } => "email.changed",
            Self::SessionCreated { .. } => "session.created",
            Self::SessionRevoked { .. } => "session.revoked",
            Self::RoleChanged { .. } => "role.changed",
            Self::UserDeleted { .. } => "user.deleted",
            Self::LoginThrottled { .. } => "login.throttled",
            Self::MfaEnabled { .. } => "mfa.enabled",
            Self::MfaDisabled { .. } => "mfa.disabled",
            Self::MfaReset { .. } => "mfa.reset",
            Self::RecoveryCodeUsed { .. } => "mfa.recovery_code_used",
        }
    }

    /// The user the event is about.
    pub fn user_id(&self) -> UserId {
        match self {
            Self::UserCreated { user_id, .. }
            | Self::EmailVerificationRequested { user_id, .. }
            | Self::EmailVerified { user_id, .. }
            | Self::PasswordResetRequested { user_id, .. }
            | Self::PasswordReset { user_id, .. }
            | Self::PasswordChanged { user_id, .. }
            | Self::EmailChangeRequested { user_id, .. }
            | Self::EmailChanged { user_id, .. }
            | Self::SessionCreated { user_id, .. }
            | Self::SessionRevoked { user_id, .. }
            | Self::RoleChanged { user_id, .. }
            | Self::UserDeleted { user_id, .. }
            | Self::LoginThrottled { user_id, .. }
            | Self::MfaEnabled { user_id, .. }
            | Self::MfaDisabled { user_id, .. }
            | Self::MfaReset { user_id, .. }
            | Self::RecoveryCodeUsed { user_id, .. } => *user_id,
        }
    }
}

/// The JSON Schema of an [`Envelope`] (every event), as `docs/events.schema.json`
/// holds it.
pub fn json_schema() -> serde_json::Value {
    use utoipa::PartialSchema;
    let mut components = Vec::new();
    <Envelope as ToSchema>::schemas(&mut components);
    <Event as ToSchema>::schemas(&mut components);
    let mut defs = serde_json::Map::new();
    for (name, schema) in components {
        defs.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    defs.insert(
        "Event".into(),
        serde_json::to_value(<Event as PartialSchema>::schema()).unwrap_or_default(),
    );
    defs.insert(
        "RevokeReason".into(),
        serde_json::to_value(<RevokeReason as PartialSchema>::schema()).unwrap_or_default(),
    );
    defs.insert(
        "RequestedBy".into(),
        serde_json::to_value(<RequestedBy as PartialSchema>::schema()).unwrap_or_default(),
    );
    defs.insert(
        "Method".into(),
        serde_json::to_value(<crate::mfa::Method as PartialSchema>::schema()).unwrap_or_default(),
    );
    defs.insert(
        "Role".into(),
        serde_json::to_value(<Role as PartialSchema>::schema()).unwrap_or_default(),
    );
    // Ids are `UserId`s, which utoipa names by their type.
    defs.insert(
        "i64".into(),
        serde_json::json!({"type": "integer", "format": "int64"}),
    );
    let envelope = serde_json::to_value(<Envelope as PartialSchema>::schema()).unwrap_or_default();
    let mut text = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "natsauth security event (AUTH_EVENTS)",
        "allOf": [envelope],
        "$defs": defs,
    })
    .to_string();
    // utoipa refers to components under OpenAPI's path.
    text = text.replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_travels_flat_with_its_kind() {
        let e = Envelope {
            id: Uuid::nil(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            event: Event::PasswordResetRequested {
                user_id: 7,
                email: "a@b.co".into(),
                token_id: Uuid::nil(),
                requested_by: RequestedBy::Admin,
            },
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "password.reset_requested");
        assert_eq!(json["userId"], 7);
        assert_eq!(json["requestedBy"], "admin");
        assert_eq!(json["occurredAt"], "1970-01-01T00:00:00Z");
        assert_eq!(e.subject(), "events.auth.password.reset_requested");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn kinds_lists_every_variant() {
        let samples = [
            Event::UserCreated {
                user_id: 1,
                email: String::new(),
            },
            Event::EmailVerified {
                user_id: 1,
                email: String::new(),
            },
            Event::UserDeleted {
                user_id: 1,
                email: String::new(),
            },
        ];
        for e in samples {
            assert!(Event::KINDS.contains(&e.kind()));
        }
        assert_eq!(Event::KINDS.len(), 17);
    }

    #[test]
    fn the_committed_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.schema.json");
        let current = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "docs/events.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test -p shared`"
        );
    }
}
