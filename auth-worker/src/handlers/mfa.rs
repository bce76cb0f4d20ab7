//! The second factor's subjects (`shared::mfa`): the second step of a
//! login, step-up, and the caller's own factors; the ADMIN's reset.
//!
//! Every check of a factor ([`check_proof`]) is throttled like a password
//! check: reserved per user and client address before it runs, so parallel
//! guesses are counted before any is checked, and slowed (never refused)
//! per user over every address. A pending login also dies after a few wrong
//! factors, so the password must be given again. What a check accepts is
//! accepted once: a TOTP step, a recovery code, a WebAuthn challenge.
//!
//! A session that has not proved a factor may not change the factors of a
//! user who has one ([`require_strong_session`]): otherwise a stolen
//! password would enrol its own factor. The first factor upgrades the
//! session that enrolled it, and a step-up the session that stepped up: a
//! new access token says so ([`AccessGrant`]).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use runtime::service::Call;
use sha2::{Digest, Sha256};
use shared::{
    Caller, Done, User,
    auth::{Empty, TokenReply, UserRequest},
    events::{Event, RevokeReason},
    headers::{Anonymous, ClientAddress},
    mfa::{
        AccessGrant, ConfirmTotpRequest, FactorAdded, FactorProof, LoginMfaRequest, Method,
        MfaChallenge, MfaStatus, PasskeyInfo, PendingLoginRequest, RecoveryCodes,
        RegisterPasskeyRequest, RemoveFactorRequest, RenamePasskeyRequest, TotpEnrolment,
        WebAuthnOptions, amr,
    },
    types::Secret,
    user::UserId,
};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};
use webauthn_rs::prelude::Passkey;

use super::{confirm_password, emit, ended, require_admin, sessions::start_session};
use crate::{
    AppState, Error,
    db::{
        mfa::{self as rows, Purpose},
        sessions,
        throttle::{self, Key},
    },
    factors::{passkeys, recovery, totp},
    tokens::SessionAuth,
};

/// Starts the pending login of `user` (its password was right): a random
/// token, of which only the hash is kept.
pub(super) async fn pending_login(
    state: &AppState,
    user: &User,
    device: &sessions::Device,
    methods: Vec<Method>,
) -> Result<MfaChallenge, Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let ttl = state.settings.mfa.pending_ttl_secs;
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(secs(ttl));
    rows::insert_pending(&state.db, &hash(&token), user.id, expires_at, device).await?;
    info!(
        user_id = user.id,
        ?methods,
        "password right: second factor asked for"
    );
    Ok(MfaChallenge {
        mfa_required: true,
        mfa_token: Some(Secret::new(token)),
        methods,
        expires_in: ttl,
    })
}

/// `auth.login_mfa`: the second step of a login. A wrong factor counts
/// against the pending login (and the throttle); the right one spends the
/// pending login and starts the session, authenticated by the password and
/// the factor.
pub async fn login_mfa(
    state: AppState,
    Call { client, origin, .. }: Call<Anonymous>,
    request: LoginMfaRequest,
) -> Result<TokenReply, Error> {
    let token_hash = hash(request.mfa_token.expose());
    let pending = rows::pending(&state.db, &token_hash)
        .await?
        .ok_or(Error::NoPendingLogin)?;
    let user = runtime::db::users::by_id(&state.db, pending.user_id)
        .await?
        .ok_or(Error::NoPendingLogin)?;
    let owner = pending_owner(&token_hash);
    let checked = check_proof(&state, &user, client, &request.proof, &owner, origin).await;
    let method = match checked {
        Ok(Some(method)) => method,
        Ok(None) | Err(Error::InvalidPasskey) => {
            rows::pending_failed(
                &state.db,
                &token_hash,
                state.settings.mfa.pending_max_failures,
            )
            .await?;
            info!(user_id = user.id, "login: wrong second factor");
            return Err(Error::WrongSecondFactor);
        }
        Err(other) => return Err(other),
    };
    let mut conn = state.db.acquire().await?;
    if !rows::take_pending(&mut conn, &token_hash).await? {
        return Err(Error::NoPendingLogin);
    }
    drop(conn);
    let device = sessions::Device {
        user_agent: pending.user_agent,
        network: pending.network,
    };
    let amr = [amr::PWD.to_owned(), method.to_owned()];
    start_session(&state, user, device, &amr).await
}

