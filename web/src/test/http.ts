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
