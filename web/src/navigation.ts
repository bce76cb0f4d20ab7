// Full-page navigations: after login and logout, and when a session is gone.
// Kept in one place so unit tests can watch them (jsdom cannot navigate).

/** Loads `url` as a new page (the server decides what it shows). */
export function goTo(url: string): void {
  window.location.assign(url);
}

/** The login page, asking to come back to `path` (path and query) afterwards. */
export function loginUrl(path: string): string {
  return `/login?next=${encodeURIComponent(path)}`;
}

/** The current page's path and query, as `next` wants it. */
export function currentPath(): string {
  return window.location.pathname + window.location.search;
}

/** The longest `next` followed (in UTF-8 bytes, as the gateway counts). */
const NEXT_MAX_BYTES = 2048;
/** How many rounds of percent-decoding are checked. */
const DECODE_ROUNDS = 3;

/**
 * `next` when it is a path on this origin, else null. The same rules as the
 * gateway's (gateway/src/session/next.rs), for the page that follows `next`
 * itself (`/mfa`): exactly one leading `/`; no `\`, whitespace or control
 * character; no `/` followed by up to two dots and another `/`; and each of
 * up to three percent-decodings, valid UTF-8, passes the same checks. The
 * browser's own URL parser has the last word: the result must stay on this
 * origin.
 */
export function sameOriginPath(next: string | null): string | null {
  if (next === null || new TextEncoder().encode(next).length > NEXT_MAX_BYTES || !isPlainPath(next)) return null;
  let text = next;
  for (let round = 0; round < DECODE_ROUNDS; round++) {
    const decoded = percentDecode(text);
    if (decoded === null) return null;
    if (decoded === text) break;
    if (!isPlainPath(decoded)) return null;
    text = decoded;
  }
  // Still encoded after the last round: too deep to be a real path.
  if (text.includes("%") && percentDecode(text) !== text) return null;
  try {
    if (new URL(next, window.location.origin).origin !== window.location.origin) return null;
  } catch {
    return null;
  }
  return next;
}

function isPlainPath(text: string): boolean {
  if (!text.startsWith("/")) return false;
  // Whitespace and control characters, which browsers drop or misread.
  if (/[\\\s\u0000-\u001f\u007f-\u009f]/.test(text)) return false;
  // A `/` followed by optional dots (one or two) and another `/`.
  for (let i = text.indexOf("/"); i !== -1; i = text.indexOf("/", i + 1)) {
    let dots = 0;
    while (text[i + 1 + dots] === ".") dots += 1;
    if (dots <= 2 && text[i + 1 + dots] === "/") return false;
  }
  return true;
}

/** `%XX` sequences decoded as UTF-8 bytes (others kept as they are); null when not UTF-8. */
function percentDecode(text: string): string | null {
  const input = new TextEncoder().encode(text);
  const output: number[] = [];
  const hex = (byte: number | undefined) =>
    byte !== undefined && /^[0-9A-Fa-f]$/.test(String.fromCharCode(byte));
  for (let i = 0; i < input.length; i++) {
    const byte = input[i] ?? 0;
    if (byte === 0x25 && hex(input[i + 1]) && hex(input[i + 2])) {
      output.push(Number.parseInt(String.fromCharCode(input[i + 1] ?? 0, input[i + 2] ?? 0), 16));
      i += 2;
    } else {
      output.push(byte);
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(output));
  } catch {
    return null;
  }
}