/// `auth.login_passkey_options`: a challenge for the pending login's
/// passkeys.
pub async fn login_passkey_options(
    state: AppState,
    Call { origin, .. }: Call<Anonymous>,
    request: PendingLoginRequest,
) -> Result<WebAuthnOptions, Error> {
    let token_hash = hash(request.mfa_token.expose());
    let pending = rows::pending(&state.db, &token_hash)
        .await?
        .ok_or(Error::NoPendingLogin)?;
    let owner = pending_owner(&token_hash);
    authentication_options(&state, pending.user_id, &owner, origin).await
}

/// `auth.mfa_status`: the caller's factors and how the session stands.
pub async fn status(
    state: AppState,
    Call { caller, user, .. }: Call<Caller>,
    _: Empty,
) -> Result<MfaStatus, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    let totp = rows::totp(&state.db, user.id).await?;
    let passkeys = rows::passkeys(&state.db, user.id).await?;
    let session = sessions::authentication(&state.db, &caller).await?;
    Ok(MfaStatus {
        totp: totp.is_some_and(|t| t.confirmed),
        passkeys: passkeys.iter().map(rows::PasskeyRow::info).collect(),
        recovery_codes_left: rows::recovery_codes_left(&state.db, user.id).await?,
        required: state.settings.mfa.require_for_admin && user.role == shared::Role::Admin,
        amr: session.amr,
        auth_time: session.auth_time,
    })
}

/// `auth.totp_begin`: a new secret for an app, unconfirmed until its first
/// code (a secret begun before and never confirmed is replaced).
pub async fn begin_totp(
    state: AppState,
    Call { caller, user, .. }: Call<Caller>,
    _: Empty,
) -> Result<TotpEnrolment, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    require_strong_session(&state, &caller).await?;
    if rows::totp(&state.db, user.id)
        .await?
        .is_some_and(|t| t.confirmed)
    {
        return Err(Error::TotpAlreadyOn);
    }
    let enrolment = totp::enrol(&state.settings.mfa.issuer, &user.email)?;
    let sealed = state.mfa.key.seal(user.id, &enrolment.secret)?;
    if !rows::begin_totp(&state.db, user.id, &sealed).await? {
        return Err(Error::TotpAlreadyOn);
    }
    info!(user_id = user.id, "authenticator app: set-up begun");
    Ok(TotpEnrolment {
        secret: Secret::new(enrolment.base32),
        otpauth_uri: Secret::new(enrolment.uri),
        qr_svg: enrolment.qr_svg,
    })
}

/// `auth.totp_confirm`: the app's first code turns it on.
pub async fn confirm_totp(
    state: AppState,
    Call {
        caller,
        user,
        client,
        ..
    }: Call<Caller>,
    request: ConfirmTotpRequest,
) -> Result<FactorAdded, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    require_strong_session(&state, &caller).await?;
    let row = rows::totp(&state.db, user.id)
        .await?
        .ok_or(Error::NoTotpEnrolment)?;
    if row.confirmed {
        return Err(Error::TotpAlreadyOn);
    }
    let reserved = reserve(&state, user.id, client).await?;
    let secret = state.mfa.key.open(user.id, &row.secret)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let step = totp::matching_step(&secret, request.code.expose(), now)?;
    let accepted = match step {
        Some(step) => rows::accept_step(&state.db, user.id, step, true).await?,
        None => false,
    };
    if !accepted {
        reserved.failed(&state).await?;
        return Err(Error::WrongSecondFactor);
    }
    reserved.passed(&state).await?;
    info!(user_id = user.id, "authenticator app: on");
    factor_added(&state, &caller, &user, Method::Totp, None, None).await
}

/// `auth.totp_remove`: the password and a current factor turn the app off.
pub async fn remove_totp(
    state: AppState,
    Call {
        caller,
        user,
        client,
        origin,
        ..
    }: Call<Caller>,
    request: RemoveFactorRequest,
) -> Result<Done, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    if !rows::totp(&state.db, user.id)
        .await?
        .is_some_and(|t| t.confirmed)
    {
        return Err(Error::NoSecondFactor);
    }
    prove_for_removal(&state, &caller, &user, client, origin, &request).await?;
    let mut tx = state.db.begin().await?;
    rows::delete_totp(&mut *tx, user.id).await?;
    factor_removed(&mut tx, &user, Method::Totp, None).await?;
    tx.commit().await?;
    info!(user_id = user.id, "authenticator app: off");
    Ok(Done {})
}

