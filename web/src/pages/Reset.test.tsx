import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { errorBody, jsonReply, noContent, stubApi, validationFailed } from "../test/http";
import { BAD_RESET_LINK, PASSWORD_SET, ResetPage } from "./Reset";

const TOKEN = "dG9rZW4tZnJvbS10aGUtbWFpbA";

function renderReset(path = `/reset?token=${TOKEN}`) {
  window.history.replaceState(null, "", path);
  return render(<ResetPage />);
}

function choose(password: string, confirmation = password) {
  fireEvent.change(screen.getByLabelText("New password"), { target: { value: password } });
  fireEvent.change(screen.getByLabelText("Confirm new password"), { target: { value: confirmation } });
  fireEvent.click(screen.getByRole("button", { name: "Set new password" }));
}

describe("the reset page", () => {
  it("calls nothing when opened, and takes the token out of the address bar", async () => {
    const seen = stubApi({});
    renderReset();
    expect(screen.getByRole("heading", { level: 1, name: "Choose a new password" })).toBeTruthy();
    await waitFor(() => expect(window.location.search).toBe(""));
    expect(window.location.pathname).toBe("/reset");
    expect(seen).toEqual([]);
  });

  it("sends the link's token with the new password, then offers to log in", async () => {
    const seen = stubApi({ "POST /api/auth/reset": noContent });
    renderReset();
    await waitFor(() => expect(window.location.search).toBe(""));
    choose("a brand new passphrase");

    const done = await screen.findByText(PASSWORD_SET);
    expect(seen).toEqual([
      { method: "POST", path: "/api/auth/reset", body: { token: TOKEN, newPassword: "a brand new passphrase" } },
    ]);
    const outcome = done.closest("[role=status]");
    await waitFor(() => expect(document.activeElement).toBe(outcome));
    expect(screen.getByRole("link", { name: "Log in" }).getAttribute("href")).toBe("/login");
    expect(screen.queryByLabelText("New password")).toBeNull();
  });

  it("refuses two different passwords without asking the server", async () => {
    const seen = stubApi({ "POST /api/auth/reset": noContent });
    renderReset();
    choose("a brand new passphrase", "a brand new passphrasE");
    const confirmation = screen.getByLabelText("Confirm new password");
    await waitFor(() => expect(document.activeElement).toBe(confirmation));
    expect(confirmation.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById("reset-confirm-password-error")?.textContent).toBe("Does not match the new password.");
    expect(seen).toEqual([]);
  });

  it("says the link is invalid or expired on a 400, with a way to ask for a new one", async () => {
    stubApi({ "POST /api/auth/reset": () => jsonReply(400, errorBody(400, "invalid or expired link")) });
    renderReset();
    choose("a brand new passphrase");
    const message = await screen.findByText(BAD_RESET_LINK);
    expect(message.closest("[role=alert]")).toBeTruthy();
    expect(BAD_RESET_LINK).toBe("This link is invalid or has expired. Ask for a new one.");
    expect(screen.getByRole("link", { name: "Ask for a new link" }).getAttribute("href")).toBe("/forgot");
  });

  it("keeps a 400 about the new password beside its field", async () => {
    stubApi({
      "POST /api/auth/reset": () => validationFailed([{ field: "newPassword", message: "must be 8 to 128 characters" }]),
    });
    renderReset();
    choose("short");
    const password = screen.getByLabelText("New password");
    await waitFor(() => expect(document.activeElement).toBe(password));
    expect(document.getElementById("reset-new-password-error")?.textContent).toBe("must be 8 to 128 characters");
    expect(screen.queryByText(BAD_RESET_LINK)).toBeNull();
  });

  it("says the link is unusable when it has no token", () => {
    const seen = stubApi({});
    renderReset("/reset");
    expect(screen.getByText(BAD_RESET_LINK)).toBeTruthy();
    expect(screen.queryByLabelText("New password")).toBeNull();
    expect(seen).toEqual([]);
  });
});
