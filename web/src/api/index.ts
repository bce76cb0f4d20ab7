// One function per endpoint the app uses, typed from the OpenAPI document.
import { request, requestEmpty } from "./client";
import type {
  AccessGrant,
  AccountSessionList,
  ChangeEmailBody,
  ChangePasswordBody,
  ConfirmTotpBody,
  CreatePostBody,
  FactorAdded,
  FactorProof,
  MfaChallenge,
  MfaStatus,
  PasskeyCreationOptions,
  PasskeyInfo,
  PasskeyRequestOptions,
  Post,
  PostPage,
  ProfileBody,
  RecoverBody,
  RecoveryCodes,
  RegisterPasskeyBody,
  RemoveFactorBody,
  RenamePasskeyBody,
  ResetPasswordBody,
  Role,
  SessionCreated,
  SessionInfo,
  SessionLoginBody,
  SessionLoginReply,
  SessionMfaBody,
  SignupBody,
  TotpEnrolment,
  UpdatePostBody,
  UpdateUserBody,
  User,
  UserPage,
  VerifyEmailBody,
} from "./types";

export { ApiError, NETWORK_FAILURE, throttledMessage } from "./client";
export type * from "./types";
export { ROLES } from "./types";

export interface PageQuery {
  limit?: number | null;
  cursor?: string | null;
}

// The browser session. Logging in answers 401 for a wrong password: shown,
// not a reason to go to the login page.
export const logIn = (body: SessionLoginBody) =>
  request<SessionLoginReply>("POST", "/api/session", { body, loginOn401: false });

/** The password was right, and a second factor is next (the 202 reply). */
export function needsSecondFactor(reply: SessionLoginReply): reply is MfaChallenge {
  return "mfaRequired" in reply && reply.mfaRequired === true;
}

// A login's second step, on the pending login of the gateway's HttpOnly
// cookie. A 401 means that login is gone (expired, or too many wrong
// codes): the page starts over, it does not go to the login page.
export const logInSecondStep = (body: SessionMfaBody) =>
  request<SessionCreated>("POST", "/api/session/mfa", { body, loginOn401: false });
export const loginPasskeyOptions = () =>
  request<PasskeyRequestOptions>("POST", "/api/session/mfa/passkey", { loginOn401: false });
export const getSession = () => request<SessionInfo>("GET", "/api/session");
export const logOut = () => requestEmpty("POST", "/api/session/logout", { loginOn401: false });

export const signUp = (body: SignupBody) =>
  request<User>("POST", "/api/auth/signup", { body, loginOn401: false });

// A mail's links. Anyone may call these; a 401 is not about a session.
export const recover = (body: RecoverBody) =>
  requestEmpty("POST", "/api/auth/recover", { body, loginOn401: false });
export const resetPassword = (body: ResetPasswordBody) =>
  requestEmpty("POST", "/api/auth/reset", { body, loginOn401: false });
export const verifyEmail = (body: VerifyEmailBody) =>
  request<User>("POST", "/api/auth/verify", { body, loginOn401: false });

// The caller's own account.
export const getMe = () => request<User>("GET", "/api/users/me");
export const updateProfile = (body: ProfileBody) => request<User>("PATCH", "/api/users/me", { body });
export const changePassword = (body: ChangePasswordBody) =>
  requestEmpty("PUT", "/api/users/me/password", { body });
export const resendVerification = () => requestEmpty("POST", "/api/auth/verify/resend");
export const changeEmail = (body: ChangeEmailBody) => requestEmpty("POST", "/api/users/me/email", { body });
export const listSessions = () => request<AccountSessionList>("GET", "/api/users/me/sessions");
export const endSession = (id: string) =>
  requestEmpty("DELETE", `/api/users/me/sessions/${encodeURIComponent(id)}`);
export const endOtherSessions = () => requestEmpty("POST", "/api/users/me/sessions/end-others");

// The caller's second factors.
export const getMfaStatus = () => request<MfaStatus>("GET", "/api/users/me/mfa");
export const beginTotp = () => request<TotpEnrolment>("POST", "/api/users/me/mfa/totp");
export const confirmTotp = (body: ConfirmTotpBody) =>
  request<FactorAdded>("POST", "/api/users/me/mfa/totp/confirm", { body });
export const removeTotp = (body: RemoveFactorBody) => requestEmpty("DELETE", "/api/users/me/mfa/totp", { body });
export const passkeyCreationOptions = () =>
  request<PasskeyCreationOptions>("POST", "/api/users/me/mfa/passkeys/options");
export const registerPasskey = (body: RegisterPasskeyBody) =>
  request<FactorAdded>("POST", "/api/users/me/mfa/passkeys", { body });
export const renamePasskey = (id: string, body: RenamePasskeyBody) =>
  request<PasskeyInfo>("PATCH", `/api/users/me/mfa/passkeys/${encodeURIComponent(id)}`, { body });
export const removePasskey = (id: string, body: RemoveFactorBody) =>
  requestEmpty("DELETE", `/api/users/me/mfa/passkeys/${encodeURIComponent(id)}`, { body });
export const newRecoveryCodes = (body: FactorProof) =>
  request<RecoveryCodes>("POST", "/api/users/me/mfa/recovery-codes", { body });

// Proving a factor again in a signed-in session (a tool or a change that
// asks for it). The passkey options also serve the removals above.
export const stepUpPasskeyOptions = () => request<PasskeyRequestOptions>("POST", "/api/auth/step-up/passkey");
export const stepUp = (body: FactorProof) => request<AccessGrant>("POST", "/api/auth/step-up", { body });

// Users (ADMIN).
export const listUsers = (page: PageQuery) =>
  request<UserPage>("GET", "/api/users", { query: { limit: page.limit, cursor: page.cursor } });
export const setRole = (id: number, role: Role) => {
  const body: UpdateUserBody = { role };
  return request<User>("PATCH", `/api/users/${id}`, { body });
};
export const deleteUser = (id: number) => requestEmpty("DELETE", `/api/users/${id}`);
export const sendResetLink = (id: number) => requestEmpty("POST", `/api/users/${id}/recover`);
export const endUserSessions = (id: number) => requestEmpty("DELETE", `/api/users/${id}/sessions`);
export const resetUserMfa = (id: number) => requestEmpty("DELETE", `/api/users/${id}/mfa`);

// Posts.
export const listPosts = (page: PageQuery) =>
  request<PostPage>("GET", "/api/posts", { query: { limit: page.limit, cursor: page.cursor } });
export const createPost = (body: CreatePostBody) => request<Post>("POST", "/api/posts", { body });
export const updatePost = (id: number, body: UpdatePostBody) =>
  request<Post>("PATCH", `/api/posts/${id}`, { body });
export const deletePost = (id: number) => requestEmpty("DELETE", `/api/posts/${id}`);
