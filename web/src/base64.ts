// Base64 for the few binary values the app handles: WebAuthn's fields
// (base64url without padding, as webauthn-rs and the browser's own JSON
// write them) and the authenticator app's QR code (a data: URL).

/** The bytes of an ArrayBuffer or of a view on one (a Uint8Array, a DataView). */
export function bytesOf(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  // isView, not instanceof ArrayBuffer: a buffer from another realm (a test
  // environment, an iframe) fails instanceof.
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** Standard base64, with padding. */
export function base64(data: ArrayBuffer | ArrayBufferView): string {
  const bytes = bytesOf(data);
  let binary = "";
  // In slices: spreading a large array into fromCharCode overflows the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** base64url without padding (RFC 4648 §5). */
export function base64url(data: ArrayBuffer | ArrayBufferView): string {
  return base64(data).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The bytes of base64url text, padded or not; standard base64 is read too.
 * Throws a SyntaxError for anything else.
 */
export function fromBase64url(text: string): ArrayBuffer {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(standard) || standard.length % 4 === 1) {
    throw new SyntaxError("not base64url");
  }
  const binary = atob(standard + "=".repeat((4 - (standard.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

/** A `data:` URL of an SVG document (UTF-8, so any text in it survives). */
export function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;base64,${base64(new TextEncoder().encode(svg))}`;
}
