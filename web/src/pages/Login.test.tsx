import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import * as navigation from "../navigation";
import { errorBody, jsonReply, stubApi, stubFetch, user, validationFailed } from "../test/http";
import { ASSERTION_JSON, REQUEST_OPTIONS, fakeAssertion, refused, stubPasskeys } from "../test/webauthn";
import { PASSKEY_CANCELLED } from "../webauthn";
import { LoginPage } from "./Login";

function fillIn(label: string, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

function renderLogin(path = "/login") {
  window.history.replaceState(null, "", path);
  return render(<LoginPage />);
}

describe("the login page", () => {
  it("shows each field error beside its field and focuses the first invalid field", async () => {
    stubFetch(
      validationFailed([
        // The server's order is not the page's: focus follows the page.
        { field: "password", message: "must not be empty" },
        { field: "email", message: "must be a valid email address" },
      ]),
    );
    renderLogin();
    fillIn("Email", "not-an-email");
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));

    const email = screen.getByLabelText("Email");
    const password = screen.getByLabelText("Password");
    await waitFor(() => expect(document.activeElement).toBe(email));

    expect(email.getAttribute("aria-invalid")).toBe("true");
    expect(password.getAttribute("aria-invalid")).toBe("true");
    const emailError = document.getElementById(email.getAttribute("aria-describedby") ?? "");
    const passwordError = document.getElementById(password.getAttribute("aria-describedby") ?? "");
    expect(emailError?.textContent).toBe("must be a valid email address");
    expect(passwordError?.textContent).toBe("must not be empty");
    // Field errors are beside the fields, not in the alert.
    expect(screen.getByRole("alert").textContent).toBe("");
  });

  it("puts a failure that names no field in the alert, and focuses it", async () => {
    stubFetch(jsonReply(401, errorBody(401, "invalid email or password")));
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    renderLogin();
    fillIn("Email", "ada@example.com");
    fillIn("Password", "wrong password");
    fireEvent.submit(screen.getByLabelText("Password"));

    const alert = await screen.findByText("invalid email or password");
    expect(alert.getAttribute("role")).toBe("alert");
    await waitFor(() => expect(document.activeElement).toBe(alert));
    expect(screen.getByLabelText("Email").getAttribute("aria-invalid")).toBeNull();
    expect(goTo).not.toHaveBeenCalled(); // A wrong password is shown, not a redirect.
  });

  it("shows how long to wait after a 429", async () => {
    stubFetch(jsonReply(429, errorBody(429, "too many attempts"), { "Retry-After": "30" }));
    renderLogin();
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("Too many attempts. Try again in 30 seconds."));
  });

  it("sends next as given and follows the server's redirectTo", async () => {
    const fetchMock = stubFetch(
      jsonReply(200, {
        user: {
          id: 1,
          email: "ada@example.com",
          firstname: null,
          lastname: null,
          role: "ADMIN",
          createdAt: "2026-01-01T00:00:00Z",
          updatedAt: "2026-01-01T00:00:00Z",
        },
        redirectTo: "/dashboard/posts",
      }),
    );
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    renderLogin("/login?next=%2Fdashboard%2Fposts");
    fillIn("Email", "ada@example.com");
    fillIn("Password", "correct horse");
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));

    await waitFor(() => expect(goTo).toHaveBeenCalledWith("/dashboard/posts"));
    const [url, init] = fetchMock.mock.calls[0] ?? [];
    expect(url).toBe("/api/session");
    expect(init?.method).toBe("POST");
    expect(JSON.parse(String(init?.body))).toEqual({
      email: "ada@example.com",
      password: "correct horse",
      next: "/dashboard/posts",
    });
    // The button stays disabled while the browser leaves.
    expect(screen.getByRole("button", { name: "Log in" }).getAttribute("aria-disabled")).toBe("true");
  });

  it("links to the forgot-password page, keeping next", () => {
    renderLogin("/login?next=%2Faccount");
    expect(screen.getByRole("link", { name: "Forgot password?" }).getAttribute("href")).toBe("/forgot?next=%2Faccount");
  });

  it("links to sign-up", () => {
    renderLogin();
    expect(screen.getByRole("heading", { level: 1, name: "Log in" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Create an account" }).getAttribute("href")).toBe("/signup");
  });
});

/** `POST /api/session`'s 202 for an account with a second factor. */
const challenge = (methods: string[]) => () => jsonReply(202, { mfaRequired: true, methods, expiresIn: 300 });

async function passwordThenSecondStep(path = "/login") {
  renderLogin(path);
  fillIn("Email", "ada@example.com");
  fillIn("Password", "correct horse");
  fireEvent.click(screen.getByRole("button", { name: "Log in" }));
  await screen.findByRole("heading", { level: 1, name: "Two-step verification" });
}

describe("the login page's second step", () => {
  it("asks for a code after the password, and follows redirectTo out of the app", async () => {
    const seen = stubApi({
      "POST /api/session": challenge(["totp", "recoveryCode", "passkey"]),
      "POST /api/session/mfa": () => jsonReply(200, { user: user(), redirectTo: "/proxy/grafana/?orgId=1" }),
    });
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    await passwordThenSecondStep("/login?next=%2Fproxy%2Fgrafana%2F%3ForgId%3D1");

    const code = screen.getByLabelText("Code");
    expect(document.activeElement).toBe(code);
    // An app's code or a recovery code: text, filled from a one-time code.
    expect(code.getAttribute("autocomplete")).toBe("one-time-code");
    expect(code.getAttribute("inputmode")).toBe("text");
    expect(screen.queryByLabelText("Password")).toBeNull();
    expect(screen.getByRole("button", { name: "Use a passkey" })).toBeTruthy();

    fillIn("Code", " k7f2m-9qx4t ");
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    await waitFor(() => expect(goTo).toHaveBeenCalledWith("/proxy/grafana/?orgId=1"));
    expect(seen.map((r) => [r.method, r.path, r.body])).toEqual([
      ["POST", "/api/session", { email: "ada@example.com", password: "correct horse", next: "/proxy/grafana/?orgId=1" }],
      ["POST", "/api/session/mfa", { code: "k7f2m-9qx4t", next: "/proxy/grafana/?orgId=1" }],
    ]);
    expect(screen.getByRole("button", { name: "Verify" }).getAttribute("aria-disabled")).toBe("true");
  });

  it("logs in with a passkey", async () => {
    const seen = stubApi({
      "POST /api/session": challenge(["passkey", "recoveryCode"]),
      "POST /api/session/mfa/passkey": () => jsonReply(200, REQUEST_OPTIONS),
      "POST /api/session/mfa": () => jsonReply(200, { user: user(), redirectTo: "/account" }),
    });
    const { get } = stubPasskeys(fakeAssertion());
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    await passwordThenSecondStep();
    // No app: the field takes a recovery code only.
    expect(screen.getByText("One of your recovery codes.")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Use a passkey" }));
    await waitFor(() => expect(goTo).toHaveBeenCalledWith("/account"));
    expect(get).toHaveBeenCalledTimes(1);
    expect(seen.slice(1).map((r) => [r.method, r.path, r.body])).toEqual([
      ["POST", "/api/session/mfa/passkey", undefined],
      ["POST", "/api/session/mfa", { passkey: ASSERTION_JSON }],
    ]);
  });

  it("offers no passkey to an account without one", async () => {
    stubApi({ "POST /api/session": challenge(["totp", "recoveryCode"]) });
    await passwordThenSecondStep();
    expect(screen.getByLabelText("Code")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Use a passkey" })).toBeNull();
  });

  it("shows a refused code beside the field and stays on the step", async () => {
    stubApi({
      "POST /api/session": challenge(["totp"]),
      "POST /api/session/mfa": () => validationFailed([{ field: "code", message: "must be a 6-digit code or a recovery code" }]),
    });
    await passwordThenSecondStep();
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));
    const code = screen.getByLabelText("Code");
    await waitFor(() => expect(code.getAttribute("aria-invalid")).toBe("true"));
    expect(document.getElementById(code.getAttribute("aria-describedby")?.split(" ").pop() ?? "")?.textContent).toBe(
      "must be a 6-digit code or a recovery code",
    );
    expect(document.activeElement).toBe(code);
  });

  it("says so when the passkey was not used, and stays on the step", async () => {
    stubApi({
      "POST /api/session": challenge(["passkey"]),
      "POST /api/session/mfa/passkey": () => jsonReply(200, REQUEST_OPTIONS),
    });
    const { get } = stubPasskeys();
    get.mockRejectedValueOnce(refused("NotAllowedError"));
    await passwordThenSecondStep();
    // A passkey only: no code field, the button has the focus.
    expect(screen.queryByLabelText("Code")).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole("button", { name: "Use a passkey" }));
    fireEvent.click(screen.getByRole("button", { name: "Use a passkey" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe(PASSKEY_CANCELLED));
    expect(screen.getByRole("heading", { level: 1, name: "Two-step verification" })).toBeTruthy();
  });

  it("goes back to the password when the pending login is gone", async () => {
    stubApi({
      "POST /api/session": challenge(["totp", "recoveryCode"]),
      "POST /api/session/mfa": () => jsonReply(401, errorBody(401, "login expired: enter your email and password again")),
    });
    const goTo = vi.spyOn(navigation, "goTo").mockImplementation(() => {});
    await passwordThenSecondStep();
    fillIn("Code", "123456");
    fireEvent.click(screen.getByRole("button", { name: "Verify" }));

    await screen.findByRole("heading", { level: 1, name: "Log in" });
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toBe("login expired: enter your email and password again");
    await waitFor(() => expect(document.activeElement).toBe(alert));
    expect((screen.getByLabelText("Email") as HTMLInputElement).value).toBe("ada@example.com");
    expect((screen.getByLabelText("Password") as HTMLInputElement).value).toBe("");
    expect(goTo).not.toHaveBeenCalled(); // The page starts over by itself; the browser stays.
  });

  it("starts over when asked", async () => {
    stubApi({ "POST /api/session": challenge(["totp"]) });
    await passwordThenSecondStep();
    fireEvent.click(screen.getByRole("button", { name: "Start over" }));
    await screen.findByRole("heading", { level: 1, name: "Log in" });
    expect(screen.getByRole("alert").textContent).toBe("");
  });
});
