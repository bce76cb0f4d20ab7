//! WebSocket tunnels: a byte stream between a browser and an upstream,
//! registered under its user so that it ends when that user's sessions end
//! or role changes (the notices that drop the user's assertions: logout,
//! password change, refresh-token reuse, demotion, deletion), and when the
//! gateway shuts down.
//!
//! A notice names the user, not the session, so every tunnel of the user
//! ends; one whose session is still valid (a password change keeps the
//! session that made it) reconnects and is let in again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::http::header;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use shared::user::UserId;
use tokio_util::sync::CancellationToken;

use super::settings::Route;
use crate::{AppState, error::ApiError};

/// The open tunnels, by user (one per gateway copy).
#[derive(Debug, Default, Clone)]
pub struct Tunnels(Arc<Mutex<Registry>>);

#[derive(Debug, Default)]
struct Registry {
    /// Tells registrations of one user apart from the ones made after that
    /// user's tunnels were ended.
    next_generation: u64,
    users: HashMap<UserId, Entry>,
}

#[derive(Debug)]
struct Entry {
    ended: CancellationToken,
    generation: u64,
    open: usize,
}

/// One tunnel (or a request about to become one) of a user; dropping it
/// unregisters it.
#[derive(Debug)]
pub struct Registration {
    tunnels: Tunnels,
    user: UserId,
    generation: u64,
    /// Cancelled when the user's tunnels are ended.
    pub ended: CancellationToken,
}

impl Tunnels {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a tunnel of `user`. Done before the request's assertion is
    /// looked up, so a notice handled from then on ends this tunnel too
    /// (and one handled before has dropped the assertion already).
    pub fn register(&self, user: UserId) -> Registration {
        let mut registry = self.lock();
        let generation = registry.next_generation;
        let entry = registry.users.entry(user).or_insert_with(|| Entry {
            ended: CancellationToken::new(),
            generation,
            open: 0,
        });
        entry.open += 1;
        let registration = Registration {
            tunnels: self.clone(),
            user,
            generation: entry.generation,
            ended: entry.ended.clone(),
        };
        registry.next_generation += 1;
        registration
    }

    /// Ends every tunnel of `user`; how many there were.
    pub fn end_user(&self, user: UserId) -> usize {
        let entry = self.lock().users.remove(&user);
        entry.map_or(0, |entry| {
            entry.ended.cancel();
            entry.open
        })
    }

    /// How many tunnels are registered.
    pub fn len(&self) -> usize {
        self.lock().users.values().map(|e| e.open).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.tunnels.lock();
        if let Some(entry) = registry.users.get_mut(&self.user)
            && entry.generation == self.generation
        {
            entry.open -= 1;
            if entry.open == 0 {
                registry.users.remove(&self.user);
            }
        }
    }
}

/// Tunnels the client's connection to the upstream's, which switched
/// protocols: only to a WebSocket, and only when one was asked for.
pub(super) fn open(
    state: &AppState,
    route: &Route,
    upstream: &mut hyper::Response<hyper::body::Incoming>,
    client_upgrade: Option<OnUpgrade>,
    tunnel: Option<Registration>,
) -> Result<(), ApiError> {
    let to_websocket = upstream
        .headers()
        .get(header::UPGRADE)
        .is_some_and(super::gate::is_websocket);
    let (Some(client_side), Some(tunnel), true) = (client_upgrade, tunnel, to_websocket) else {
        return Err(ApiError::BadGateway(format!(
            "{}: upstream switched protocols unasked",
            route.name
        )));
    };
    let upstream_side = hyper::upgrade::on(upstream);
    spawn(
        route.name.clone(),
        client_side,
        upstream_side,
        tunnel,
        state.proxy.closing.clone(),
    );
    Ok(())
}

/// Copies bytes both ways between the client's and the upstream's upgraded
/// connections until either side closes, the user's tunnels are ended or
/// the gateway shuts down (`closing`); then drops both connections (the
/// browser sees the WebSocket close, code 1006).
pub fn spawn(
    route: String,
    client: OnUpgrade,
    upstream: OnUpgrade,
    registration: Registration,
    closing: CancellationToken,
) {
    tokio::spawn(async move {
        let user_id = registration.user;
        tokio::select! {
            () = copy(&route, client, upstream) => {}
            () = registration.ended.cancelled() => {
                tracing::info!(route, user_id, "tunnel closed: the user's sessions or role changed");
            }
            () = closing.cancelled() => {
                tracing::info!(route, "tunnel closed: shutting down");
            }
        }
        drop(registration);
    });
}

async fn copy(route: &str, client: OnUpgrade, upstream: OnUpgrade) {
    match tokio::try_join!(client, upstream) {
        Ok((client, upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(route, error = %e, "tunnel closed");
            }
        }
        Err(e) => tracing::info!(route, error = %e, "upgrade failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_a_user_ends_that_users_tunnels_only_and_forgets_them() {
        let tunnels = Tunnels::default();
        let first = tunnels.register(1);
        let second = tunnels.register(1);
        let other = tunnels.register(2);
        assert_eq!(tunnels.len(), 3);
        assert_eq!(tunnels.end_user(1), 2);
        assert!(first.ended.is_cancelled() && second.ended.is_cancelled());
        assert!(!other.ended.is_cancelled());
        assert_eq!(tunnels.len(), 1);
        // A tunnel opened after the notice is a new one: an old one closing
        // does not unregister it.
        let reopened = tunnels.register(1);
        assert!(!reopened.ended.is_cancelled());
        drop(first);
        drop(second);
        assert_eq!(tunnels.len(), 2);
        drop(reopened);
        drop(other);
        assert!(tunnels.is_empty());
        assert_eq!(tunnels.end_user(1), 0);
    }
}
