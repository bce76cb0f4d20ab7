import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { errorBody, jsonReply, stubApi, user } from "../test/http";
import { BAD_VERIFY_LINK, EMAIL_VERIFIED, VerifyPage } from "./Verify";

const TOKEN = "dmVyaWZpY2F0aW9uLXRva2Vu";

function renderVerify(path = `/verify?token=${TOKEN}`) {
  window.history.replaceState(null, "", path);
  return render(<VerifyPage />);
}

describe("the verify page", () => {
  it("calls nothing until the button is pressed, then sends the link's token", async () => {
    const seen = stubApi({
      "POST /api/auth/verify": () => jsonReply(200, user({ email: "ada@example.org", emailVerified: true })),
    });
    renderVerify();
    await waitFor(() => expect(window.location.search).toBe(""));
    expect(seen).toEqual([]);

    fireEvent.click(screen.getByRole("button", { name: "Verify my email address" }));
    const done = await screen.findByText(EMAIL_VERIFIED);
    expect(done.closest("[role=status]")).toBeTruthy();
    expect(seen).toEqual([{ method: "POST", path: "/api/auth/verify", body: { token: TOKEN } }]);
    // An email change's token switches the address: the page shows the new one.
    expect(screen.getByText("ada@example.org")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Go to your account" }).getAttribute("href")).toBe("/account");
  });

  it("says the link is invalid or expired on a 400, and points to the account page to get another", async () => {
    stubApi({ "POST /api/auth/verify": () => jsonReply(400, errorBody(400, "invalid or expired link")) });
    renderVerify();
    fireEvent.click(screen.getByRole("button", { name: "Verify my email address" }));
    const message = await screen.findByText(BAD_VERIFY_LINK);
    expect(message.closest("[role=alert]")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Go to your account" }).getAttribute("href")).toBe("/account");
  });

  it("shows any other failure and lets the person try again", async () => {
    const replies = [jsonReply(503, errorBody(503, "service unavailable")), jsonReply(200, user({ emailVerified: true }))];
    stubApi({ "POST /api/auth/verify": () => replies.shift() ?? jsonReply(500, {}) });
    renderVerify();
    fireEvent.click(screen.getByRole("button", { name: "Verify my email address" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toBe("service unavailable"));
    fireEvent.click(screen.getByRole("button", { name: "Verify my email address" }));
    await screen.findByText(EMAIL_VERIFIED);
  });
});
