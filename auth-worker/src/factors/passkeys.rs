//! Passkeys: webauthn-rs as the relying party. The origin and RP ID come
//! from the gateway's `session.public_origin`, which the gateway sends
//! with every passkey call (`RequestContext::origin`); one relying party
//! is built per origin and kept. A ceremony's state (its challenge) is
//! JSON that waits in `webauthn_challenges` between the options and the
//! answer, so any worker copy finishes what another began.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use webauthn_rs::{
    Webauthn, WebauthnBuilder,
    prelude::{
        AuthenticationResult, Passkey, PasskeyAuthentication, PasskeyRegistration,
        PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
    },
};

use crate::Error;

/// The relying parties, by origin.
#[derive(Default)]
pub struct RelyingParties {
    name: String,
    by_origin: Mutex<HashMap<String, Arc<Webauthn>>>,
}

impl std::fmt::Debug for RelyingParties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParties")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A user's handle in WebAuthn: a UUID made from the user id, so it is
/// stable and reveals nothing a browser did not know (no email).
pub fn user_handle(user: i64) -> Uuid {
    Uuid::from_u64_pair(0x6e61_7473_6175_7468, user as u64)
}

impl RelyingParties {
    /// Relying parties named `name` (what the browser shows).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            by_origin: Mutex::default(),
        }
    }

    /// The relying party of `origin`: its RP ID is the origin's host.
    /// `PasskeysUnavailable` without one, or when the origin has no domain
    /// name (WebAuthn takes none for an IP address).
    pub fn for_origin(&self, origin: Option<&str>) -> Result<Arc<Webauthn>, Error> {
        let origin = origin
            .map(|o| o.trim_end_matches('/'))
            .filter(|o| !o.is_empty())
            .ok_or(Error::PasskeysUnavailable)?;
        let mut cache = self
            .by_origin
            .lock()
            .map_err(|_| anyhow::anyhow!("relying party cache poisoned"))?;
        if let Some(rp) = cache.get(origin) {
            return Ok(Arc::clone(rp));
        }
        let url = Url::parse(origin).map_err(|_| Error::PasskeysUnavailable)?;
        let rp_id = url.domain().ok_or(Error::PasskeysUnavailable)?.to_owned();
        let rp = WebauthnBuilder::new(&rp_id, &url)
            .and_then(|b| b.rp_name(&self.name).build())
            .map_err(|e| {
                tracing::warn!(origin, error = %e, "no WebAuthn relying party for this origin");
                Error::PasskeysUnavailable
            })?;
        let rp = Arc::new(rp);
        cache.insert(origin.to_owned(), Arc::clone(&rp));
        Ok(rp)
    }
}

/// Options to create a passkey for `user` (never one of `existing` again),
/// and the state that checks the answer.
pub fn start_registration(
    rp: &Webauthn,
    user: &shared::User,
    existing: &[Passkey],
) -> Result<(Value, Value), Error> {
    let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
    let display = match (&user.firstname, &user.lastname) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => user.email.clone(),
    };
    let (options, state) = rp
        .start_passkey_registration(user_handle(user.id), &user.email, &display, Some(exclude))
        .map_err(|e| anyhow::anyhow!("starting a passkey registration: {e}"))?;
    Ok((json(&options)?, json(&state)?))
}

/// The passkey `credential` creates, if it answers `state`'s challenge.
pub fn finish_registration(
    rp: &Webauthn,
    credential: &Value,
    state: &Value,
) -> Result<Passkey, Error> {
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(credential.clone()).map_err(|_| Error::InvalidPasskey)?;
    let state: PasskeyRegistration =
        serde_json::from_value(state.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    rp.finish_passkey_registration(&credential, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            Error::InvalidPasskey
        })
}

/// Options to prove one of `passkeys`, and the state that checks it.
pub fn start_authentication(rp: &Webauthn, passkeys: &[Passkey]) -> Result<(Value, Value), Error> {
    let (options, state) = rp
        .start_passkey_authentication(passkeys)
        .map_err(|e| anyhow::anyhow!("starting a passkey authentication: {e}"))?;
    Ok((json(&options)?, json(&state)?))
}

/// The result of `assertion`, if it answers `state`'s challenge with one
/// of the passkeys the options allowed.
pub fn finish_authentication(
    rp: &Webauthn,
    assertion: &Value,
    state: &Value,
) -> Result<AuthenticationResult, Error> {
    let assertion: PublicKeyCredential =
        serde_json::from_value(assertion.clone()).map_err(|_| Error::InvalidPasskey)?;
    let state: PasskeyAuthentication =
        serde_json::from_value(state.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    rp.finish_passkey_authentication(&assertion, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey assertion refused");
            Error::InvalidPasskey
        })
}

fn json(value: &impl serde::Serialize) -> Result<Value, Error> {
    Ok(serde_json::to_value(value).map_err(|e| anyhow::anyhow!("{e}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_needs_a_domain_name() {
        let rps = RelyingParties::new("natsauth");
        assert!(rps.for_origin(Some("https://app.example")).is_ok());
        assert!(rps.for_origin(Some("http://localhost:8080/")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("http://127.0.0.1:8080"),
            Some("not a url"),
        ] {
            assert!(
                matches!(rps.for_origin(bad), Err(Error::PasskeysUnavailable)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_user_handle_is_stable_and_per_user() {
        assert_eq!(user_handle(7), user_handle(7));
        assert_ne!(user_handle(7), user_handle(8));
    }
}
