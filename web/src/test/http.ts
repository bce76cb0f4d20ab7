// Builds fetch replies for unit tests (the only place fetch is mocked).
import { vi } from "vitest";

export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export function errorBody(statusCode: number, message: string, details?: { field: string; message: string }[]) {
  return {
    statusCode,
    error: "Error",
    message,
    path: "/api/test",
    timestamp: "2026-01-01T00:00:00Z",
    requestId: "req-1",
    ...(details ? { details } : {}),
  };
}

/** The gateway's 400 reply to a body that fails validation, one detail a field message. */
export function validationFailed(details: { field: string; message: string }[]): Response {
  return jsonReply(400, errorBody(400, "validation failed", details));
}

/** Stubs fetch with the given replies, in order; returns the mock. */
export function stubFetch(...replies: (Response | Error)[]) {
  const fetchMock = vi.fn<typeof fetch>();
  for (const reply of replies) {
    if (reply instanceof Error) fetchMock.mockRejectedValueOnce(reply);
    else fetchMock.mockResolvedValueOnce(reply);
  }
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

/** A request as the stubbed API saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  body: unknown;
}

/**
 * Stubs fetch with a tiny API: each "METHOD /path" key answers with its
 * function's reply (a fresh Response each time); anything else is a 404.
 * Returns the requests made, in order.
 */
export function stubApi(routes: Record<string, (body: unknown) => Response>): SeenRequest[] {
  const seen: SeenRequest[] = [];
  const fetchMock = vi.fn<typeof fetch>(async (input, init) => {
    const method = init?.method ?? "GET";
    const path = String(input);
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as unknown) : undefined;
    seen.push({ method, path, body });
    const route = routes[`${method} ${path}`];
    return route ? route(body) : jsonReply(404, errorBody(404, "no route"));
  });
  vi.stubGlobal("fetch", fetchMock);
  return seen;
}

export const noContent = () => new Response(null, { status: 204 });
export const accepted = () => new Response(null, { status: 202 });

/** A `User` as the API shows it. */
export function user(fields: Partial<Record<string, unknown>> = {}) {
  return {
    id: 1,
    email: "ada@example.com",
    emailVerified: false,
    firstname: "Ada",
    lastname: "Lovelace",
    role: "USER",
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
    ...fields,
  };
}

/** `GET /api/session`'s reply for `who`. */
export function session(who: ReturnType<typeof user>) {
  return { user: who, expiresAt: "2026-02-01T00:00:00Z", tools: [] };
}

/** `GET /api/users/me/mfa`'s reply: by default an app on, in a session that has not proved it. */
export function mfaStatus(fields: Partial<Record<string, unknown>> = {}) {
  return {
    totp: true,
    passkeys: [] as unknown[],
    recoveryCodesLeft: 10,
    required: false,
    amr: ["pwd"],
    authTime: "2026-01-01T09:00:00Z",
    ...fields,
  };
}

/** One passkey as the status lists it. */
export function passkeyInfo(fields: Partial<Record<string, unknown>> = {}) {
  return {
    id: "0190c0de-0000-7000-8000-00000000000a",
    name: "Laptop",
    createdAt: "2026-01-02T09:00:00Z",
    lastUsedAt: null,
    ...fields,
  };
}
