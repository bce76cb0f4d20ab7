//! `auth.create_user` and `auth.get_user`: accounts.

use runtime::service::Call;
use shared::{
    User,
    auth::{CreateUserRequest, GetUserRequest},
    events::Event,
    headers::Anonymous,
};
use tracing::info;

use super::{emit, recovery::request_verification};
use crate::{
    AppState, Error,
    db::{
        throttle::{self, Key},
        users,
    },
};

/// `auth.create_user`: sign-up, with the events `user.created` and
/// `email.verification_requested` (and its token row) in the same
/// transaction. Sign-ups are counted per client address (429 over the
/// limit) before anything else. The email check before hashing
/// saves an argon2 run on the common duplicate; the unique index still
/// decides races.
pub async fn create(
    state: AppState,
    Call { client, .. }: Call<Anonymous>,
    request: CreateUserRequest,
) -> Result<User, Error> {
    if let Some(address) = client {
        let limits = &state.settings.throttle;
        let [count] = throttle::reserve(
            &state.db,
            &[Key::Signup(address)],
            limits.signup_window_secs,
        )
        .await?[..] else {
            unreachable!("one key, one count")
        };
        if count.attempts > limits.signup_max_per_address {
            return Err(Error::Throttled {
                retry_after_secs: count.retry_after_secs,
            });
        }
    }
    if users::email_taken(&state.db, &request.email).await? {
        return Err(Error::EmailTaken);
    }
    let hash = state.hasher.hash(request.password.expose()).await?;
    let mut tx = state.db.begin().await?;
    let user = users::insert_user(
        &mut *tx,
        &request.email,
        &hash,
        request.firstname.as_deref(),
        request.lastname.as_deref(),
    )
    .await?;
    let created = Event::UserCreated {
        user_id: user.id,
        email: user.email.clone(),
    };
    emit(&mut tx, created).await?;
    request_verification(&state, &mut tx, &user).await?;
    tx.commit().await?;
    info!(user_id = user.id, "user created");
    Ok(user)
}

/// `auth.get_user`: by id or by email.
pub async fn get(
    state: AppState,
    _: Call<Anonymous>,
    request: GetUserRequest,
) -> Result<User, Error> {
    let user = match request {
        GetUserRequest::Id { id } => runtime::db::users::by_id(&state.db, id).await?,
        GetUserRequest::Email { email } => users::user_by_email(&state.db, &email).await?,
    };
    user.ok_or(Error::UserNotFound)
}
