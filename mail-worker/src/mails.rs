//! Which mails an event asks for: the only place that maps event kinds to
//! mails. Events that ask for none (a sign-up without its verification
//! request, a role change, …) are acknowledged at once.

use serde_json::{Value, json};
use shared::events::{Envelope, Event, RequestedBy, TokenId};

/// The page a mail's link opens (the page POSTs the token; opening the link
/// spends nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Verify,
    Reset,
}

impl Page {
    pub fn path(self) -> &'static str {
        match self {
            Self::Verify => "/verify",
            Self::Reset => "/reset",
        }
    }
}

/// A link to be made when the mail is sent: the auth-worker turns the token
/// row into a token then (`auth.mail_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub page: Page,
    pub token_id: TokenId,
}

/// One mail an event asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// Unique among the mails of one event: part of the Message-ID and of
    /// the dead letter's id, and the `mail` label of the metrics.
    pub name: &'static str,
    /// The template's name (`templates/<locale>/<template>.*`).
    pub template: &'static str,
    pub to: String,
    pub link: Option<Link>,
    /// What the template may show besides `email`, `origin`, `occurred_at`,
    /// `link` and `expires_at`.
    pub vars: Value,
}

impl Mail {
    fn new(name: &'static str, template: &'static str, to: &str, vars: Value) -> Self {
        Self {
            name,
            template,
            to: to.to_owned(),
            link: None,
            vars,
        }
    }

    fn with_link(mut self, page: Page, token_id: TokenId) -> Self {
        self.link = Some(Link { page, token_id });
        self
    }
}

/// The mails `envelope` asks for, none for most kinds.
pub fn mails(envelope: &Envelope) -> Vec<Mail> {
    match &envelope.event {
        Event::EmailVerificationRequested {
            email, token_id, ..
        } => {
            vec![Mail::new("verify", "verify", email, json!({})).with_link(Page::Verify, *token_id)]
        }
        Event::PasswordResetRequested {
            email,
            token_id,
            requested_by,
            ..
        } => {
            let by = match requested_by {
                RequestedBy::User => "user",
                RequestedBy::Admin => "admin",
            };
            vec![
                Mail::new("reset", "reset", email, json!({ "requested_by": by }))
                    .with_link(Page::Reset, *token_id),
            ]
        }
        Event::PasswordChanged { email, .. } => vec![Mail::new(
            "password_changed",
            "password_changed",
            email,
            json!({ "how": "changed" }),
        )],
        Event::PasswordReset { email, .. } => vec![Mail::new(
            "password_changed",
            "password_changed",
            email,
            json!({ "how": "reset" }),
        )],
        Event::EmailChangeRequested {
            old_email,
            new_email,
            token_id,
            ..
        } => {
            let vars = json!({ "old_email": old_email, "new_email": new_email });
            vec![
                // To the old address, whatever the user's settings: the
                // owner learns of a takeover before it completes.
                Mail::new(
                    "email_change_notice",
                    "email_change_notice",
                    old_email,
                    vars.clone(),
                ),
                Mail::new(
                    "email_change_confirm",
                    "email_change_confirm",
                    new_email,
                    vars,
                )
                .with_link(Page::Verify, *token_id),
            ]
        }
        Event::EmailChanged {
            old_email,
            new_email,
            ..
        } => {
            let vars = json!({ "old_email": old_email, "new_email": new_email });
            vec![
                Mail::new(
                    "email_changed_old",
                    "email_changed",
                    old_email,
                    vars.clone(),
                ),
                Mail::new("email_changed_new", "email_changed", new_email, vars),
            ]
        }
        Event::SessionCreated {
            email,
            user_agent,
            network,
            new_device: true,
            ..
        } => vec![Mail::new(
            "new_sign_in",
            "new_sign_in",
            email,
            json!({ "user_agent": user_agent, "network": network }),
        )],
        Event::LoginThrottled { email, network, .. } => vec![Mail::new(
            "login_throttled",
            "login_throttled",
            email,
            json!({ "network": network }),
        )],
        Event::MfaEnabled {
            email,
            method,
            name,
            ..
        } => vec![second_factor(
            email,
            json!({ "change": "enabled", "method": method_name(*method), "name": name }),
        )],
        Event::MfaDisabled {
            email,
            method,
            name,
            remaining,
            ..
        } => vec![second_factor(
            email,
            json!({ "change": "disabled", "method": method_name(*method), "name": name,
                    "remaining": remaining }),
        )],
        Event::MfaReset { email, .. } => {
            vec![second_factor(email, json!({ "change": "reset" }))]
        }
        Event::RecoveryCodeUsed { email, left, .. } => vec![second_factor(
            email,
            json!({ "change": "recovery_code_used", "left": left }),
        )],
        Event::UserCreated { .. }
        | Event::EmailVerified { .. }
        | Event::SessionCreated { .. }
        | Event::SessionRevoked { .. }
        | Event::RoleChanged { .. }
        | Event::UserDeleted { .. } => Vec::new(),
    }
}