/// `auth.passkey_options`: options to create a passkey (none the user
/// already has).
pub async fn passkey_options(
    state: AppState,
    Call {
        caller,
        user,
        origin,
        ..
    }: Call<Caller>,
    _: Empty,
) -> Result<WebAuthnOptions, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    require_strong_session(&state, &caller).await?;
    let rp = state.mfa.relying_parties.for_origin(origin.as_deref())?;
    let existing = stored_passkeys(&state, user.id).await?;
    let keys: Vec<Passkey> = existing.into_iter().map(|(_, key)| key).collect();
    let (options, challenge) = passkeys::start_registration(&rp, &user, &keys)?;
    let owner = session_owner(&caller)?;
    rows::put_challenge(
        &state.db,
        &owner,
        Purpose::Register,
        user.id,
        &challenge,
        challenge_expiry(&state),
    )
    .await?;
    Ok(WebAuthnOptions(options))
}

/// `auth.passkey_register`: the new passkey answers the session's
/// registration challenge (taken: it answers once).
pub async fn register_passkey(
    state: AppState,
    Call {
        caller,
        user,
        origin,
        ..
    }: Call<Caller>,
    request: RegisterPasskeyRequest,
) -> Result<FactorAdded, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    require_strong_session(&state, &caller).await?;
    let rp = state.mfa.relying_parties.for_origin(origin.as_deref())?;
    let owner = session_owner(&caller)?;
    let challenge = rows::take_challenge(&state.db, &owner, Purpose::Register, user.id)
        .await?
        .ok_or(Error::InvalidPasskey)?;
    let passkey = passkeys::finish_registration(&rp, &request.credential, &challenge)?;
    let credential =
        serde_json::to_value(&passkey).map_err(|e| anyhow::anyhow!("a passkey's JSON: {e}"))?;
    let name = request.name.trim().to_owned();
    let row = rows::insert_passkey(
        &state.db,
        user.id,
        &name,
        passkey.cred_id().as_ref(),
        &credential,
    )
    .await?;
    info!(user_id = user.id, passkey = %row.id, "passkey added");
    factor_added(
        &state,
        &caller,
        &user,
        Method::Passkey,
        Some(name),
        Some(row.info()),
    )
    .await
}

/// `auth.passkey_rename`.
pub async fn rename_passkey(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: RenamePasskeyRequest,
) -> Result<PasskeyInfo, Error> {
    let row = rows::rename_passkey(&state.db, caller.id, request.id, request.name.trim()).await?;
    Ok(row.info())
}

/// `auth.passkey_remove`: the password and a current factor remove a
/// passkey.
pub async fn remove_passkey(
    state: AppState,
    Call {
        caller,
        user,
        client,
        origin,
        ..
    }: Call<Caller>,
    request: RemoveFactorRequest,
) -> Result<Done, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    let id = request.id.ok_or(Error::PasskeyNotFound)?;
    if !rows::passkeys(&state.db, user.id)
        .await?
        .iter()
        .any(|p| p.id == id)
    {
        return Err(Error::PasskeyNotFound);
    }
    prove_for_removal(&state, &caller, &user, client, origin, &request).await?;
    let mut tx = state.db.begin().await?;
    let name = rows::delete_passkey(&mut *tx, user.id, id).await?;
    factor_removed(&mut tx, &user, Method::Passkey, Some(name)).await?;
    tx.commit().await?;
    info!(user_id = user.id, passkey = %id, "passkey removed");
    Ok(Done {})
}

/// `auth.recovery_codes`: ten new codes for a factor proved now; the old
/// ones stop working.
pub async fn new_recovery_codes(
    state: AppState,
    Call {
        user,
        client,
        caller,
        origin,
        ..
    }: Call<Caller>,
    proof: FactorProof,
) -> Result<RecoveryCodes, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    if rows::factor_count(&state.db, user.id).await? == 0 {
        return Err(Error::NoSecondFactor);
    }
    let owner = session_owner(&caller)?;
    prove(&state, &user, client, &proof, &owner, origin).await?;
    let mut tx = state.db.begin().await?;
    let codes = new_recovery_codes_in(&mut tx, user.id).await?;
    tx.commit().await?;
    info!(user_id = user.id, "recovery codes replaced");
    Ok(RecoveryCodes {
        recovery_codes: codes,
    })
}

