import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { errorBody, jsonReply, stubApi, validationFailed } from "../test/http";
import { ForgotPage, RESET_LINK_SENT } from "./Forgot";

function renderForgot(path = "/forgot") {
  window.history.replaceState(null, "", path);
  return render(<ForgotPage />);
}

function ask(email: string) {
  fireEvent.change(screen.getByLabelText("Email"), { target: { value: email } });
  fireEvent.click(screen.getByRole("button", { name: "Send reset link" }));
}

describe("the forgot-password page", () => {
  it("says the same thing for every accepted address, whatever the reply's body", async () => {
    // The gateway's 202 may have a body or none: the page reads neither.
    const replies = [new Response(null, { status: 202 }), jsonReply(202, {})];
    const seen = stubApi({ "POST /api/auth/recover": () => replies.shift() ?? jsonReply(500, {}) });
    renderForgot();

    ask("ada@example.com");
    const status = await screen.findByText(RESET_LINK_SENT);
    expect(status.getAttribute("role")).toBe("status");

    ask("nobody@example.com");
    await waitFor(() => expect(seen).toHaveLength(2));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe(RESET_LINK_SENT));
    expect(seen.map((r) => r.body)).toEqual([{ email: "ada@example.com" }, { email: "nobody@example.com" }]);
    expect(RESET_LINK_SENT).toBe(
      "If an account exists for that address, we sent a link to reset its password. The link works for 15 minutes.",
    );
  });

  it("shows how long to wait after a 429", async () => {
    stubApi({
      "POST /api/auth/recover": () => jsonReply(429, errorBody(429, "too many attempts"), { "Retry-After": "12" }),
    });
    renderForgot();
    ask("ada@example.com");
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("Too many attempts. Try again in 12 seconds."));
    expect(screen.getByRole("status").textContent).toBe("");
  });

  it("shows a field error beside the email field, and focuses it", async () => {
    stubApi({
      "POST /api/auth/recover": () => validationFailed([{ field: "email", message: "must be a valid email address" }]),
    });
    renderForgot();
    ask("not an address");
    const email = screen.getByLabelText("Email");
    await waitFor(() => expect(document.activeElement).toBe(email));
    expect(email.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById("forgot-email-error")?.textContent).toBe("must be a valid email address");
    expect(screen.getByRole("status").textContent).toBe("");
  });

  it("goes back to log in with the same next", () => {
    stubApi({});
    renderForgot("/forgot?next=%2Fdashboard%2F");
    expect(screen.getByRole("link", { name: "Log in" }).getAttribute("href")).toBe("/login?next=%2Fdashboard%2F");
  });
});
