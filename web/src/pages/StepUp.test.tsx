import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ROUTES } from "../App";
import * as navigation from "../navigation";
import { findRoute } from "../router";
import { errorBody, jsonReply, mfaStatus, passkeyInfo, session, stubApi, user } from "../test/http";
import { ASSERTION_JSON, REQUEST_OPTIONS, fakeAssertion, stubPasskeys } from "../test/webauthn";
import { StepUpPage } from "./StepUp";

const GRANT = { expiresIn: 900, amr: ["pwd", "otp"], authTime: "2026-01-01T10:00:00Z" };

function renderStepUp(path: string, routes: Record<string, (body: unknown) => Response>) {
  window.history.replaceState(null, "", path);
  const seen = stubApi({ "GET /api/session": () => jsonReply(200, session(user())), ...routes });
  const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
  render(<StepUpPage />);
  return { seen, goTo };
}

describe("the step-up page", () => {
  it("is the app's /mfa", () => {
    expect(findRoute(ROUTES, "/mfa")?.view).toBe(StepUpPage);
  });

  it("proves a code, then loads next afresh", async () => {
    const next = "/proxy/grafana/d/abc?orgId=1";
    const { seen, goTo } = renderStepUp(`/mfa?next=${encodeURIComponent(next)}`, {
      "GET /api/users/me/mfa": () => jsonReply(200, mfaStatus()),
      "POST /api/auth/step-up": () => jsonReply(200, GRANT),
    });
    expect(await screen.findByRole("heading", { level: 1, name: "Confirm it's you" })).toBeTruthy();
    fireEvent.change(await screen.findByLabelText("Code"), { target: { value: "123 456" } });
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    await waitFor(() => expect(goTo).toHaveBeenCalledWith(next));
    expect(seen.filter((r) => r.method === "POST")).toEqual([
      { method: "POST", path: "/api/auth/step-up", body: { code: "123 456" } },
    ]);
    // No passkey on the account: no passkey button.
    expect(screen.queryByRole("button", { name: "Use a passkey" })).toBeNull();
  });

  it("proves a passkey", async () => {
    const { seen, goTo } = renderStepUp("/mfa?next=%2Fdashboard%2F", {
      "GET /api/users/me/mfa": () =>
        jsonReply(
          200,
          mfaStatus({
            totp: false,
            passkeys: [passkeyInfo()],
          }),
        ),
      "POST /api/auth/step-up/passkey": () => jsonReply(200, REQUEST_OPTIONS),
      "POST /api/auth/step-up": () => jsonReply(200, GRANT),
    });
    const { get } = stubPasskeys(fakeAssertion());
    fireEvent.click(await screen.findByRole("button", { name: "Use a passkey" }));
    await waitFor(() => expect(goTo).toHaveBeenCalledWith("/dashboard/"));
    expect(get).toHaveBeenCalledTimes(1);
    expect(seen.filter((r) => r.method === "POST")).toEqual([
      { method: "POST", path: "/api/auth/step-up/passkey", body: undefined },
      { method: "POST", path: "/api/auth/step-up", body: { passkey: ASSERTION_JSON } },
    ]);
    // Recovery codes left: a code still works.
    expect(screen.getByLabelText("Code")).toBeTruthy();
  });

  it("goes to the account page when next is missing or not a path of this site", async () => {
    for (const path of ["/mfa", "/mfa?next=%2F%2Fevil.example%2F", "/mfa?next=https%3A%2F%2Fevil.example%2F"]) {
      const { goTo } = renderStepUp(path, {
        "GET /api/users/me/mfa": () => jsonReply(200, mfaStatus()),
        "POST /api/auth/step-up": () => jsonReply(200, GRANT),
      });
      fireEvent.change(await screen.findByLabelText("Code"), { target: { value: "123456" } });
      fireEvent.click(screen.getByRole("button", { name: "Verify" }));
      await waitFor(() => expect(goTo).toHaveBeenCalledWith("/account"));
      cleanup();
      goTo.mockRestore();
    }
  });

  it("shows a wrong code and stays", async () => {
    const { goTo } = renderStepUp("/mfa?next=%2Fdashboard%2F", {
      "GET /api/users/me/mfa": () => jsonReply(200, mfaStatus()),
      "POST /api/auth/step-up": () => jsonReply(403, errorBody(403, "the code or passkey is not right")),
    });
    fireEvent.change(await screen.findByLabelText("Code"), { target: { value: "000000" } });
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    const alert = await screen.findByText("the code or passkey is not right");
    expect(alert.getAttribute("role")).toBe("alert");
    expect(goTo).not.toHaveBeenCalled();
  });

  it("sends an account without a factor to set one up", async () => {
    renderStepUp("/mfa?next=%2Fproxy%2Fgrafana%2F", {
      "GET /api/users/me/mfa": () => jsonReply(200, mfaStatus({ totp: false, recoveryCodesLeft: 0 })),
    });
    const link = await screen.findByRole("link", { name: "Set up two-step verification" });
    expect(link.getAttribute("href")).toBe("/account?mfa=required");
    expect(screen.getByText(/your account has none yet/)).toBeTruthy();
    expect(screen.queryByLabelText("Code")).toBeNull();
    expect(screen.queryByRole("button", { name: "Verify" })).toBeNull();
  });
});
