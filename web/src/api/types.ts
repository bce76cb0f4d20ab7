// The contract's types, named once, from the gateway's OpenAPI document
// (`npm run gen:api` writes schema.d.ts from web/openapi.json).
import type { components } from "./schema";

type Schemas = components["schemas"];

/** `emailVerified` is spelled out here too, so the app's types hold it whatever the document's age. */
export type User = Schemas["User"] & { emailVerified: boolean };
export type Role = Schemas["Role"];
export type Post = Schemas["Post"];
export type ErrorBody = Schemas["ErrorBody"];
export type FieldError = Schemas["FieldError"];

export type SignupBody = Schemas["CreateUserRequest"];
export type SessionLoginBody = Schemas["SessionLogin"];
export type SessionCreated = Omit<Schemas["SessionCreated"], "user"> & { user: User };
/** `GET /api/session`: who is logged in in this browser. */
export type SessionInfo = Omit<Schemas["SessionInfo"], "user"> & { user: User };
export type Tool = Schemas["Tool"];
export type ProfileBody = Schemas["UpdateProfile"];
export type UpdateUserBody = Schemas["UpdateUser"];
export type ChangePasswordBody = Schemas["ChangePasswordRequest"];
export type CreatePostBody = Schemas["CreatePost"];
export type UpdatePostBody = Schemas["UpdatePost"];

/** `{items, nextCursor}`; nextCursor is null on the last page. */
export type UserPage = Omit<Schemas["Page_User"], "items"> & { items: User[] };
export type PostPage = Schemas["Page_Post"];

export const ROLES: readonly Role[] = ["USER", "ADMIN"];

// Recovery, verification and the sessions list (API.md, "Recovery,
// verification, sessions"), written as the contract states them.

/** `POST /api/auth/recover`. */
export interface RecoverBody {
  email: string;
}

/** `POST /api/auth/reset`: the token from the mail's link. */
export interface ResetPasswordBody {
  token: string;
  newPassword: string;
}

/** `POST /api/auth/verify`: the token from the mail's link. */
export interface VerifyEmailBody {
  token: string;
}

/** `POST /api/users/me/email`. */
export interface ChangeEmailBody {
  email: string;
  currentPassword: string;
}

/** One of the caller's live sessions, as `GET /api/users/me/sessions` lists it. */
export interface AccountSession {
  id: string;
  createdAt: string;
  /** The last login or refresh. */
  lastUsedAt: string;
  /** The browser family and system, e.g. "Firefox on Linux". */
  userAgent: string | null;
  /** The network at login: an IPv4 /24 or an IPv6 /48. */
  network: string | null;
  /** The session of this browser. */
  current: boolean;
}

export interface AccountSessionList {
  items: AccountSession[];
}

// The second factor: an authenticator app (TOTP) with recovery codes, and
// passkeys (WebAuthn), from the document like the types above.

/**
 * `T` with the members of `U` in place of its own: what the app relies on
 * where the document says less. A member `T` lacks is a type error, so a
 * field the document renames or drops cannot go unnoticed here.
 */
type Narrowed<T, U extends { [K in keyof U]: K extends keyof T ? unknown : never }> = Omit<T, keyof U> & U;

/** A factor a login can be completed with. */
export type MfaMethod = Schemas["Method"];

/**
 * `POST /api/session`'s 202: the password was right and a second factor is
 * next. The pending login is an HttpOnly cookie, never in the body (the
 * document's `mfaToken` is the bearer API's).
 */
export type MfaChallenge = Narrowed<Schemas["MfaChallenge"], { mfaRequired: true }>;

/** `POST /api/session`: logged in (200), or a second factor to prove (202). */
export type SessionLoginReply = SessionCreated | MfaChallenge;

// Hand-written: the document types WebAuthn's options and credentials as free objects.

/** Binary data as base64url without padding, as WebAuthn's JSON writes it. */
export type Base64Url = string;

/** A credential named in WebAuthn options (`excludeCredentials`, `allowCredentials`). */
export interface PasskeyDescriptorJson {
  type: PublicKeyCredentialType;
  id: Base64Url;
  transports?: AuthenticatorTransport[];
}

