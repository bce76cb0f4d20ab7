// The one HTTP client of the app: same-origin JSON requests that either give
// the typed reply or throw an ApiError built from the contract's error body.
// The session is an HttpOnly cookie the browser sends by itself; no script
// ever sees a token.
import { currentPath, goTo, loginUrl } from "../navigation";
import type { ErrorBody } from "./types";

export const NETWORK_FAILURE = "Cannot reach the server";
export const SESSION_ENDED = "Your session has ended. Taking you to the login page…";

/** A failed call: what the server said, ready to show. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    /** The HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    message: string,
    /** Field name (camelCase, as in the request body) → what is wrong with it. */
    readonly fieldErrors: Readonly<Record<string, string>> = {},
    /** Seconds to wait, from Retry-After on a 429; null when not given. */
    readonly retryAfter: number | null = null,
    readonly requestId: string | null = null,
  ) {
    super(message);
  }

  get hasFieldErrors(): boolean {
    return Object.keys(this.fieldErrors).length > 0;
  }
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | null | undefined>;
  /**
   * A 401 means the session is gone: go to the login page and come back.
   * Off for the calls where 401 is an answer to show (logging in).
   */
  loginOn401?: boolean;
}

/** The message for a 429: when to try again. */
export function throttledMessage(retryAfter: number | null): string {
  if (retryAfter === null) return "Too many attempts. Try again later.";
  return `Too many attempts. Try again in ${retryAfter} ${retryAfter === 1 ? "second" : "seconds"}.`;
}

/** Retry-After as whole seconds from now: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number.parseInt(text, 10);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    "message" in value &&
    typeof value.message === "string"
  );
}

/** `details` as field → message; two messages for one field are joined. */
export function fieldErrorMap(details: ErrorBody["details"]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const detail of details ?? []) {
    if (typeof detail?.field !== "string" || typeof detail.message !== "string") continue;
    const previous = map[detail.field];
    map[detail.field] = previous === undefined ? detail.message : `${previous}; ${detail.message}`;
  }
  return map;
}

/** Builds the ApiError for a non-2xx reply, whatever its body. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const retryAfter = response.status === 429 ? parseRetryAfter(response.headers.get("Retry-After")) : null;
  let body: unknown = null;
  try {
    body = JSON.parse(await response.text());
  } catch {
    body = null; // Not JSON: a proxy's page, an empty body.
  }
  const requestId =
    (isErrorBody(body) && typeof body.requestId === "string" ? body.requestId : null) ??
    response.headers.get("x-request-id");
  if (response.status === 429) {
    return new ApiError(429, throttledMessage(retryAfter), {}, retryAfter, requestId);
  }
  if (isErrorBody(body)) {
    return new ApiError(response.status, body.message, fieldErrorMap(body.details), null, requestId);
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError(
    response.status,
    `The server answered ${response.status}${reason}. Please try again.`,
    {},
    null,
    requestId,
  );
}

function url(path: string, query: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

async function send(method: Method, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    // Same-origin, so the session cookie goes with it (fetch's default).
    response = await fetch(url(path, options.query), { method, headers, body });
  } catch {
    throw new ApiError(0, NETWORK_FAILURE);
  }
  if (response.ok) return response;
  if (response.status === 401 && options.loginOn401 !== false) {
    goTo(loginUrl(currentPath()));
    const error = await errorFromResponse(response);
    throw new ApiError(401, SESSION_ENDED, {}, null, error.requestId);
  }
  throw await errorFromResponse(response);
}

/** A call whose success carries a JSON body of type T. */
export async function request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await send(method, path, options);
  let data: unknown;
  try {
    data = await response.json();
  } catch {
    throw new ApiError(response.status, `The server's reply to ${method} ${path} was not JSON.`);
  }
  return data as T;
}

/** A call whose success is an empty reply (204). */
export async function requestEmpty(method: Method, path: string, options: RequestOptions = {}): Promise<void> {
  await send(method, path, options);
}
