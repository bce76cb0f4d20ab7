import { describe, expect, it, vi } from "vitest";
import * as navigation from "../navigation";
import { errorBody, jsonReply, stubFetch, validationFailed } from "../test/http";
import { ApiError, NETWORK_FAILURE, parseRetryAfter, request, requestEmpty } from "./client";

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    return error as ApiError;
  }
  throw new Error("expected the call to fail");
}

describe("request", () => {
  it("sends JSON with the default same-origin credentials and returns the reply", async () => {
    const fetchMock = stubFetch(jsonReply(200, { id: 1 }));
    const reply = await request<{ id: number }>("PATCH", "/api/users/me", { body: { firstname: null } });
    expect(reply).toEqual({ id: 1 });
    const [url, init] = fetchMock.mock.calls[0] ?? [];
    expect(url).toBe("/api/users/me");
    expect(init?.method).toBe("PATCH");
    expect(init?.body).toBe('{"firstname":null}');
    expect(init?.credentials).toBeUndefined();
    expect(new Headers(init?.headers).get("Content-Type")).toBe("application/json");
  });

  it("puts query parameters in the URL, leaving out empty ones", async () => {
    const fetchMock = stubFetch(jsonReply(200, { items: [], nextCursor: null }));
    await request("GET", "/api/users", { query: { limit: 2, cursor: null } });
    expect(fetchMock.mock.calls[0]?.[0]).toBe("/api/users?limit=2");
  });

  it("maps details to a field → message map", async () => {
    stubFetch(
      validationFailed([
        { field: "email", message: "must be a valid email address" },
        { field: "newPassword", message: "must be 8 to 128 characters" },
        { field: "newPassword", message: "must differ from the current one" },
      ]),
    );
    const error = await failure(request("POST", "/api/auth/signup", { body: {} }));
    expect(error.status).toBe(400);
    expect(error.message).toBe("validation failed");
    expect(error.fieldErrors).toEqual({
      email: "must be a valid email address",
      newPassword: "must be 8 to 128 characters; must differ from the current one",
    });
    expect(error.hasFieldErrors).toBe(true);
    expect(error.requestId).toBe("req-1");
  });

  it("keeps the contract's message when there are no details (a 409)", async () => {
    stubFetch(jsonReply(409, errorBody(409, "cannot remove the last ADMIN")));
    const error = await failure(requestEmpty("DELETE", "/api/users/1"));
    expect(error.status).toBe(409);
    expect(error.message).toBe("cannot remove the last ADMIN");
    expect(error.fieldErrors).toEqual({});
    expect(error.hasFieldErrors).toBe(false);
  });

  it("turns a 429 into the seconds of Retry-After", async () => {
    stubFetch(jsonReply(429, errorBody(429, "too many attempts"), { "Retry-After": "42" }));
    const error = await failure(request("POST", "/api/session", { body: {}, loginOn401: false }));
    expect(error.status).toBe(429);
    expect(error.retryAfter).toBe(42);
    expect(error.message).toBe("Too many attempts. Try again in 42 seconds.");
  });

  it("says 'later' for a 429 without Retry-After", async () => {
    stubFetch(jsonReply(429, errorBody(429, "too many attempts")));
    const error = await failure(request("POST", "/api/session", { body: {}, loginOn401: false }));
    expect(error.retryAfter).toBeNull();
    expect(error.message).toBe("Too many attempts. Try again later.");
  });

  it("copes with an error body that is not JSON", async () => {
    stubFetch(new Response("<html>Bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    const error = await failure(request("GET", "/api/users/me"));
    expect(error.status).toBe(502);
    expect(error.message).toBe("The server answered 502 Bad Gateway. Please try again.");
    expect(error.fieldErrors).toEqual({});
  });

  it("reports a network failure as 'Cannot reach the server'", async () => {
    stubFetch(new TypeError("Failed to fetch"));
    const error = await failure(request("GET", "/api/users/me"));
    expect(error.status).toBe(0);
    expect(error.message).toBe(NETWORK_FAILURE);
    expect(NETWORK_FAILURE).toBe("Cannot reach the server");
  });

  it("sends the browser to the login page on a 401, to come back here", async () => {
    window.history.replaceState(null, "", "/dashboard/posts?limit=2");
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    stubFetch(jsonReply(401, errorBody(401, "no session")));
    const error = await failure(request("GET", "/api/session"));
    expect(error.status).toBe(401);
    expect(goTo).toHaveBeenCalledWith("/login?next=%2Fdashboard%2Fposts%3Flimit%3D2");
  });

  it("shows a 401 instead when told to (a wrong password)", async () => {
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    stubFetch(jsonReply(401, errorBody(401, "invalid email or password")));
    const error = await failure(request("POST", "/api/session", { body: {}, loginOn401: false }));
    expect(error.message).toBe("invalid email or password");
    expect(goTo).not.toHaveBeenCalled();
  });

  it("returns nothing for a 204", async () => {
    stubFetch(new Response(null, { status: 204 }));
    await expect(requestEmpty("POST", "/api/session/logout")).resolves.toBeUndefined();
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("7")).toBe(7);
    expect(parseRetryAfter(" 0 ")).toBe(0);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("soon")).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});
