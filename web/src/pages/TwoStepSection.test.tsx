import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { fromBase64url } from "../base64";
import { errorBody, jsonReply, mfaStatus, noContent, passkeyInfo, session, stubApi, user } from "../test/http";
import {
  ASSERTION_JSON,
  CREATION_OPTIONS,
  REQUEST_OPTIONS,
  fakeAssertion,
  fakeRegistration,
  stubPasskeys,
} from "../test/webauthn";
import { AccountPage } from "./Account";
import { ADMIN_NEEDS_FACTOR } from "./TwoStepSection";

const CODES = Array.from({ length: 10 }, (_, i) => `code${i}-abcde`);
const LAPTOP = passkeyInfo();
const OFF = mfaStatus({ totp: false, recoveryCodesLeft: 0 });

/**
 * The account page with the given MFA routes; `status` answers
 * GET /api/users/me/mfa (a function, so a test can change it).
 */
function renderAccount(
  status: () => unknown,
  routes: Record<string, (body: unknown) => Response> = {},
  { path = "/account", who = user() } = {},
) {
  window.history.replaceState(null, "", path);
  const seen = stubApi({
    "GET /api/session": () => jsonReply(200, session(who)),
    "GET /api/users/me/sessions": () => jsonReply(200, { items: [] }),
    "GET /api/users/me/mfa": () => jsonReply(200, status()),
    ...routes,
  });
  render(<AccountPage />);
  return seen;
}

const section = async () => within(await screen.findByRole("region", { name: "Two-step verification" }));
const changes = (seen: { method: string; path: string; body: unknown }[]) =>
  seen.filter((r) => r.method !== "GET").map((r) => [r.method, r.path, r.body]);

