import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { accepted, errorBody, jsonReply, mfaStatus, noContent, session, stubApi, user } from "../test/http";
import { AccountPage } from "./Account";

const SESSIONS = {
  items: [
    {
      id: "0190c0de-0000-7000-8000-000000000002",
      createdAt: "2026-01-02T09:00:00Z",
      lastUsedAt: "2026-01-03T09:00:00Z",
      userAgent: "Firefox on Linux",
      network: "203.0.113.0/24",
      current: false,
    },
    {
      id: "0190c0de-0000-7000-8000-000000000001",
      createdAt: "2026-01-01T09:00:00Z",
      lastUsedAt: "2026-01-04T09:00:00Z",
      userAgent: "Chrome on macOS",
      network: "198.51.100.0/24",
      current: true,
    },
    {
      id: "0190c0de-0000-7000-8000-000000000003",
      createdAt: "2026-01-02T10:00:00Z",
      lastUsedAt: "2026-01-02T11:00:00Z",
      userAgent: null,
      network: null,
      current: false,
    },
  ],
};

function renderAccount(
  who = user(),
  routes: Record<string, (body: unknown) => Response> = {},
  path = "/account",
) {
  window.history.replaceState(null, "", path);
  const seen = stubApi({
    "GET /api/session": () => jsonReply(200, session(who)),
    "GET /api/users/me/sessions": () => jsonReply(200, SESSIONS),
    "GET /api/users/me/mfa": () => jsonReply(200, mfaStatus({ totp: false, recoveryCodesLeft: 0 })),
    ...routes,
  });
  render(<AccountPage />);
  return seen;
}

const sessionsList = async () => within(await screen.findByRole("list", { name: "Sessions" }));

