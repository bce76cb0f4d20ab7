import { describe, expect, it } from "vitest";
import {
  ASSERTION_JSON,
  CREATION_OPTIONS,
  REQUEST_OPTIONS,
  bytes,
  fakeAssertion,
  fakeRegistration,
  refused,
  stubPasskeys,
} from "./test/webauthn";
import {
  BAD_PASSKEY_OPTIONS,
  PASSKEYS_UNSUPPORTED,
  PASSKEY_CANCELLED,
  PASSKEY_EXISTS,
  PasskeyError,
  assertionJson,
  createPasskey,
  creationOptions,
  getPasskey,
  registrationJson,
  requestOptions,
} from "./webauthn";

const asBytes = (value: BufferSource | undefined) => new Uint8Array(value as ArrayBuffer);

describe("creationOptions", () => {
  it("decodes the challenge, the user id and the excluded credentials' ids, and keeps the rest", () => {
    const { publicKey } = creationOptions(CREATION_OPTIONS);
    expect(asBytes(publicKey?.challenge)).toEqual(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    expect(asBytes(publicKey?.user.id)).toEqual(new Uint8Array([0, 1, 2, 3]));
    expect(publicKey?.excludeCredentials?.map((c) => [c.type, asBytes(c.id)])).toEqual([
      ["public-key", new Uint8Array([4, 5, 6])],
    ]);
    expect(publicKey?.user.name).toBe("ada@example.com");
    expect(publicKey?.user.displayName).toBe("ada@example.com");
    expect(publicKey?.rp).toEqual({ id: "auth.example.com", name: "natsauth" });
    expect(publicKey?.pubKeyCredParams).toEqual(CREATION_OPTIONS.publicKey.pubKeyCredParams);
    expect(publicKey?.authenticatorSelection).toEqual(CREATION_OPTIONS.publicKey.authenticatorSelection);
    expect(publicKey?.attestation).toBe("none");
    expect(publicKey?.extensions).toEqual({ credProps: true });
    expect(publicKey?.timeout).toBe(60000);
  });

  it("adds no excludeCredentials when the server sent none", () => {
    const { excludeCredentials: _none, ...rest } = CREATION_OPTIONS.publicKey;
    expect(creationOptions({ publicKey: rest }).publicKey).not.toHaveProperty("excludeCredentials");
  });

  it("refuses options that are not base64url", () => {
    const bad = { publicKey: { ...CREATION_OPTIONS.publicKey, challenge: "not base64!" } };
    expect(() => creationOptions(bad)).toThrow(new PasskeyError(BAD_PASSKEY_OPTIONS));
  });
});

describe("requestOptions", () => {
  it("decodes the challenge and the allowed credentials' ids, and keeps the rest", () => {
    const options = requestOptions(REQUEST_OPTIONS);
    expect(options).not.toHaveProperty("mediation");
    const { publicKey } = options;
    expect(asBytes(publicKey?.challenge)).toEqual(new Uint8Array([0xfb, 0xff]));
    expect(publicKey?.allowCredentials?.map((c) => [c.type, asBytes(c.id), c.transports])).toEqual([
      ["public-key", new Uint8Array([1, 2, 3]), ["usb"]],
    ]);
    expect(publicKey?.rpId).toBe("auth.example.com");
    expect(publicKey?.userVerification).toBe("preferred");
    expect(publicKey?.timeout).toBe(60000);
  });

  it("passes mediation on", () => {
    expect(requestOptions({ ...REQUEST_OPTIONS, mediation: "conditional" }).mediation).toBe("conditional");
  });
});

describe("registrationJson", () => {
  it("writes what webauthn-rs reads, in base64url without padding", () => {
    const credential = fakeRegistration({ credProps: { rk: true }, prf: { results: { first: bytes(0xfb, 0xff) } } });
    expect(registrationJson(credential as unknown as PublicKeyCredential)).toEqual({
      id: "AQID",
      rawId: "AQID",
      type: "public-key",
      response: {
        clientDataJSON: "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0",
        attestationObject: "o2NmbXQ",
        transports: ["internal", "hybrid"],
      },
      extensions: { credProps: { rk: true }, prf: { results: { first: "-_8" } } },
    });
  });

  it("leaves transports out when the browser cannot tell them", () => {
    const credential = fakeRegistration();
    const { getTransports: _absent, ...response } = credential.response;
    const json = registrationJson({ ...credential, response } as unknown as PublicKeyCredential);
    expect(json.response).not.toHaveProperty("transports");
  });
});

describe("assertionJson", () => {
  it("writes what webauthn-rs reads, in base64url without padding", () => {
    expect(assertionJson(fakeAssertion() as unknown as PublicKeyCredential)).toEqual(ASSERTION_JSON);
  });

  it("sends a missing user handle as null", () => {
    expect(assertionJson(fakeAssertion(null) as unknown as PublicKeyCredential).response.userHandle).toBeNull();
  });
});

describe("createPasskey and getPasskey", () => {
  it("hand the decoded options to the browser and its answer back as JSON", async () => {
    const { create } = stubPasskeys(fakeRegistration());
    const json = await createPasskey(CREATION_OPTIONS);
    expect(json.rawId).toBe("AQID");
    expect(asBytes(create.mock.calls[0]?.[0].publicKey?.challenge)).toEqual(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));

    const { get } = stubPasskeys(fakeAssertion());
    expect(await getPasskey(REQUEST_OPTIONS)).toEqual(ASSERTION_JSON);
    expect(asBytes(get.mock.calls[0]?.[0].publicKey?.challenge)).toEqual(new Uint8Array([0xfb, 0xff]));
  });

  it("say why the browser used no passkey", async () => {
    const { create, get } = stubPasskeys();
    get.mockRejectedValueOnce(refused("NotAllowedError"));
    await expect(getPasskey(REQUEST_OPTIONS)).rejects.toThrow(new PasskeyError(PASSKEY_CANCELLED));
    create.mockRejectedValueOnce(refused("InvalidStateError"));
    await expect(createPasskey(CREATION_OPTIONS)).rejects.toThrow(new PasskeyError(PASSKEY_EXISTS));
    get.mockResolvedValueOnce(null);
    await expect(getPasskey(REQUEST_OPTIONS)).rejects.toThrow(new PasskeyError(PASSKEY_CANCELLED));
  });

  it("say so when the browser has no WebAuthn", async () => {
    await expect(getPasskey(REQUEST_OPTIONS)).rejects.toThrow(new PasskeyError(PASSKEYS_UNSUPPORTED));
  });
});
