//! Where to go after login: `next` is followed only when it is a path on this
//! origin.
//!
//! The rules are oauth2-proxy's (`pkg/app/redirect/validator.go`), made
//! stricter because a browser normalises what it is given before it
//! navigates: it drops tabs and newlines inside a URL, treats `\` as `/`, and
//! a path that starts with two slashes (`//evil.example`) names another host.
//! So a `next` is refused when it, or any of its percent-decodings, is not a
//! plain path:
//!
//! * it must start with exactly one `/` (so no scheme: `javascript:`,
//!   `https://…`, `data:`, and no `//host` or `///host`);
//! * no `\` anywhere, no whitespace or control character anywhere (`/\t/evil`);
//! * no `/` followed, after optional whitespace or one or two dots, by
//!   another `/` or `\` (`/./\evil`, `/ /evil`, `/..//evil`);
//! * it decodes (up to three rounds of `%XX`) to valid UTF-8, and each
//!   decoding passes the same checks (`/%2f%2fevil`, `/%5cevil`,
//!   `/%252f%252fevil`).
//!
//! Anything refused falls back to the caller's default page.

use percent_encoding::percent_decode_str;

/// The longest `next` followed.
const MAX_LEN: usize = 2048;
/// How many rounds of percent-decoding are checked.
const DECODE_ROUNDS: usize = 3;

/// `next` when it is a safe same-origin path; `None` otherwise.
pub fn same_origin_path(next: &str) -> Option<&str> {
    if next.len() > MAX_LEN || !is_plain_path(next) {
        return None;
    }
    let mut text = next.to_owned();
    for _ in 0..DECODE_ROUNDS {
        let decoded = percent_decode_str(&text).decode_utf8().ok()?.into_owned();
        if decoded == text {
            break;
        }
        if !is_plain_path(&decoded) {
            return None;
        }
        text = decoded;
    }
    // Still encoded after the last round: too deep to be a real path.
    if text.contains('%') && percent_decode_str(&text).decode_utf8().ok()? != text {
        return None;
    }
    Some(next)
}

fn is_plain_path(text: &str) -> bool {
    let mut chars = text.chars();
    if chars.next() != Some('/') {
        return false;
    }
    if text
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    {
        return false;
    }
    // A `/` followed by optional dots (one or two) and another `/`.
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('/') {
        let rest = &bytes[i + 1..];
        let dots = rest.iter().take_while(|b| **b == b'.').count();
        if dots <= 2 && rest.get(dots) == Some(&b'/') {
            return false;
        }
    }
    true
}

/// `next` values that must never be followed, by the trick they use (the
/// categories of oauth2-proxy's validator tests and open-redirect list). The
/// integration tests send every one through `POST /api/session`.
pub const REFUSED: &[&str] = &[
    // Empty, relative, or not a path at all.
    "",
    "account",
    "evil.example/account",
    "@evil.example",
    ".evil.example",
    // Another host, by scheme or by a network-path reference.
    "https://evil.example/",
    "http://evil.example",
    "HTTPS://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example/",
    "//evil.example@127.0.0.1/",
    "//127.0.0.1@evil.example/",
    // Script and data URLs.
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "/javascript:alert(1)//",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    // Backslashes, which browsers read as slashes.
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example/",
    "/https:/\\evil.example/",
    // Whitespace and control characters between the slashes (browsers drop them).
    "/ /evil.example",
    "/ \\evil.example",
    "/\t/evil.example",
    "/\t\\evil.example",
    "/\u{b}/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/\t\t/\t\\evil.example",
    "/\0/evil.example",
    "/account\n",
    // Dot segments that collapse into a double slash.
    "/./\\evil.example",
    "/.//evil.example",
    "/..//evil.example",
    "/./../../\\evil.example",
    // Percent-encoded, once or twice.
    "/%2f%2fevil.example",
    "/%2F/evil.example",
    "/%5cevil.example",
    "/%5C%5Cevil.example",
    "/%09/evil.example",
    "/%0d%0a/evil.example",
    "/%00/evil.example",
    "/%2e%2e%2f%2fevil.example",
    "/%252f%252fevil.example",
    "/%25252f%25252fevil.example",
    "%2f%2fevil.example",
    "/%68%74%74%70%3a%2f%2fevil.example",
    "/%ff%fe",
    // Paths that are absolute URLs once a slash is resolved.
    "/https://evil.example",
    "/http://evil.example/%2e%2e",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths a login page may legitimately be sent back to.
    const ACCEPTED: &[&str] = &[
        "/account",
        "/dashboard/",
        "/dashboard/posts?limit=5&cursor=abc",
        "/dashboard/users#top",
        "/a/b.c/d..e/...",
        "/search?q=a%2Bb",
        "/caf%C3%A9",
    ];

    #[test]
    fn same_origin_paths_are_followed() {
        for next in ACCEPTED {
            assert_eq!(same_origin_path(next), Some(*next), "{next}");
        }
    }

    #[test]
    fn every_redirect_trick_is_refused() {
        for next in REFUSED {
            assert_eq!(same_origin_path(next), None, "{next:?}");
        }
    }
}