describe("the account page's email address", () => {
  it("says why when a tool sent the person here to verify", async () => {
    renderAccount(user({ emailVerified: false }), {}, "/account?verify=required");
    expect(await screen.findByText(/The tool you opened needs a verified email address/)).toBeTruthy();
  });

  it("says nothing of a tool otherwise", async () => {
    renderAccount(user({ emailVerified: false }));
    await screen.findByText("Not verified");
    expect(screen.queryByText(/The tool you opened/)).toBeNull();
  });

  it("shows an unverified address and sends the link again", async () => {
    const seen = renderAccount(user({ emailVerified: false }), { "POST /api/auth/verify/resend": accepted });
    expect(await screen.findByText("Not verified")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Send the link again" }));
    await screen.findByText("We sent a new link to ada@example.com. It works for 24 hours.");
    expect(seen.filter((r) => r.method === "POST")).toEqual([
      { method: "POST", path: "/api/auth/verify/resend", body: undefined },
    ]);
  });

  it("takes a 409 to mean the address is verified already", async () => {
    renderAccount(user({ emailVerified: false }), {
      "POST /api/auth/verify/resend": () => jsonReply(409, errorBody(409, "email already verified")),
    });
    fireEvent.click(await screen.findByRole("button", { name: "Send the link again" }));
    await screen.findByText("Your email address is already verified.");
    expect(screen.getByText("Verified")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Send the link again" })).toBeNull();
  });

  it("shows how long to wait when sending again is throttled", async () => {
    renderAccount(user({ emailVerified: false }), {
      "POST /api/auth/verify/resend": () => jsonReply(429, errorBody(429, "too many attempts"), { "Retry-After": "60" }),
    });
    fireEvent.click(await screen.findByRole("button", { name: "Send the link again" }));
    await screen.findByText("Too many attempts. Try again in 60 seconds.");
  });

  it("offers no resend for a verified address", async () => {
    renderAccount(user({ emailVerified: true }));
    expect(await screen.findByText("Verified")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Send the link again" })).toBeNull();
  });

  it("asks for an email change with the current password and says where the links went", async () => {
    const seen = renderAccount(user({ emailVerified: true }), { "POST /api/users/me/email": accepted });
    fireEvent.change(await screen.findByLabelText("New email address"), { target: { value: " ada@example.org " } });
    fireEvent.change(screen.getByLabelText("Confirm with your password"), { target: { value: "correct horse" } });
    fireEvent.click(screen.getByRole("button", { name: "Change email address" }));
    await screen.findByText(
      "We sent a confirmation link to ada@example.org; the change takes effect when you follow it. We also told ada@example.com.",
    );
    expect(seen.find((r) => r.path === "/api/users/me/email")?.body).toEqual({
      email: "ada@example.org",
      currentPassword: "correct horse",
    });
    // The address shown is still the old one: nothing changes until the link is followed.
    expect(screen.getAllByText("ada@example.com").length).toBeGreaterThan(0);
    expect((screen.getByLabelText("Confirm with your password") as HTMLInputElement).value).toBe("");
  });
});

describe("the account page's sessions", () => {
  it("lists this device first, then the most recently used", async () => {
    renderAccount();
    const list = await sessionsList();
    const items = list.getAllByRole("listitem");
    expect(items.map((item) => item.querySelector(".session-device")?.textContent)).toEqual([
      "Chrome on macOS",
      "Firefox on Linux",
      "Unknown browser",
    ]);
    expect(within(items[0] as HTMLElement).getByText("This device")).toBeTruthy();
    expect(within(items[0] as HTMLElement).queryByRole("button")).toBeNull();
    expect(within(items[1] as HTMLElement).getByText("203.0.113.0/24")).toBeTruthy();
    expect(within(items[1] as HTMLElement).queryByText("This device")).toBeNull();
  });

  it("signs out one session after confirming", async () => {
    const id = SESSIONS.items[0]?.id ?? "";
    const seen = renderAccount(user(), { [`DELETE /api/users/me/sessions/${id}`]: noContent });
    const list = await sessionsList();
    fireEvent.click(list.getByRole("button", { name: /^Sign out Firefox on Linux, signed in / }));
    const dialog = await screen.findByRole("dialog", { name: "Sign out this session?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Sign out" }));

    await screen.findByText("Signed out Firefox on Linux.");
    expect(seen.filter((r) => r.method === "DELETE").map((r) => r.path)).toEqual([`/api/users/me/sessions/${id}`]);
    expect(list.queryByText("Firefox on Linux")).toBeNull();
    expect(list.getAllByRole("listitem")).toHaveLength(2);
  });

  it("cancelling the dialog ends nothing", async () => {
    const seen = renderAccount();
    const list = await sessionsList();
    fireEvent.click(list.getByRole("button", { name: /^Sign out Firefox on Linux/ }));
    const dialog = await screen.findByRole("dialog");
    fireEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(seen.filter((r) => r.method !== "GET")).toEqual([]);
    expect(list.getAllByRole("listitem")).toHaveLength(3);
  });

  it("signs out everywhere else, keeping this device", async () => {
    const seen = renderAccount(user(), { "POST /api/users/me/sessions/end-others": noContent });
    const list = await sessionsList();
    fireEvent.click(screen.getByRole("button", { name: "Sign out everywhere else" }));
    const dialog = await screen.findByRole("dialog", { name: "Sign out everywhere else?" });
    expect(dialog.textContent).toContain("all 2 other sessions");
    fireEvent.click(within(dialog).getByRole("button", { name: "Sign out" }));

    await screen.findByText("Signed out everywhere else.");
    expect(seen.filter((r) => r.method === "POST").map((r) => r.path)).toEqual(["/api/users/me/sessions/end-others"]);
    const items = list.getAllByRole("listitem");
    expect(items).toHaveLength(1);
    expect(within(items[0] as HTMLElement).getByText("This device")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Sign out everywhere else" })).toBeNull();
  });

  it("shows a failure and lists the sessions again", async () => {
    const id = SESSIONS.items[0]?.id ?? "";
    const seen = renderAccount(user(), {
      [`DELETE /api/users/me/sessions/${id}`]: () => jsonReply(404, errorBody(404, "session not found")),
    });
    const list = await sessionsList();
    fireEvent.click(list.getByRole("button", { name: /^Sign out Firefox on Linux/ }));
    fireEvent.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Sign out" }));
    await screen.findByText("session not found");
    await waitFor(() => expect(seen.filter((r) => r.path === "/api/users/me/sessions")).toHaveLength(2));
  });
});