/// A notice that the account's second factors changed (one template,
/// worded by `change`).
fn second_factor(to: &str, vars: Value) -> Mail {
    Mail::new("second_factor", "second_factor", to, vars)
}

fn method_name(method: shared::mfa::Method) -> &'static str {
    match method {
        shared::mfa::Method::Totp => "an authenticator app",
        shared::mfa::Method::Passkey => "a passkey",
        shared::mfa::Method::RecoveryCode => "a recovery code",
    }
}

#[cfg(test)]
mod tests {
    use shared::{Role, events::RevokeReason};
    use uuid::Uuid;

    use super::*;

    fn names(event: Event) -> Vec<(&'static str, String, Option<Page>)> {
        mails(&Envelope::new(event))
            .into_iter()
            .map(|m| (m.name, m.to, m.link.map(|l| l.page)))
            .collect()
    }

    #[test]
    fn each_kind_asks_for_its_mails_and_the_rest_for_none() {
        let token_id = Uuid::now_v7();
        let a = || "a@example.com".to_owned();
        let b = || "b@example.com".to_owned();
        assert_eq!(
            names(Event::EmailVerificationRequested {
                user_id: 1,
                email: a(),
                token_id
            }),
            [("verify", a(), Some(Page::Verify))]
        );
        assert_eq!(
            names(Event::PasswordResetRequested {
                user_id: 1,
                email: a(),
                token_id,
                requested_by: RequestedBy::Admin
            }),
            [("reset", a(), Some(Page::Reset))]
        );
        assert_eq!(
            names(Event::PasswordChanged {
                user_id: 1,
                email: a()
            }),
            [("password_changed", a(), None)]
        );
        assert_eq!(
            names(Event::PasswordReset {
                user_id: 1,
                email: a()
            }),
            [("password_changed", a(), None)]
        );
        assert_eq!(
            names(Event::EmailChangeRequested {
                user_id: 1,
                old_email: a(),
                new_email: b(),
                token_id
            }),
            [
                ("email_change_notice", a(), None),
                ("email_change_confirm", b(), Some(Page::Verify))
            ]
        );
        assert_eq!(
            names(Event::EmailChanged {
                user_id: 1,
                old_email: a(),
                new_email: b()
            }),
            [
                ("email_changed_old", a(), None),
                ("email_changed_new", b(), None)
            ]
        );
        let session = |new_device| Event::SessionCreated {
            user_id: 1,
            email: a(),
            session_id: Uuid::now_v7(),
            user_agent: Some("Firefox on Linux".into()),
            network: Some("203.0.113.0/24".into()),
            new_device,
        };
        assert_eq!(names(session(true)), [("new_sign_in", a(), None)]);
        assert_eq!(names(session(false)), []);
        assert_eq!(
            names(Event::LoginThrottled {
                user_id: 1,
                email: a(),
                network: None
            }),
            [("login_throttled", a(), None)]
        );
        for silent in [
            Event::UserCreated {
                user_id: 1,
                email: a(),
            },
            Event::EmailVerified {
                user_id: 1,
                email: a(),
            },
            Event::SessionRevoked {
                user_id: 1,
                session_id: None,
                count: 2,
                reason: RevokeReason::Logout,
            },
            Event::RoleChanged {
                user_id: 1,
                email: a(),
                from: Role::User,
                to: Role::Admin,
            },
            Event::UserDeleted {
                user_id: 1,
                email: a(),
            },
        ] {
            assert_eq!(names(silent), []);
        }
    }

    #[test]
    fn the_mails_of_one_event_have_distinct_names() {
        for event in [
            Event::EmailChangeRequested {
                user_id: 1,
                old_email: "a@example.com".into(),
                new_email: "b@example.com".into(),
                token_id: Uuid::now_v7(),
            },
            Event::EmailChanged {
                user_id: 1,
                old_email: "a@example.com".into(),
                new_email: "b@example.com".into(),
            },
        ] {
            let names: Vec<_> = mails(&Envelope::new(event))
                .iter()
                .map(|m| m.name)
                .collect();
            assert_ne!(names[0], names[1]);
        }
    }
}
