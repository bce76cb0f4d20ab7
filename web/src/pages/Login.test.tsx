import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import * as navigation from "../navigation";
import { errorBody, jsonReply, stubFetch, validationFailed } from "../test/http";
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
