//! Headers that travel with every NATS request.
//!
//! The gateway verifies the access token and passes the caller on in
//! [`CALLER`], and the client's address in [`CLIENT_ADDRESS`]. Only the
//! gateway and the `ops` user may publish on the service subjects (see
//! `nats.conf`), so an HTTP client cannot forge either; and a worker trusts
//! a caller only after checking its session and reading its current role
//! (what each subject needs is its [`Access`] in the contract).
//!
//! The headers are written and read here as names and text values; the map
//! that carries them is the transport's (`runtime` hands NATS's to
//! [`RequestContext::from_headers`] and [`RequestContext::write_headers`]).

use serde::{Deserialize, Serialize};

use crate::user::{Role, UserId};

/// The verified caller, as JSON: `{"id":42,"role":"USER"}`.
pub const CALLER: &str = "X-Caller";
/// The request id, the same as the HTTP `x-request-id`.
pub const REQUEST_ID: &str = "X-Request-Id";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The HTTP client's address as the gateway saw it (throttling).
pub const CLIENT_ADDRESS: &str = "X-Client-Address";
/// The HTTP client's `User-Agent`, sent by the gateway with a login (at most
/// [`USER_AGENT_MAX`] bytes) so the session remembers the device.
pub const CLIENT_USER_AGENT: &str = "X-Client-User-Agent";
/// The gateway's public origin, with the passkey calls (WebAuthn's origin).
pub const PUBLIC_ORIGIN: &str = "X-Public-Origin";
/// The longest `User-Agent` passed on; a longer one is cut.
pub const USER_AGENT_MAX: usize = 512;
/// An error reply's message (the NATS service API, ADR-32).
pub const NATS_SERVICE_ERROR: &str = "Nats-Service-Error";
/// An error reply's HTTP-style status code (the NATS service API, ADR-32).
pub const NATS_SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";

/// Who is asking: taken from a verified access token by the gateway, and
/// checked again by the worker against the database (the session is live,
/// the role is the current one) before any handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub id: UserId,
    pub role: Role,
    /// The login session the access token belongs to (its `sid` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<uuid::Uuid>,
    /// The session proved a second factor (the token's `amr` says `otp` or
    /// `hwk`). A session's factors only grow while it lives, and resetting
    /// a user's factors ends the user's sessions, so the token's word is
    /// current.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa: bool,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// True when the caller is `user` or an ADMIN.
    pub fn is_self_or_admin(&self, user: UserId) -> bool {
        self.id == user || self.is_admin()
    }
}

/// What an endpoint needs to know about its caller; chosen once per subject
/// in its [`Endpoint`](crate::Endpoint) impl, and enforced by the worker's
/// service loop before the handler runs.
///
/// * [`Caller`]: a caller is required, its session must be live (401
///   otherwise), and its role is the current one.
/// * `Option<Caller>`: anyone; a caller that is sent must be live (401
///   otherwise, never silently anonymous).
/// * [`Anonymous`]: the caller header is not read.
pub trait Access: Sized + Send + 'static {
    /// Whether a caller header is checked against the database.
    const RESOLVE: bool;
    /// This endpoint's view of the checked caller (`None`: none was sent).
    fn from_resolved(caller: Option<Caller>) -> Result<Self, crate::ServiceError>;
}

impl Access for Caller {
    const RESOLVE: bool = true;
    fn from_resolved(caller: Option<Caller>) -> Result<Self, crate::ServiceError> {
        caller.ok_or_else(|| crate::ServiceError::unauthorized("missing caller"))
    }
}

impl Access for Option<Caller> {
    const RESOLVE: bool = true;
    fn from_resolved(caller: Option<Caller>) -> Result<Self, crate::ServiceError> {
        Ok(caller)
    }
}

/// The caller of an endpoint that anyone may call (sign-up, login, the key
/// set): whatever caller header comes along is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anonymous;

impl Access for Anonymous {
    const RESOLVE: bool = false;
    fn from_resolved(_: Option<Caller>) -> Result<Self, crate::ServiceError> {
        Ok(Self)
    }
}

/// The HTTP client's address, as the gateway saw it. Throttles count per
/// [`ClientAddress::throttle_key`]: one IPv6 subscriber gets a whole /64, so
/// its addresses are one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

impl ClientAddress {
    /// IPv4 (also when mapped into IPv6) as is; IPv6 masked to its /64.
    pub fn throttle_key(&self) -> String {
        match self.masked() {
            std::net::IpAddr::V6(prefix) => format!("{prefix}/64"),
            v4 => v4.to_string(),
        }
    }

    /// The address that counts as the client: IPv4 (also when mapped into
    /// IPv6) as is, IPv6 with all but its /64 prefix zeroed.
    pub fn masked(&self) -> std::net::IpAddr {
        use std::net::IpAddr;
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }
    }
}

