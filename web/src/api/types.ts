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
