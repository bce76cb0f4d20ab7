// One function per endpoint the app uses, typed from the OpenAPI document.
import { request, requestEmpty } from "./client";
import type {
  AccountSessionList,
  ChangeEmailBody,
  ChangePasswordBody,
  CreatePostBody,
  Post,
  PostPage,
  ProfileBody,
  RecoverBody,
  ResetPasswordBody,
  Role,
  SessionCreated,
  SessionInfo,
  SessionLoginBody,
  SignupBody,
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
  request<SessionCreated>("POST", "/api/session", { body, loginOn401: false });
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

// Posts.
export const listPosts = (page: PageQuery) =>
  request<PostPage>("GET", "/api/posts", { query: { limit: page.limit, cursor: page.cursor } });
export const createPost = (body: CreatePostBody) => request<Post>("POST", "/api/posts", { body });
export const updatePost = (id: number, body: UpdatePostBody) =>
  request<Post>("PATCH", `/api/posts/${id}`, { body });
export const deletePost = (id: number) => requestEmpty("DELETE", `/api/posts/${id}`);
