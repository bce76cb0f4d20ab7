// A browser's WebAuthn for unit tests: jsdom has none. The credentials are
// plain objects shaped like PublicKeyCredential, with known bytes.
import { type Mock, onTestFinished, vi } from "vitest";
import type { PasskeyCreationOptions, PasskeyRequestOptions } from "../api/types";

export const bytes = (...values: number[]) => new Uint8Array(values).buffer;
export const text = (value: string) => new TextEncoder().encode(value).buffer;

type CredentialsCall = (options: CredentialCreationOptions & CredentialRequestOptions) => Promise<Credential | null>;

/**
 * Gives the test a navigator.credentials whose create() and get() are the
 * mocks returned (each answering `credential` unless told otherwise).
 */
export function stubPasskeys(credential: unknown = null): { create: Mock<CredentialsCall>; get: Mock<CredentialsCall> } {
  const create = vi.fn<CredentialsCall>(async () => credential as Credential);
  const get = vi.fn<CredentialsCall>(async () => credential as Credential);
  vi.stubGlobal("PublicKeyCredential", class PublicKeyCredential {});
  Object.defineProperty(navigator, "credentials", { configurable: true, value: { create, get } });
  onTestFinished(() => {
    delete (navigator as { credentials?: unknown }).credentials;
  });
  return { create, get };
}

/** A DOMException as the browser throws it (NotAllowedError when the person cancels). */
export const refused = (name: string) => new DOMException("refused", name);

/** `create()`'s answer. */
export function fakeRegistration(extensions: Record<string, unknown> = { credProps: { rk: true } }) {
  return {
    id: "AQID",
    rawId: bytes(1, 2, 3),
    type: "public-key",
    response: {
      clientDataJSON: text('{"type":"webauthn.create"}'),
      attestationObject: bytes(0xa3, 0x63, 0x66, 0x6d, 0x74),
      getTransports: () => ["internal", "hybrid"],
    },
    getClientExtensionResults: () => extensions,
  };
}

/** `get()`'s answer. */
export function fakeAssertion(userHandle: ArrayBuffer | null = bytes(0xfb, 0xff)) {
  return {
    id: "AQID",
    rawId: bytes(1, 2, 3),
    type: "public-key",
    response: {
      clientDataJSON: text('{"type":"webauthn.get"}'),
      authenticatorData: bytes(0x49, 0x96, 0x0d),
      signature: bytes(0x30, 0x45, 0x02),
      userHandle,
    },
    getClientExtensionResults: () => ({}),
  };
}

/** fakeAssertion() as the server receives it. */
export const ASSERTION_JSON = {
  id: "AQID",
  rawId: "AQID",
  type: "public-key",
  response: {
    clientDataJSON: "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
    authenticatorData: "SZYN",
    signature: "MEUC",
    userHandle: "-_8",
  },
  extensions: {},
};

/** WebAuthn request options as webauthn-rs writes them. */
export const REQUEST_OPTIONS: PasskeyRequestOptions = {
  publicKey: {
    challenge: "-_8",
    timeout: 60000,
    rpId: "auth.example.com",
    allowCredentials: [{ type: "public-key", id: "AQID", transports: ["usb"] }],
    userVerification: "preferred",
  },
};

/** WebAuthn creation options as webauthn-rs writes them. */
export const CREATION_OPTIONS: PasskeyCreationOptions = {
  publicKey: {
    rp: { id: "auth.example.com", name: "natsauth" },
    user: { id: "AAECAw", name: "ada@example.com", displayName: "ada@example.com" },
    challenge: "3q2-7w",
    pubKeyCredParams: [
      { type: "public-key", alg: -7 },
      { type: "public-key", alg: -257 },
    ],
    timeout: 60000,
    excludeCredentials: [{ type: "public-key", id: "BAUG" }],
    authenticatorSelection: { residentKey: "discouraged", requireResidentKey: false, userVerification: "preferred" },
    attestation: "none",
    extensions: { credProps: true },
  },
};