describe("the account page's two-step verification", () => {
  it("says it is off, and why an ADMIN was sent here", async () => {
    renderAccount(() => ({ ...OFF, required: true }), {}, { path: "/account?mfa=required", who: user({ role: "ADMIN" }) });
    const mfa = await section();
    expect(await mfa.findByText("Two-step verification is off.")).toBeTruthy();
    expect(mfa.getByText("Required for ADMIN accounts")).toBeTruthy();
    const banner = mfa.getByText(ADMIN_NEEDS_FACTOR);
    expect(banner.getAttribute("role")).toBe("status");
    expect(ADMIN_NEEDS_FACTOR).toBe(
      "An ADMIN account needs a second factor. Set one up below to use the back-office and ADMIN tools.",
    );
    // Nothing to make new codes from yet.
    expect(mfa.queryByRole("button", { name: "New recovery codes" })).toBeNull();
  });

  it("shows no banner unless the gateway asked for a factor", async () => {
    renderAccount(() => OFF);
    const mfa = await section();
    await mfa.findByText("Two-step verification is off.");
    expect(mfa.queryByText(ADMIN_NEEDS_FACTOR)).toBeNull();
    expect(mfa.queryByText("Required for ADMIN accounts")).toBeNull();
  });

  it("sets up an authenticator app and shows the recovery codes once", async () => {
    const qrSvg = '<svg xmlns="http://www.w3.org/2000/svg"><title>natsauth – ada@example.com</title></svg>';
    let status: unknown = OFF;
    const seen = renderAccount(() => status, {
      "POST /api/users/me/mfa/totp": () =>
        jsonReply(200, { secret: "JBSWY3DPEHPK3PXP", otpauthUri: "otpauth://totp/natsauth:ada", qrSvg }),
      "POST /api/users/me/mfa/totp/confirm": () => {
        status = mfaStatus({ totp: true, recoveryCodesLeft: 10, amr: ["pwd", "otp"] });
        return jsonReply(200, { recoveryCodes: CODES });
      },
    });
    const mfa = await section();
    fireEvent.click(await mfa.findByRole("button", { name: "Set up an authenticator app" }));

    const qr = await mfa.findByRole("img", { name: "QR code for your authenticator app" });
    const src = qr.getAttribute("src") ?? "";
    expect(src.startsWith("data:image/svg+xml;base64,")).toBe(true);
    expect(new TextDecoder().decode(fromBase64url(src.slice(src.indexOf(",") + 1)))).toBe(qrSvg);
    expect(mfa.getByText("Or type this key")).toBeTruthy();
    expect(mfa.getByText("JBSWY3DPEHPK3PXP")).toBeTruthy();

    fireEvent.change(mfa.getByLabelText("Code from the app"), { target: { value: "123456" } });
    fireEvent.click(mfa.getByRole("button", { name: "Turn on" }));

    const dialog = within(await screen.findByRole("dialog", { name: "Save these recovery codes" }));
    expect(dialog.getAllByRole("listitem").map((item) => item.textContent)).toEqual(CODES);
    fireEvent.click(dialog.getByRole("button", { name: "Done" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());

    expect(await mfa.findByText("Two-step verification is on.")).toBeTruthy();
    expect(mfa.getByText("The authenticator app is on.")).toBeTruthy();
    expect(mfa.getByText("Recovery codes left: 10")).toBeTruthy();
    expect(mfa.getByRole("button", { name: "Turn off" })).toBeTruthy();
    expect(changes(seen)).toEqual([
      ["POST", "/api/users/me/mfa/totp", undefined],
      ["POST", "/api/users/me/mfa/totp/confirm", { code: "123456" }],
    ]);
    // The codes are gone from the page.
    expect(screen.queryByText(CODES[0] ?? "")).toBeNull();
  });

  it("shows a wrong first code beside its field", async () => {
    renderAccount(() => OFF, {
      "POST /api/users/me/mfa/totp": () => jsonReply(200, { secret: "JBSWY3DPEHPK3PXP", otpauthUri: "otpauth://x", qrSvg: "<svg/>" }),
      "POST /api/users/me/mfa/totp/confirm": () =>
        jsonReply(400, errorBody(400, "validation failed", [{ field: "code", message: "must be the app's 6-digit code" }])),
    });
    const mfa = await section();
    fireEvent.click(await mfa.findByRole("button", { name: "Set up an authenticator app" }));
    fireEvent.click(await mfa.findByRole("button", { name: "Turn on" }));
    const code = mfa.getByLabelText("Code from the app");
    await waitFor(() => expect(code.getAttribute("aria-invalid")).toBe("true"));
    expect(mfa.getByText("must be the app's 6-digit code")).toBeTruthy();
  });

  it("turns the app off with the password and a code", async () => {
    let status: unknown = mfaStatus({ amr: ["pwd", "otp"] });
    const seen = renderAccount(() => status, {
      "DELETE /api/users/me/mfa/totp": () => {
        status = OFF;
        return noContent();
      },
    });
    const mfa = await section();
    fireEvent.click(await mfa.findByRole("button", { name: "Turn off" }));
    const dialog = within(await screen.findByRole("dialog", { name: "Turn off the authenticator app?" }));
    fireEvent.change(dialog.getByLabelText("Current password"), { target: { value: "correct horse" } });
    fireEvent.change(dialog.getByLabelText("Code or recovery code"), { target: { value: "654321" } });
    // No passkey on the account: none offered.
    expect(dialog.queryByRole("button", { name: "Use a passkey" })).toBeNull();
    fireEvent.click(dialog.getByRole("button", { name: "Turn off app" }));

    await mfa.findByText("The authenticator app is off.");
    await mfa.findByText("Two-step verification is off.");
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(changes(seen)).toEqual([
      ["DELETE", "/api/users/me/mfa/totp", { code: "654321", currentPassword: "correct horse" }],
    ]);
  });

  it("keeps the dialog open with the server's refusal", async () => {
    renderAccount(() => mfaStatus({ amr: ["pwd", "otp"], required: true }), {
      "DELETE /api/users/me/mfa/totp": () => jsonReply(409, errorBody(409, "an ADMIN must keep a second factor")),
    });
    const mfa = await section();
    fireEvent.click(await mfa.findByRole("button", { name: "Turn off" }));
    const dialog = within(await screen.findByRole("dialog"));
    fireEvent.change(dialog.getByLabelText("Current password"), { target: { value: "correct horse" } });
    fireEvent.change(dialog.getByLabelText("Code or recovery code"), { target: { value: "654321" } });
    fireEvent.click(dialog.getByRole("button", { name: "Turn off app" }));
    await waitFor(() => expect(dialog.getByRole("alert").textContent).toBe("an ADMIN must keep a second factor"));
  });

  it("lists passkeys, and renames one", async () => {
    let status: unknown = mfaStatus({ passkeys: [LAPTOP, passkeyInfo({ id: "k2", name: "YubiKey", lastUsedAt: "2026-01-03T09:00:00Z" })] });
    const seen = renderAccount(() => status, {
      [`PATCH /api/users/me/mfa/passkeys/${LAPTOP.id}`]: (body) => {
        const renamed = { ...LAPTOP, ...(body as object) };
        status = mfaStatus({ passkeys: [renamed] });
        return jsonReply(200, renamed);
      },
    });
    const list = within(await screen.findByRole("list", { name: "Passkeys" }));
    const items = list.getAllByRole("listitem");
    expect(items.map((item) => item.querySelector(".passkey-name")?.textContent)).toEqual(["Laptop", "YubiKey"]);
    expect(within(items[0] as HTMLElement).getByText("Never")).toBeTruthy();
    expect(within(items[1] as HTMLElement).getByText("Last used")).toBeTruthy();

    fireEvent.click(list.getByRole("button", { name: "Rename Laptop" }));
    const dialog = within(await screen.findByRole("dialog", { name: "Rename passkey" }));
    const name = dialog.getByLabelText("New name") as HTMLInputElement;
    expect(name.value).toBe("Laptop");
    fireEvent.change(name, { target: { value: " Work laptop " } });
    fireEvent.click(dialog.getByRole("button", { name: "Save name" }));

    const mfa = await section();
    await mfa.findByText("Renamed the passkey to Work laptop.");
    expect(changes(seen)).toEqual([["PATCH", `/api/users/me/mfa/passkeys/${LAPTOP.id}`, { name: "Work laptop" }]]);
  });

  it("removes a passkey with the password and a passkey", async () => {
    let status: unknown = mfaStatus({ totp: false, passkeys: [LAPTOP], amr: ["pwd", "hwk"] });
    const seen = renderAccount(() => status, {
      "POST /api/auth/step-up/passkey": () => jsonReply(200, REQUEST_OPTIONS),
      [`DELETE /api/users/me/mfa/passkeys/${LAPTOP.id}`]: () => {
        status = OFF;
        return noContent();
      },
    });
    const { get } = stubPasskeys(fakeAssertion());
    fireEvent.click(await screen.findByRole("button", { name: "Remove Laptop" }));
    const dialog = within(await screen.findByRole("dialog", { name: "Remove this passkey?" }));

    // The password first: no passkey prompt without it.
    fireEvent.click(dialog.getByRole("button", { name: "Use a passkey" }));
    const password = dialog.getByLabelText("Current password");
    await waitFor(() => expect(password.getAttribute("aria-invalid")).toBe("true"));
    expect(get).not.toHaveBeenCalled();

    fireEvent.change(password, { target: { value: "correct horse" } });
    fireEvent.click(dialog.getByRole("button", { name: "Use a passkey" }));
    const mfa = await section();
    await mfa.findByText("Removed the passkey Laptop.");
    expect(get).toHaveBeenCalledTimes(1);
    expect(changes(seen)).toEqual([
      ["POST", "/api/auth/step-up/passkey", undefined],
      ["DELETE", `/api/users/me/mfa/passkeys/${LAPTOP.id}`, { passkey: ASSERTION_JSON, currentPassword: "correct horse" }],
    ]);
  });

  it("adds a passkey, and shows the recovery codes of a first factor", async () => {
    let status: unknown = OFF;
    const seen = renderAccount(() => status, {
      "POST /api/users/me/mfa/passkeys/options": () => jsonReply(200, CREATION_OPTIONS),
      "POST /api/users/me/mfa/passkeys": (body) => {
        const added = passkeyInfo({ name: (body as { name: string }).name });
        status = mfaStatus({ totp: false, passkeys: [added], amr: ["pwd", "hwk"] });
        return jsonReply(201, { recoveryCodes: CODES, passkey: added });
      },
    });
    const { create } = stubPasskeys(fakeRegistration());
    const mfa = await section();
    fireEvent.change(await mfa.findByLabelText("Passkey name"), { target: { value: "Laptop " } });
    fireEvent.click(mfa.getByRole("button", { name: "Add a passkey" }));

    const dialog = within(await screen.findByRole("dialog", { name: "Save these recovery codes" }));
    expect(dialog.getAllByRole("listitem")).toHaveLength(10);
    fireEvent.click(dialog.getByRole("button", { name: "Done" }));
    await mfa.findByText("Added the passkey Laptop.");
    expect(await screen.findByRole("list", { name: "Passkeys" })).toBeTruthy();
    expect(create).toHaveBeenCalledTimes(1);
    const [options, register] = changes(seen);
    expect(options).toEqual(["POST", "/api/users/me/mfa/passkeys/options", undefined]);
    expect(register?.[1]).toBe("/api/users/me/mfa/passkeys");
    expect(register?.[2]).toMatchObject({ name: "Laptop", credential: { rawId: "AQID", type: "public-key" } });
  });

  it("asks for a passkey's name before the browser asks for the passkey", async () => {
    const seen = renderAccount(() => OFF);
    const { create } = stubPasskeys(fakeRegistration());
    const mfa = await section();
    fireEvent.click(await mfa.findByRole("button", { name: "Add a passkey" }));
    const name = mfa.getByLabelText("Passkey name");
    await waitFor(() => expect(name.getAttribute("aria-invalid")).toBe("true"));
    expect(create).not.toHaveBeenCalled();
    expect(changes(seen)).toEqual([]);
  });

  it("makes new recovery codes with a code", async () => {
    let status: unknown = mfaStatus({ recoveryCodesLeft: 2, amr: ["pwd", "otp"] });
    const seen = renderAccount(() => status, {
      "POST /api/users/me/mfa/recovery-codes": () => {
        status = mfaStatus({ recoveryCodesLeft: 10, amr: ["pwd", "otp"] });
        return jsonReply(200, { recoveryCodes: CODES });
      },
    });
    const mfa = await section();
    expect(await mfa.findByText("Recovery codes left: 2")).toBeTruthy();
    fireEvent.click(mfa.getByRole("button", { name: "New recovery codes" }));
    const dialog = within(await screen.findByRole("dialog", { name: "Make new recovery codes?" }));
    expect(dialog.queryByLabelText("Current password")).toBeNull();
    fireEvent.change(dialog.getByLabelText("Code or recovery code"), { target: { value: "123456" } });
    fireEvent.click(dialog.getByRole("button", { name: "Get new codes" }));

    const codes = within(await screen.findByRole("dialog", { name: "Save these recovery codes" }));
    expect(codes.getAllByRole("listitem").map((item) => item.textContent)).toEqual(CODES);
    fireEvent.click(codes.getByRole("button", { name: "Done" }));
    expect(await mfa.findByText("Recovery codes left: 10")).toBeTruthy();
    expect(changes(seen)).toEqual([["POST", "/api/users/me/mfa/recovery-codes", { code: "123456" }]]);
  });

  it("offers a step-up when this session has not used the account's factor", async () => {
    renderAccount(() => mfaStatus({ amr: ["pwd"] }));
    const mfa = await section();
    const link = await mfa.findByRole("link", { name: "Confirm it's you" });
    expect(link.getAttribute("href")).toBe("/mfa?next=%2Faccount");
  });

  it("sends an ADMIN with a factor but an unproved session to step up for the back-office", async () => {
    renderAccount(() => mfaStatus({ amr: ["pwd"], required: true }), {}, {
      path: "/account?mfa=required",
      who: user({ role: "ADMIN" }),
    });
    const mfa = await section();
    const link = await mfa.findByRole("link", { name: "Confirm it's you" });
    expect(link.getAttribute("href")).toBe("/mfa?next=%2Fdashboard%2F");
    expect(mfa.queryByText(ADMIN_NEEDS_FACTOR)).toBeNull();
  });
});
