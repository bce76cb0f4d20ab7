// The contract's types, named once, from the gateway's OpenAPI document
// (`npm run gen:api` writes schema.d.ts from web/openapi.json).
import type { components } from "./schema";

type Schemas = components["schemas"];

export type User = Schemas["User"];
export type Role = Schemas["Role"];
export type Post = Schemas["Post"];
export type ErrorBody = Schemas["ErrorBody"];
export type FieldError = Schemas["FieldError"];

export type SignupBody = Schemas["CreateUserRequest"];
export type SessionLoginBody = Schemas["SessionLogin"];
export type SessionCreated = Schemas["SessionCreated"];
export type SessionInfo = Schemas["SessionInfo"];
export type Tool = Schemas["Tool"];
export type ProfileBody = Schemas["UpdateProfile"];
export type UpdateUserBody = Schemas["UpdateUser"];
export type ChangePasswordBody = Schemas["ChangePasswordRequest"];
export type CreatePostBody = Schemas["CreatePost"];
export type UpdatePostBody = Schemas["UpdatePost"];

/** `{items, nextCursor}`; nextCursor is null on the last page. */
export type UserPage = Schemas["Page_User"];
export type PostPage = Schemas["Page_Post"];

export const ROLES: readonly Role[] = ["USER", "ADMIN"];
