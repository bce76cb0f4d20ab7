//! Registers every `auth.*` endpoint with its handler.

use runtime::service::{ResolveCaller, ServiceBuilder};
use shared::{auth, mfa as factor};

use crate::{
    AppState,
    handlers::{account, keys, mfa, password, recovery, sessions, users},
};

/// The auth worker's service, ready to serve; `callers` checks the caller
/// of every endpoint that takes one (the worker's own is
/// [`runtime::db::callers::Callers`]).
pub fn builder(state: AppState, callers: impl ResolveCaller) -> ServiceBuilder<AppState> {
    let max_in_flight = state.settings.service.max_in_flight;
    ServiceBuilder::new(auth::SERVICE, env!("CARGO_PKG_VERSION"), state, callers)
        .description("Accounts, credentials and access tokens")
        .max_in_flight(max_in_flight)
        // Its key set may have changed: token verifiers fetch it again.
        .announce(auth::KEYS_CHANGED)
        .endpoint::<auth::CreateUser, _, _, _>(users::create)
        .endpoint::<auth::GetUser, _, _, _>(users::get)
        .endpoint::<auth::Login, _, _, _>(sessions::login)
        .endpoint::<auth::Jwks, _, _, _>(keys::jwks)
        .endpoint::<auth::Refresh, _, _, _>(sessions::refresh)
        .endpoint::<auth::Logout, _, _, _>(sessions::logout)
        .endpoint::<auth::ChangePassword, _, _, _>(password::change)
        .endpoint::<auth::MintAssertion, _, _, _>(keys::proxy_assertion)
        .endpoint::<auth::VerifyEmail, _, _, _>(recovery::verify_email)
        .endpoint::<auth::ResendVerification, _, _, _>(recovery::resend_verification)
        .endpoint::<auth::Recover, _, _, _>(recovery::recover)
        .endpoint::<auth::ResetPassword, _, _, _>(recovery::reset_password)
        .endpoint::<auth::AdminRecover, _, _, _>(recovery::admin_recover)
        .endpoint::<auth::IssueMailToken, _, _, _>(recovery::mail_token)
        .endpoint::<auth::ChangeEmail, _, _, _>(account::change_email)
        .endpoint::<auth::ListSessions, _, _, _>(account::list_sessions)
        .endpoint::<auth::RevokeSession, _, _, _>(account::revoke_session)
        .endpoint::<auth::EndOtherSessions, _, _, _>(account::end_other_sessions)
        .endpoint::<auth::EndUserSessions, _, _, _>(account::end_user_sessions)
        .endpoint::<factor::LoginMfa, _, _, _>(mfa::login_mfa)
        .endpoint::<factor::LoginPasskeyOptions, _, _, _>(mfa::login_passkey_options)
        .endpoint::<factor::GetMfaStatus, _, _, _>(mfa::status)
        .endpoint::<factor::BeginTotp, _, _, _>(mfa::begin_totp)
        .endpoint::<factor::ConfirmTotp, _, _, _>(mfa::confirm_totp)
        .endpoint::<factor::RemoveTotp, _, _, _>(mfa::remove_totp)
        .endpoint::<factor::PasskeyOptions, _, _, _>(mfa::passkey_options)
        .endpoint::<factor::RegisterPasskey, _, _, _>(mfa::register_passkey)
        .endpoint::<factor::RenamePasskey, _, _, _>(mfa::rename_passkey)
        .endpoint::<factor::RemovePasskey, _, _, _>(mfa::remove_passkey)
        .endpoint::<factor::NewRecoveryCodes, _, _, _>(mfa::new_recovery_codes)
        .endpoint::<factor::StepUpOptions, _, _, _>(mfa::step_up_options)
        .endpoint::<factor::StepUp, _, _, _>(mfa::step_up)
        .endpoint::<factor::ResetMfa, _, _, _>(mfa::reset)
}