/// `auth.step_up_options`: a challenge for the caller's passkeys (a
/// step-up, or the proof a removal asks for).
pub async fn step_up_options(
    state: AppState,
    Call { caller, origin, .. }: Call<Caller>,
    _: Empty,
) -> Result<WebAuthnOptions, Error> {
    let owner = session_owner(&caller)?;
    authentication_options(&state, caller.id, &owner, origin).await
}

/// `auth.step_up`: the session proves a factor now; its `amr` gains it and
/// its `auth_time` is now, in a new access token.
pub async fn step_up(
    state: AppState,
    Call {
        caller,
        user,
        client,
        origin,
        ..
    }: Call<Caller>,
    proof: FactorProof,
) -> Result<AccessGrant, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    if rows::factor_count(&state.db, user.id).await? == 0 {
        return Err(Error::NoSecondFactor);
    }
    let owner = session_owner(&caller)?;
    let method = prove(&state, &user, client, &proof, &owner, origin).await?;
    let session = sessions::step_up(&state.db, &caller, method).await?;
    info!(user_id = user.id, session = %session.id, method, "step-up");
    grant(&state, &user, session)
}

/// `auth.reset_mfa` (ADMIN): every factor, recovery code and pending login
/// of the user goes, and the user's sessions end. The ADMIN learns nothing
/// of the factors.
pub async fn reset(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: UserRequest,
) -> Result<Done, Error> {
    require_admin(&caller)?;
    let target = runtime::db::users::by_id(&state.db, request.id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let mut tx = state.db.begin().await?;
    rows::reset(&mut tx, target.id).await?;
    let count = sessions::revoke_all_but(&mut *tx, target.id, None).await?;
    emit(
        &mut tx,
        Event::MfaReset {
            user_id: target.id,
            email: target.email.clone(),
            admin_id: caller.id,
        },
    )
    .await?;
    if count > 0 {
        let revoked = Event::SessionRevoked {
            user_id: target.id,
            session_id: None,
            count,
            reason: RevokeReason::MfaReset,
        };
        emit(&mut tx, revoked).await?;
    }
    tx.commit().await?;
    ended(&state, target.id).await;
    warn!(
        user_id = target.id,
        admin_id = caller.id,
        sessions = count,
        "second factors reset by an ADMIN"
    );
    Ok(Done {})
}

/// A factor was added: the first one brings recovery codes and upgrades
/// the session that added it (it proved the factor just now); the event
/// tells the owner.
async fn factor_added(
    state: &AppState,
    caller: &Caller,
    user: &User,
    method: Method,
    name: Option<String>,
    passkey: Option<PasskeyInfo>,
) -> Result<FactorAdded, Error> {
    let first = rows::factor_count(&state.db, user.id).await? == 1;
    let mut tx = state.db.begin().await?;
    let recovery_codes = if first {
        new_recovery_codes_in(&mut tx, user.id).await?
    } else {
        Vec::new()
    };
    let enabled = Event::MfaEnabled {
        user_id: user.id,
        email: user.email.clone(),
        method,
        name,
    };
    emit(&mut tx, enabled).await?;
    let upgraded = if first {
        let amr = match method {
            Method::Passkey => amr::HWK,
            _ => amr::OTP,
        };
        Some(sessions::step_up(&mut *tx, caller, amr).await?)
    } else {
        None
    };
    tx.commit().await?;
    let grant = upgraded.map(|s| grant(state, user, s)).transpose()?;
    Ok(FactorAdded {
        recovery_codes,
        passkey,
        grant,
    })
}

/// Ten new recovery codes for `user`, replacing any before: the codes, of
/// which only the hashes are kept.
async fn new_recovery_codes_in(
    conn: &mut sqlx::PgConnection,
    user: UserId,
) -> Result<Vec<String>, Error> {
    let codes = recovery::generate();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery::hash(c)).collect();
    rows::replace_recovery_codes(conn, user, &hashes).await?;
    Ok(codes)
}

/// A factor was removed (inside `tx`): with none left, the recovery codes
/// go too; the event tells the owner.
async fn factor_removed(
    tx: &mut sqlx::PgConnection,
    user: &User,
    method: Method,
    name: Option<String>,
) -> Result<(), Error> {
    let remaining = rows::factor_count(&mut *tx, user.id).await?;
    if remaining == 0 {
        rows::replace_recovery_codes(tx, user.id, &[]).await?;
    }
    let disabled = Event::MfaDisabled {
        user_id: user.id,
        email: user.email.clone(),
        method,
        name,
        remaining,
    };
    emit(tx, disabled).await
}

