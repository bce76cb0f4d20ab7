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
// passkeys (WebAuthn). Written as the gateway's routes state them until
// openapi.json describes them.

/** A factor a login can be completed with. */
export type MfaMethod = "totp" | "recoveryCode" | "passkey";

/**
 * `POST /api/session`'s 202: the password was right and a second factor is
 * next. The pending login is an HttpOnly cookie, never in the body.
 */
export interface MfaChallenge {
  mfaRequired: true;
  methods: MfaMethod[];
  /** Seconds the pending login lasts. */
  expiresIn: number;
}

/** `POST /api/session`: logged in (200), or a second factor to prove (202). */
export type SessionLoginReply = SessionCreated | MfaChallenge;

/** Binary data as base64url without padding, as WebAuthn's JSON writes it. */
export type Base64Url = string;

/** A credential named in WebAuthn options (`excludeCredentials`, `allowCredentials`). */
export interface PasskeyDescriptorJson {
  type: PublicKeyCredentialType;
  id: Base64Url;
  transports?: AuthenticatorTransport[];
}

/** Options for `navigator.credentials.create()`, as the server sends them. */
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

/** Options for `navigator.credentials.get()`, as the server sends them. */
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

/** Proof of a second factor: a code (from the app, or a recovery code) or a passkey. */
export type FactorProof = { code: string } | { passkey: PasskeyAssertion };

/** `POST /api/session/mfa`: the pending login's second step. */
export type SessionMfaBody = FactorProof & { next?: string };

/** One of the caller's passkeys. */
export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** `GET /api/users/me/mfa`: the caller's factors and how this session was authenticated. */
export interface MfaStatus {
  /** An authenticator app is on. */
  totp: boolean;
  passkeys: PasskeyInfo[];
  recoveryCodesLeft: number;
  /** A second factor is required of this user (an ADMIN, by policy). */
  required: boolean;
  /** How this session was authenticated: "pwd", "otp", "hwk". */
  amr: string[];
  /** When this session last proved a factor (or logged in). */
  authTime: string;
}

/** `POST /api/users/me/mfa/totp`: a new secret, on once a code confirms it. */
export interface TotpEnrolment {
  /** base32, for typing into the app. */
  secret: string;
  otpauthUri: string;
  /** The QR code of otpauthUri: an SVG document. */
  qrSvg: string;
}

/** `POST /api/users/me/mfa/totp/confirm`. */
export interface ConfirmTotpBody {
  code: string;
}

/**
 * The session's new authentication (`amr`, `authTime`). A browser session's
 * access token is in its cookie, so the body has none.
 */
export interface AccessGrant {
  accessToken?: string;
  expiresIn: number;
  amr: string[];
  authTime: string;
}

/** A factor turned on: recovery codes when it is the first one (else empty). */
export interface FactorAdded {
  recoveryCodes: string[];
  passkey?: PasskeyInfo;
  grant?: AccessGrant;
}

/** `POST /api/users/me/mfa/passkeys`. */
export interface RegisterPasskeyBody {
  name: string;
  credential: PasskeyRegistration;
}

/** `PATCH /api/users/me/mfa/passkeys/{id}`. */
export interface RenamePasskeyBody {
  name: string;
}

/** Turning the app off or removing a passkey: the password and a factor. */
export type RemoveFactorBody = FactorProof & { currentPassword: string };

/** `POST /api/users/me/mfa/recovery-codes`: the new codes, shown once. */
export interface RecoveryCodes {
  recoveryCodes: string[];
}