/** Options for `navigator.credentials.create()`, as the server sends them (`WebAuthnOptions`). */
export interface PasskeyCreationOptions {
  publicKey: {
    rp: PublicKeyCredentialRpEntity;
    user: { id: Base64Url; name: string; displayName: string };
    challenge: Base64Url;
    pubKeyCredParams: PublicKeyCredentialParameters[];
    timeout?: number;
    excludeCredentials?: PasskeyDescriptorJson[];
    authenticatorSelection?: AuthenticatorSelectionCriteria;
    hints?: string[];
    attestation?: AttestationConveyancePreference;
    attestationFormats?: string[];
    extensions?: AuthenticationExtensionsClientInputs;
  };
}

/** Options for `navigator.credentials.get()`, as the server sends them (`WebAuthnOptions`). */
export interface PasskeyRequestOptions {
  publicKey: {
    challenge: Base64Url;
    timeout?: number;
    rpId?: string;
    allowCredentials?: PasskeyDescriptorJson[];
    userVerification?: UserVerificationRequirement;
    hints?: string[];
    extensions?: AuthenticationExtensionsClientInputs;
  };
  mediation?: CredentialMediationRequirement;
}

/** A new passkey (`create()`'s PublicKeyCredential) as webauthn-rs reads it. */
export interface PasskeyRegistration {
  id: string;
  rawId: Base64Url;
  type: string;
  response: {
    clientDataJSON: Base64Url;
    attestationObject: Base64Url;
    transports?: string[];
  };
  extensions: Record<string, unknown>;
}

/** A passkey's answer to a challenge (`get()`'s PublicKeyCredential) as webauthn-rs reads it. */
export interface PasskeyAssertion {
  id: string;
  rawId: Base64Url;
  type: string;
  response: {
    clientDataJSON: Base64Url;
    authenticatorData: Base64Url;
    signature: Base64Url;
    userHandle: Base64Url | null;
  };
  extensions: Record<string, unknown>;
}

type Proof = Schemas["FactorProof"];

/**
 * Proof of a second factor: a code (from the app, or a recovery code) or a
 * passkey. The document has both optional; the server takes exactly one.
 */
export type FactorProof =
  | Narrowed<Proof, { code: string; passkey?: never }>
  | Narrowed<Proof, { passkey: PasskeyAssertion; code?: never }>;

/** `POST /api/session/mfa`: the pending login's second step. */
export type SessionMfaBody = Omit<Schemas["SessionMfa"], keyof Proof> & FactorProof;

/** One of the caller's passkeys. */
export type PasskeyInfo = Schemas["PasskeyInfo"];

/** `GET /api/users/me/mfa`: the caller's factors and how this session was authenticated. */
export type MfaStatus = Schemas["MfaStatus"];

/** `POST /api/users/me/mfa/totp`: a new secret, on once a code confirms it. */
export type TotpEnrolment = Schemas["TotpEnrolment"];

/** `POST /api/users/me/mfa/totp/confirm`. */
export type ConfirmTotpBody = Schemas["ConfirmTotpRequest"];

/**
 * The session's new authentication (`amr`, `authTime`). A browser session's
 * access token is in its cookie, so the body has none.
 */
export type AccessGrant = Schemas["AccessGrant"];

/** A factor turned on: recovery codes when it is the first one. */
export type FactorAdded = Schemas["FactorAdded"];

/** `POST /api/users/me/mfa/passkeys`. */
export type RegisterPasskeyBody = Narrowed<Schemas["RegisterPasskeyRequest"], { credential: PasskeyRegistration }>;

/** `PATCH /api/users/me/mfa/passkeys/{id}`. */
export type RenamePasskeyBody = Schemas["PasskeyName"];

/**
 * Turning the app off or removing a passkey: the password and a factor.
 * The document's `id` is left out: the gateway ignores it (the path names
 * the passkey).
 */
export type RemoveFactorBody = Omit<Schemas["RemoveFactorRequest"], keyof Proof | "id"> & FactorProof;

/** `POST /api/users/me/mfa/recovery-codes`: the new codes, shown once. */
export type RecoveryCodes = Schemas["RecoveryCodes"];