/// The password and a current factor, as a removal asks; an ADMIN bound
/// to keep a factor may not remove the last one.
async fn prove_for_removal(
    state: &AppState,
    caller: &Caller,
    user: &User,
    client: Option<ClientAddress>,
    origin: Option<String>,
    request: &RemoveFactorRequest,
) -> Result<(), Error> {
    let last = rows::factor_count(&state.db, user.id).await? <= 1;
    if last && state.settings.mfa.require_for_admin && user.role == shared::Role::Admin {
        return Err(Error::LastAdminFactor);
    }
    confirm_password(state, user.id, client, &request.current_password).await?;
    let owner = session_owner(caller)?;
    prove(state, user, client, &request.proof, &owner, origin).await?;
    Ok(())
}

/// [`check_proof`] for a signed-in user: the factor's `amr` value, or one
/// answer (403) for a wrong code, a replayed one and a passkey that does
/// not verify.
async fn prove(
    state: &AppState,
    user: &User,
    client: Option<ClientAddress>,
    proof: &FactorProof,
    owner: &str,
    origin: Option<String>,
) -> Result<&'static str, Error> {
    match check_proof(state, user, client, proof, owner, origin).await {
        Ok(Some(method)) => Ok(method),
        Ok(None) | Err(Error::InvalidPasskey) => Err(Error::WrongSecondFactor),
        Err(other) => Err(other),
    }
}

