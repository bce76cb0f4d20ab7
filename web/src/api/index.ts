// One function per endpoint the app uses, typed from the OpenAPI document.
import { request, requestEmpty } from "./client";
import type {
  ChangePasswordBody,
  CreatePostBody,
  Post,
  PostPage,
  ProfileBody,
  Role,
  SessionCreated,
  SessionInfo,
  SessionLoginBody,
  SignupBody,
  UpdatePostBody,
  UpdateUserBody,
  User,
  UserPage,
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

// The caller's own account.
export const getMe = () => request<User>("GET", "/api/users/me");
export const updateProfile = (body: ProfileBody) => request<User>("PATCH", "/api/users/me", { body });
export const changePassword = (body: ChangePasswordBody) =>
  requestEmpty("PUT", "/api/users/me/password", { body });

// Users (ADMIN).
export const listUsers = (page: PageQuery) =>
  request<UserPage>("GET", "/api/users", { query: { limit: page.limit, cursor: page.cursor } });
export const setRole = (id: number, role: Role) => {
  const body: UpdateUserBody = { role };
  return request<User>("PATCH", `/api/users/${id}`, { body });
};
export const deleteUser = (id: number) => requestEmpty("DELETE", `/api/users/${id}`);

// Posts.
export const listPosts = (page: PageQuery) =>
  request<PostPage>("GET", "/api/posts", { query: { limit: page.limit, cursor: page.cursor } });
export const createPost = (body: CreatePostBody) => request<Post>("POST", "/api/posts", { body });
export const updatePost = (id: number, body: UpdatePostBody) =>
  request<Post>("PATCH", `/api/posts/${id}`, { body });
export const deletePost = (id: number) => requestEmpty("DELETE", `/api/posts/${id}`);