/// A W3C trace context (`traceparent`: version-traceid-parentid-flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Parses a version-00 header; all-zero ids are invalid (W3C).
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace)?.try_into().ok()?;
        let parent_id: [u8; 8] = hex(parent)?.try_into().ok()?;
        let flags = *hex(flags)?.first()?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// Continues `incoming` (same trace, this hop as the new parent) or
    /// starts a new sampled trace.
    pub fn child_of(incoming: Option<&str>) -> Self {
        let random = uuid::Uuid::new_v4().into_bytes();
        let mut parent_id = [0u8; 8];
        parent_id.copy_from_slice(&random[..8]);
        parent_id[0] |= 1; // never all zero
        match incoming.and_then(Self::parse) {
            Some(parent) => Self {
                parent_id,
                ..parent
            },
            None => {
                let mut trace_id = uuid::Uuid::new_v4().into_bytes();
                trace_id[0] |= 1;
                Self {
                    trace_id,
                    parent_id,
                    flags: 1,
                }
            }
        }
    }

    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.parent_id),
            self.flags
        )
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2)
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Lower-case hex, two digits a byte (this runs for every request: a
/// `format!` per byte showed in the gateway's profile).
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// What a worker knows about a request besides its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// As claimed by the gateway; workers check it before use.
    pub caller: Option<Caller>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// Set by the gateway from the HTTP connection.
    pub client: Option<ClientAddress>,
    /// The HTTP client's `User-Agent`, with a login only.
    pub user_agent: Option<String>,
    /// The gateway's public origin (`session.public_origin`), with the
    /// passkey calls only: WebAuthn's origin and RP ID.
    pub origin: Option<String>,
}

impl RequestContext {
    /// Reads the context from a request's headers, which `header` looks up
    /// by name (`None`: not sent). A caller header that does not parse is
    /// treated as absent, so the handler answers 401.
    pub fn from_headers<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Self {
        Self {
            caller: header(CALLER).and_then(|v| serde_json::from_str(v).ok()),
            request_id: header(REQUEST_ID).map(str::to_owned),
            traceparent: header(TRACEPARENT).map(str::to_owned),
            client: header(CLIENT_ADDRESS)
                .and_then(|v| v.parse().ok())
                .map(ClientAddress),
            user_agent: header(CLIENT_USER_AGENT).map(|v| cut(v, USER_AGENT_MAX).to_owned()),
            origin: header(PUBLIC_ORIGIN).map(str::to_owned),
        }
    }

    /// Writes the context as request headers: `insert` gets the name and
    /// value of each one that is set.
    pub fn write_headers(&self, mut insert: impl FnMut(&'static str, &str)) {
        if let Some(caller) = &self.caller {
            // A struct of an integer and an enum always serializes.
            if let Ok(json) = serde_json::to_string(caller) {
                insert(CALLER, &json);
            }
        }
        if let Some(id) = &self.request_id {
            insert(REQUEST_ID, id);
        }
        if let Some(tp) = &self.traceparent {
            insert(TRACEPARENT, tp);
        }
        if let Some(client) = &self.client {
            insert(CLIENT_ADDRESS, &client.0.to_string());
        }
        if let Some(agent) = &self.user_agent {
            insert(CLIENT_USER_AGENT, cut(agent, USER_AGENT_MAX));
        }
        if let Some(origin) = &self.origin {
            insert(PUBLIC_ORIGIN, origin);
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Headers as a transport would carry them.
    fn written(ctx: &RequestContext) -> HashMap<&'static str, String> {
        let mut headers = HashMap::new();
        ctx.write_headers(|name, value| {
            headers.insert(name, value.to_owned());
        });
        headers
    }

    fn read(headers: &HashMap<&'static str, String>) -> RequestContext {
        RequestContext::from_headers(|name| headers.get(name).map(String::as_str))
    }

    #[test]
    fn hex_has_two_lower_case_digits_a_byte() {
        assert_eq!(
            to_hex(&[0x00, 0x0f, 0xf0, 0xff, 0x5a, 0x09]),
            "000ff0ff5a09"
        );
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(to_hex(&all), expected);
        assert_eq!(hex(&to_hex(&all)).as_deref(), Some(&all[..]));
    }

    #[test]
    fn the_context_survives_a_round_trip_through_headers() {
        let ctx = RequestContext {
            caller: Some(Caller {
                id: 7,
                role: Role::Admin,
                session: Some(uuid::Uuid::nil()),
                mfa: true,
            }),
            request_id: Some("abc".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            client: Some(ClientAddress("2001:db8::7".parse().unwrap())),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".into()),
            origin: Some("https://app.example".into()),
        };
        let back = read(&written(&ctx));
        assert_eq!(back, ctx);
    }

    #[test]
    fn a_trace_is_continued_with_a_new_parent_or_started() {
        let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let child = TraceParent::child_of(Some(incoming));
        assert_eq!(child.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_ne!(child.to_string(), incoming);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
            let fresh = TraceParent::child_of(Some(bad));
            assert!(TraceParent::parse(&fresh.to_string()).is_some());
        }
    }

    #[test]
    fn a_garbled_caller_header_counts_as_no_caller() {
        let headers = HashMap::from([(CALLER, "{\"id\":\"x\"}".to_owned())]);
        let ctx = read(&headers);
        assert_eq!(ctx.caller, None);
        assert!(Caller::from_resolved(ctx.caller).is_err());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_ipv4_as_is() {
        let key = |s: &str| ClientAddress(s.parse().unwrap()).throttle_key();
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:aa:1::1"), "2001:db8:aa:1::/64");
        assert_eq!(key("2001:db8:aa:1:ffff:1:2:3"), "2001:db8:aa:1::/64");
        assert_ne!(key("2001:db8:aa:2::1"), key("2001:db8:aa:1::1"));
    }
}