/// Checks `proof` for `user`, throttled: the factor's `amr` value when it
/// is right (and now spent: the step, the code, the challenge), `None` when
/// it is wrong. The passkey's challenge is `owner`'s.
async fn check_proof(
    state: &AppState,
    user: &User,
    client: Option<ClientAddress>,
    proof: &FactorProof,
    owner: &str,
    origin: Option<String>,
) -> Result<Option<&'static str>, Error> {
    let reserved = reserve(state, user.id, client).await?;
    let checked = match (&proof.code, &proof.passkey) {
        (Some(code), _) => check_code(state, user, code.expose()).await,
        (None, Some(assertion)) => check_passkey(state, user, assertion, owner, origin).await,
        (None, None) => Ok(None),
    };
    match checked {
        Ok(Some(method)) => {
            reserved.passed(state).await?;
            Ok(Some(method))
        }
        Ok(None) | Err(Error::InvalidPasskey) => {
            reserved.failed(state).await?;
            info!(user_id = user.id, "a second factor refused");
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// A TOTP code (its step must be after the last one accepted) or a
/// recovery code (unused; spent now, and the owner is told).
async fn check_code(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Option<&'static str>, Error> {
    if recovery::looks_like(code) {
        let mut tx = state.db.begin().await?;
        if !rows::spend_recovery_code(&mut *tx, user.id, &recovery::hash(code)).await? {
            return Ok(None);
        }
        let left = rows::recovery_codes_left(&mut *tx, user.id).await?;
        let used = Event::RecoveryCodeUsed {
            user_id: user.id,
            email: user.email.clone(),
            left,
        };
        emit(&mut tx, used).await?;
        tx.commit().await?;
        info!(user_id = user.id, left, "recovery code used");
        return Ok(Some(amr::OTP));
    }
    let Some(row) = rows::totp(&state.db, user.id)
        .await?
        .filter(|t| t.confirmed)
    else {
        return Ok(None);
    };
    let secret = state.mfa.key.open(user.id, &row.secret)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match totp::matching_step(&secret, code, now)? {
        Some(step) if rows::accept_step(&state.db, user.id, step, false).await? => {
            Ok(Some(amr::OTP))
        }
        _ => Ok(None),
    }
}

/// A passkey assertion answering `owner`'s challenge (taken: once).
async fn check_passkey(
    state: &AppState,
    user: &User,
    assertion: &serde_json::Value,
    owner: &str,
    origin: Option<String>,
) -> Result<Option<&'static str>, Error> {
    let rp = state.mfa.relying_parties.for_origin(origin.as_deref())?;
    let Some(challenge) =
        rows::take_challenge(&state.db, owner, Purpose::Authenticate, user.id).await?
    else {
        return Ok(None);
    };
    let result = passkeys::finish_authentication(&rp, assertion, &challenge)?;
    for (id, mut key) in stored_passkeys(state, user.id).await? {
        if key.update_credential(&result).is_some() {
            let credential =
                serde_json::to_value(&key).map_err(|e| anyhow::anyhow!("a passkey's JSON: {e}"))?;
            rows::passkey_used(&state.db, id, &credential).await?;
            return Ok(Some(amr::HWK));
        }
    }
    Ok(None)
}

/// Options for `user`'s passkeys, the challenge kept for `owner`.
async fn authentication_options(
    state: &AppState,
    user: UserId,
    owner: &str,
    origin: Option<String>,
) -> Result<WebAuthnOptions, Error> {
    let rp = state.mfa.relying_parties.for_origin(origin.as_deref())?;
    let keys: Vec<Passkey> = stored_passkeys(state, user)
        .await?
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    if keys.is_empty() {
        return Err(Error::NoSecondFactor);
    }
    let (options, challenge) = passkeys::start_authentication(&rp, &keys)?;
    rows::put_challenge(
        &state.db,
        owner,
        Purpose::Authenticate,
        user,
        &challenge,
        challenge_expiry(state),
    )
    .await?;
    Ok(WebAuthnOptions(options))
}

/// `user`'s passkeys as webauthn-rs reads them, with their row ids.
async fn stored_passkeys(
    state: &AppState,
    user: UserId,
) -> Result<Vec<(uuid::Uuid, Passkey)>, Error> {
    rows::passkeys(&state.db, user)
        .await?
        .into_iter()
        .map(|row| {
            serde_json::from_value(row.credential)
                .map(|key| (row.id, key))
                .map_err(|e| anyhow::anyhow!("a stored passkey does not read: {e}").into())
        })
        .collect()
}

/// A user who has a factor changes factors only from a session that proved
/// one: a password alone must not enrol an attacker's factor.
async fn require_strong_session(state: &AppState, caller: &Caller) -> Result<(), Error> {
    if rows::factor_count(&state.db, caller.id).await? == 0 {
        return Ok(());
    }
    let session = sessions::authentication(&state.db, caller).await?;
    if amr::has_second_factor(&session.amr) {
        Ok(())
    } else {
        Err(Error::StepUpRequired)
    }
}

/// A new access token for `session`, which changed how it is authenticated.
fn grant(state: &AppState, user: &User, session: SessionAuth) -> Result<AccessGrant, Error> {
    Ok(AccessGrant {
        access_token: state.tokens.issue_access_token(user, &session)?,
        expires_in: state.tokens.access_ttl_secs(),
        amr: session.amr,
        auth_time: session.auth_time,
    })
}

/// A factor check reserved against the throttle (see the module docs).
struct Reserved {
    user: UserId,
    client: Option<ClientAddress>,
}

/// Reserves a factor check of `user` from `client`: 429 past the hard limit
/// per address; past the user's own failures, a wait first.
async fn reserve(
    state: &AppState,
    user: UserId,
    client: Option<ClientAddress>,
) -> Result<Reserved, Error> {
    let window = state.settings.throttle.window_secs;
    let limits = &state.settings.mfa;
    let counts = throttle::reserve(&state.db, &[Key::Mfa(user, client)], window).await?;
    if let Some(count) = counts.first()
        && count.attempts > limits.max_attempts_per_address
    {
        return Err(Error::Throttled {
            retry_after_secs: count.retry_after_secs,
        });
    }
    if throttle::count(&state.db, Key::MfaUser(user), window).await? > limits.slowdown_after {
        let wait = state.settings.throttle.email_slowdown_ms;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
    Ok(Reserved { user, client })
}

impl Reserved {
    async fn passed(self, state: &AppState) -> Result<(), Error> {
        throttle::release(&state.db, &[Key::Mfa(self.user, self.client)]).await
    }

    async fn failed(self, state: &AppState) -> Result<(), Error> {
        let window = state.settings.throttle.window_secs;
        throttle::reserve(&state.db, &[Key::MfaUser(self.user)], window).await?;
        Ok(())
    }
}

/// What the database keeps of a pending login's token.
fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The owner of a pending login's WebAuthn challenge.
fn pending_owner(token_hash: &[u8]) -> String {
    let hex: String = token_hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("pending:{hex}")
}

/// The owner of a session's WebAuthn challenges.
fn session_owner(caller: &Caller) -> Result<String, Error> {
    let session = caller.session.ok_or(Error::InvalidRefreshToken)?;
    Ok(format!("session:{session}"))
}

fn challenge_expiry(state: &AppState) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::seconds(secs(state.settings.mfa.challenge_ttl_secs))
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 4)
}
