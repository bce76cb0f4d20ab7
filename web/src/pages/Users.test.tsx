import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import * as navigation from "../navigation";
import { accepted, jsonReply, noContent, session, stubApi, user } from "../test/http";
import { UsersPage } from "./Users";

const ROOT = user({ id: 1, email: "root@example.com", role: "ADMIN", emailVerified: true });
const BOB = user({ id: 2, email: "bob@example.com", emailVerified: false });

function renderUsers(routes: Record<string, (body: unknown) => Response> = {}) {
  window.history.replaceState(null, "", "/dashboard/");
  const seen = stubApi({
    "GET /api/session": () => jsonReply(200, session(ROOT)),
    "GET /api/users": () => jsonReply(200, { items: [ROOT, BOB], nextCursor: null }),
    ...routes,
  });
  render(<UsersPage />);
  return seen;
}

async function row(email: string) {
  const header = await screen.findByRole("rowheader", { name: email });
  return within(header.closest("tr") as HTMLElement);
}

describe("the users page", () => {
  it("shows whether each address is verified", async () => {
    renderUsers();
    expect((await row("root@example.com")).getByText("Verified")).toBeTruthy();
    expect((await row("bob@example.com")).getByText("Not verified")).toBeTruthy();
  });

  it("sends a user a password reset link after confirming", async () => {
    const seen = renderUsers({ "POST /api/users/2/recover": accepted });
    fireEvent.click((await row("bob@example.com")).getByRole("button", { name: "Send reset link to bob@example.com" }));
    const dialog = await screen.findByRole("dialog", { name: "Send a password reset link?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Send link" }));
    await screen.findByText("Sent a password reset link to bob@example.com");
    expect(seen.filter((r) => r.method === "POST").map((r) => r.path)).toEqual(["/api/users/2/recover"]);
  });

  it("ends every session of a user after confirming", async () => {
    const seen = renderUsers({ "DELETE /api/users/2/sessions": noContent });
    fireEvent.click((await row("bob@example.com")).getByRole("button", { name: "End sessions of bob@example.com" }));
    const dialog = await screen.findByRole("dialog", { name: "End all sessions?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "End all sessions" }));
    await screen.findByText("Ended every session of bob@example.com");
    expect(seen.filter((r) => r.method === "DELETE").map((r) => r.path)).toEqual(["/api/users/2/sessions"]);
    // The user stays in the list.
    expect(await row("bob@example.com")).toBeTruthy();
  });

  it("goes to the login page after ending the admin's own sessions", async () => {
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    renderUsers({ "DELETE /api/users/1/sessions": noContent });
    fireEvent.click((await row("root@example.com")).getByRole("button", { name: "End sessions of root@example.com" }));
    const dialog = await screen.findByRole("dialog", { name: "End all sessions?" });
    expect(dialog.textContent).toContain("you will be logged out too");
    fireEvent.click(within(dialog).getByRole("button", { name: "End all sessions" }));
    await vi.waitFor(() => expect(goTo).toHaveBeenCalledWith("/login?next=%2Fdashboard%2F"));
  });

  it("resets a user's two-step verification after confirming", async () => {
    const seen = renderUsers({ "DELETE /api/users/2/mfa": noContent });
    fireEvent.click((await row("bob@example.com")).getByRole("button", { name: "Reset two-step of bob@example.com" }));
    const dialog = await screen.findByRole("dialog", { name: "Reset two-step verification?" });
    expect(dialog.textContent).toContain("authenticator app, passkeys, recovery codes");
    fireEvent.click(within(dialog).getByRole("button", { name: "Reset two-step" }));
    await screen.findByText("Reset two-step verification of bob@example.com");
    expect(seen.filter((r) => r.method === "DELETE").map((r) => r.path)).toEqual(["/api/users/2/mfa"]);
    expect(await row("bob@example.com")).toBeTruthy();
  });

  it("goes to the login page after resetting the admin's own two-step verification", async () => {
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    renderUsers({ "DELETE /api/users/1/mfa": noContent });
    fireEvent.click((await row("root@example.com")).getByRole("button", { name: "Reset two-step of root@example.com" }));
    const dialog = await screen.findByRole("dialog", { name: "Reset two-step verification?" });
    expect(dialog.textContent).toContain("you will be logged out too");
    fireEvent.click(within(dialog).getByRole("button", { name: "Reset two-step" }));
    await vi.waitFor(() => expect(goTo).toHaveBeenCalledWith("/login?next=%2Fdashboard%2F"));
  });
});
