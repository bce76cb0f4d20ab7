// Passkeys in the browser: the server's WebAuthn options (JSON, binary
// fields in base64url) made into what navigator.credentials wants, and the
// PublicKeyCredential it returns made into the JSON webauthn-rs reads.
// PublicKeyCredential.parseCreationOptionsFromJSON and toJSON would do this,
// but not every browser in use has them yet.
import type {
  PasskeyAssertion,
  PasskeyCreationOptions,
  PasskeyDescriptorJson,
  PasskeyRegistration,
  PasskeyRequestOptions,
} from "./api/types";
import { base64url, fromBase64url } from "./base64";

/** Why a passkey was not used, ready to show. */
export class PasskeyError extends Error {
  override readonly name = "PasskeyError";
}

export const PASSKEYS_UNSUPPORTED = "This browser cannot use passkeys. Use a code instead.";
export const PASSKEY_CANCELLED = "No passkey was used: the request was cancelled or timed out. Try again.";
export const PASSKEY_EXISTS = "This device already holds a passkey for your account.";
export const PASSKEY_WRONG_SITE = "Passkeys cannot be used at this address.";
export const BAD_PASSKEY_OPTIONS = "The server's passkey request could not be read. Please reload the page.";

/** Whether this browser has WebAuthn at all. */
export function passkeysSupported(): boolean {
  return typeof window.PublicKeyCredential !== "undefined" && typeof navigator.credentials !== "undefined";
}

function decode(text: string): ArrayBuffer {
  try {
    return fromBase64url(text);
  } catch {
    throw new PasskeyError(BAD_PASSKEY_OPTIONS);
  }
}

function descriptors(list: PasskeyDescriptorJson[] | undefined): PublicKeyCredentialDescriptor[] | undefined {
  return list?.map((credential) => ({ ...credential, id: decode(credential.id) }));
}

/** `{publicKey}` for `navigator.credentials.create()`. */
export function creationOptions(json: PasskeyCreationOptions): CredentialCreationOptions {
  // Every other member (rp, pubKeyCredParams, authenticatorSelection,
  // extensions, hints…) is plain JSON and goes as it came.
  const { excludeCredentials, ...publicKey } = json.publicKey;
  const options: PublicKeyCredentialCreationOptions = {
    ...publicKey,
    challenge: decode(publicKey.challenge),
    user: { ...publicKey.user, id: decode(publicKey.user.id) },
  };
  const exclude = descriptors(excludeCredentials);
  if (exclude) options.excludeCredentials = exclude;
  return { publicKey: options };
}

/** `{publicKey, mediation?}` for `navigator.credentials.get()`. */
export function requestOptions(json: PasskeyRequestOptions): CredentialRequestOptions {
  const { mediation } = json;
  const { allowCredentials, ...publicKey } = json.publicKey;
  const options: PublicKeyCredentialRequestOptions = { ...publicKey, challenge: decode(publicKey.challenge) };
  const allow = descriptors(allowCredentials);
  if (allow) options.allowCredentials = allow;
  return mediation === undefined ? { publicKey: options } : { publicKey: options, mediation };
}

function isBinary(value: unknown): value is ArrayBuffer | ArrayBufferView {
  return ArrayBuffer.isView(value) || Object.prototype.toString.call(value) === "[object ArrayBuffer]";
}

/** The client extension results as JSON: binary values (a PRF output) in base64url. */
function extensionsJson(value: unknown): unknown {
  if (isBinary(value)) return base64url(value);
  if (Array.isArray(value)) return value.map(extensionsJson);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, extensionsJson(item)]));
  }
  return value;
}

function extensionsOf(credential: PublicKeyCredential): Record<string, unknown> {
  const results: unknown = credential.getClientExtensionResults();
  const json = extensionsJson(results);
  return typeof json === "object" && json !== null ? (json as Record<string, unknown>) : {};
}

/** A new passkey as JSON (`response.attestationObject`, no authenticatorData). */
export function registrationJson(credential: PublicKeyCredential): PasskeyRegistration {
  const response = credential.response as AuthenticatorAttestationResponse;
  const json: PasskeyRegistration = {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: base64url(response.clientDataJSON),
      attestationObject: base64url(response.attestationObject),
    },
    extensions: extensionsOf(credential),
  };
  // How the authenticator is reached (usb, internal, hybrid…), kept with the
  // passkey so a later login can hint at it. Older browsers lack the method.
  if (typeof response.getTransports === "function") json.response.transports = response.getTransports();
  return json;
}

/** A passkey's answer to a challenge as JSON. */
export function assertionJson(credential: PublicKeyCredential): PasskeyAssertion {
  const response = credential.response as AuthenticatorAssertionResponse;
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: base64url(response.clientDataJSON),
      authenticatorData: base64url(response.authenticatorData),
      signature: base64url(response.signature),
      userHandle: response.userHandle ? base64url(response.userHandle) : null,
    },
    extensions: extensionsOf(credential),
  };
}

/** What the browser's refusal means to the person (a DOMException's name). */
function refusal(caught: unknown): PasskeyError {
  if (caught instanceof PasskeyError) return caught;
  const name = typeof caught === "object" && caught !== null && "name" in caught ? String(caught.name) : "";
  switch (name) {
    case "NotAllowedError":
    case "AbortError":
      return new PasskeyError(PASSKEY_CANCELLED);
    case "InvalidStateError":
      return new PasskeyError(PASSKEY_EXISTS);
    case "SecurityError":
      return new PasskeyError(PASSKEY_WRONG_SITE);
    case "NotSupportedError":
      return new PasskeyError(PASSKEYS_UNSUPPORTED);
    default:
      console.error(caught);
      return new PasskeyError(`The passkey did not work${name ? ` (${name})` : ""}. Try again.`);
  }
}

function asPublicKeyCredential(credential: Credential | null): PublicKeyCredential {
  if (credential === null || credential.type !== "public-key") throw new PasskeyError(PASSKEY_CANCELLED);
  return credential as PublicKeyCredential;
}

/** Creates a passkey on this device for the server's options. */
export async function createPasskey(options: PasskeyCreationOptions): Promise<PasskeyRegistration> {
  if (!passkeysSupported()) throw new PasskeyError(PASSKEYS_UNSUPPORTED);
  try {
    return registrationJson(asPublicKeyCredential(await navigator.credentials.create(creationOptions(options))));
  } catch (caught) {
    throw refusal(caught);
  }
}

/** Asks for a passkey's answer to the server's challenge. */
export async function getPasskey(options: PasskeyRequestOptions): Promise<PasskeyAssertion> {
  if (!passkeysSupported()) throw new PasskeyError(PASSKEYS_UNSUPPORTED);
  try {
    return assertionJson(asPublicKeyCredential(await navigator.credentials.get(requestOptions(options))));
  } catch (caught) {
    throw refusal(caught);
  }
}
