//! Handing mail to the SMTP server with lettre: the message (headers, a text
//! and an HTML alternative) and the pooled async transport.

use std::time::Duration;

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::{
    settings::{SmtpSettings, Tls},
    templates::Rendered,
};

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation or
/// out-of-office replies to these mails.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Why a mail was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: the server is down, slow, or said 4xx.
    #[error("{0}")]
    Transient(String),
    /// Another try would get the same answer: a 5xx, or a recipient that is
    /// not an address.
    #[error("{0}")]
    Permanent(String),
}

/// The `Message-ID` of the mail `name` of the event `event_id`: the same for
/// every delivery of the event, so a mail sent twice is recognizable.
pub fn message_id(event_id: Uuid, name: &str, domain: &str) -> String {
    format!("<{event_id}.{name}@{domain}>")
}

/// The SMTP transport and the sender.
#[derive(Debug, Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings, from: &str) -> anyhow::Result<Self> {
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("mail.from {from:?} is not an address"))?;
        let builder = match smtp.tls {
            Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
            Tls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .context("smtp.host")?,
            Tls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).context("smtp.host")?
            }
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(Duration::from_millis(smtp.timeout_ms)));
        if let Some(username) = &smtp.username {
            let password = match &smtp.password_file {
                Some(path) => runtime::secret::from_file(path)
                    .with_context(|| format!("smtp.password_file {}", path.display()))?
                    .expose_secret()
                    .to_owned(),
                None => anyhow::bail!("smtp.username is set but smtp.password_file is not"),
            };
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The domain of the sender's address: the right side of Message-IDs.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// The mail `name` of the event `event_id` to `to`.
    pub fn message(
        &self,
        event_id: Uuid,
        name: &str,
        to: &str,
        rendered: &Rendered,
    ) -> Result<Message, SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("the recipient is not an address: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject.clone())
            .message_id(Some(message_id(event_id, name, self.domain())))
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SmtpSettings;

    fn mailer() -> Mailer {
        Mailer::new(
            &SmtpSettings {
                host: "127.0.0.1".into(),
                port: 1,
                tls: Tls::None,
                username: None,
                password_file: None,
                timeout_ms: 100,
            },
            "natsauth <no-reply@mail.example.com>",
        )
        .unwrap()
    }

    // The pooled transport lives on a tokio runtime, from its making to its
    // drop.
    #[tokio::test]
    async fn the_message_id_names_the_event_and_the_mail_at_the_senders_domain() {
        let id = Uuid::parse_str("0193a5b2-7c1e-7000-8000-000000000001").unwrap();
        assert_eq!(
            message_id(id, "verify", mailer().domain()),
            "<0193a5b2-7c1e-7000-8000-000000000001.verify@mail.example.com>"
        );
    }

    #[tokio::test]
    async fn a_message_carries_its_id_auto_submitted_and_both_bodies() {
        let id = Uuid::now_v7();
        let rendered = Rendered {
            subject: "Hello".into(),
            text: "plain words".into(),
            html: "<p>html words</p>".into(),
        };
        let message = mailer()
            .message(id, "reset", "a@example.com", &rendered)
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(
            raw.contains(&format!("Message-ID: <{id}.reset@mail.example.com>")),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("plain words") && raw.contains("<p>html words</p>"));
    }

    #[tokio::test]
    async fn a_recipient_that_is_no_address_is_a_permanent_failure() {
        let rendered = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        assert!(matches!(
            mailer().message(Uuid::now_v7(), "verify", "not an address", &rendered),
            Err(SendError::Permanent(_))
        ));
    }

    #[tokio::test]
    async fn a_server_that_is_down_is_a_transient_failure() {
        let mailer = mailer();
        let rendered = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        let message = mailer
            .message(Uuid::now_v7(), "verify", "a@example.com", &rendered)
            .unwrap();
        assert!(matches!(
            mailer.send(message).await,
            Err(SendError::Transient(_))
        ));
    }
}
