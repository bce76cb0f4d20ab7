//! What crosses the proxy: the upstream URL of a request, the headers each
//! way, and the upstream's redirects. Pure functions, tested here.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use cookie::Cookie;
use percent_encoding::percent_decode_str;

use super::settings::Route;

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the old `Keep-Alive` and
/// `Proxy-Connection`): about one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Who the user is, as the upstream is told.
pub const FORWARDED_USER: &str = "x-forwarded-user";
pub const FORWARDED_EMAIL: &str = "x-forwarded-email";
pub const FORWARDED_GROUPS: &str = "x-forwarded-groups";
pub const AUTH_ASSERTION: &str = "x-auth-assertion";

/// Whether a client-sent header could claim an identity or an origin the
/// upstream would trust: all of them are dropped, and the gateway sets its
/// own.
fn is_identity(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == header::AUTHORIZATION.as_str()
        || name == header::FORWARDED.as_str()
        || name == AUTH_ASSERTION
        || name == "x-real-ip"
        || name == "x-client-address"
        || name.starts_with("x-forwarded-")
        || name.starts_with("x-auth-request-")
        || name.starts_with("remote-")
}

/// The header names a `Connection` header lists (hop-by-hop too).
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect()
}

/// The request's path under the route, or `None` when it has a `.` or `..`
/// segment (also percent-encoded): the upstream would resolve it out of the
/// route's base path, so it is refused.
pub fn upstream_uri(route: &Route, uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let rest = path.strip_prefix(route.prefix.as_str()).unwrap_or(path);
    let dotted = rest.split('/').any(|segment| {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    });
    if dotted {
        return None;
    }
    let sent = if route.strip_prefix { rest } else { path };
    let sent = if sent.is_empty() { "/" } else { sent };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Uri::builder()
        .scheme(route.scheme.clone())
        .authority(route.authority.clone())
        .path_and_query(format!("{}{sent}{query}", route.base_path))
        .build()
        .ok()
}

/// What the gateway tells the upstream about the request.
#[derive(Debug)]
pub struct Identity<'a> {
    pub user_id: String,
    pub email: &'a str,
    pub role: &'a str,
    pub assertion: &'a str,
    pub client_ip: String,
    /// `http` or `https`: how the browser reached the gateway.
    pub proto: &'a str,
}

/// The headers sent upstream: the client's, less hop-by-hop, identity and
/// `Host` headers and the session cookie (other cookies pass), plus the
/// gateway's identity headers. An upgrade keeps its `Upgrade`.
pub fn request_headers(
    incoming: &HeaderMap,
    session_cookie: &str,
    upgrade: Option<&HeaderValue>,
    identity: &Identity<'_>,
) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 8);
    for (name, value) in incoming {
        if is_hop_by_hop(name)
            || listed.contains(name)
            || is_identity(name)
            || name == header::HOST
            || name == header::COOKIE
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    let cookies: Vec<String> = incoming
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() != session_cookie)
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect();
    if !cookies.is_empty()
        && let Ok(value) = HeaderValue::try_from(cookies.join("; "))
    {
        out.insert(header::COOKIE, value);
    }
    if let Some(host) = incoming.get(header::HOST) {
        out.insert("x-forwarded-host", host.clone());
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::try_from(value) {
            out.insert(name, value);
        }
    };
    set(FORWARDED_USER, &identity.user_id);
    set(FORWARDED_EMAIL, identity.email);
    set(FORWARDED_GROUPS, identity.role);
    set(AUTH_ASSERTION, identity.assertion);
    set("x-forwarded-for", &identity.client_ip);
    set("x-forwarded-proto", identity.proto);
    if let Some(protocol) = upgrade {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(header::UPGRADE, protocol.clone());
    }
    out
}

/// The upstream's response headers as the client gets them: hop-by-hop
/// headers go (but a 101 keeps `Connection` and `Upgrade`), and a redirect
/// into the upstream is turned into one under the route's prefix.
pub fn response_headers(route: &Route, headers: &mut HeaderMap, switching: bool) {
    let listed = connection_listed(headers);
    let names = HOP_BY_HOP
        .iter()
        .map(|n| HeaderName::from_static(n))
        .chain(listed);
    for name in names {
        if switching && (name == header::CONNECTION || name == header::UPGRADE) {
            continue;
        }
        headers.remove(name);
    }
    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
        && let Some(rewritten) = rewrite_location(route, location)
        && let Ok(value) = HeaderValue::try_from(rewritten)
    {
        headers.insert(header::LOCATION, value);
    }
}

/// A `Location` pointing into the upstream (its own absolute URL, or an
/// absolute path), as a path under the prefix; `None` leaves it as it is
/// (relative, or another site).
pub fn rewrite_location(route: &Route, location: &str) -> Option<String> {
    let path_and_query = if location.starts_with('/') {
        if location.starts_with("//") {
            return None;
        }
        location
    } else {
        let uri: Uri = location.parse().ok()?;
        let same = uri.scheme() == Some(&route.scheme)
            && uri
                .authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(route.authority.as_str()));
        if !same {
            return None;
        }
        let start = location.find(route.authority.as_str())? + route.authority.as_str().len();
        match &location[start..] {
            "" => "/",
            rest => rest,
        }
    };
    if !route.strip_prefix {
        // The upstream serves under the prefix itself.
        return Some(path_and_query.to_owned());
    }
    let under_base = if route.base_path.is_empty() {
        Some(path_and_query)
    } else {
        path_and_query
            .strip_prefix(route.base_path.as_str())
            .filter(|r| r.is_empty() || r.starts_with(['/', '?']))
    }?;
    let under_base = if under_base.starts_with('/') {
        under_base.to_owned()
    } else {
        format!("/{under_base}")
    };
    Some(format!("{}{under_base}", route.prefix))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn route(upstream: &str, strip: bool) -> Route {
        let uri: Uri = upstream.parse().unwrap();
        Route {
            name: "tool".into(),
            prefix: "/proxy/tool".into(),
            audience: "proxy:tool".into(),
            roles: vec![shared::Role::Admin],
            timeout: Duration::from_secs(1),
            strip_prefix: strip,
            scheme: uri.scheme().unwrap().clone(),
            authority: uri.authority().unwrap().clone(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        }
    }

    fn sent(route: &Route, path: &str) -> Option<String> {
        upstream_uri(route, &path.parse().unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn the_path_and_query_go_under_the_upstream() {
        let r = route("http://127.0.0.1:9000", true);
        assert_eq!(
            sent(&r, "/proxy/tool/varz?a=1&b=%2F").unwrap(),
            "http://127.0.0.1:9000/varz?a=1&b=%2F"
        );
        assert_eq!(sent(&r, "/proxy/tool/").unwrap(), "http://127.0.0.1:9000/");
        assert_eq!(
            sent(&r, "/proxy/tool/a%2Fb").unwrap(),
            "http://127.0.0.1:9000/a%2Fb"
        );
        let based = route("http://127.0.0.1:9000/base/", true);
        assert_eq!(
            sent(&based, "/proxy/tool/x").unwrap(),
            "http://127.0.0.1:9000/base/x"
        );
        let kept = route("http://127.0.0.1:9000", false);
        assert_eq!(
            sent(&kept, "/proxy/tool/x?q").unwrap(),
            "http://127.0.0.1:9000/proxy/tool/x?q"
        );
    }

    #[test]
    fn dot_segments_are_refused_even_encoded() {
        let r = route("http://127.0.0.1:9000/base", true);
        for path in [
            "/proxy/tool/../secret",
            "/proxy/tool/a/./b",
            "/proxy/tool/%2e%2e/secret",
            "/proxy/tool/%2E./x",
            "/proxy/tool/..",
        ] {
            assert_eq!(sent(&r, path), None, "{path}");
        }
        assert!(sent(&r, "/proxy/tool/..hidden/x").is_some());
    }

    fn identity() -> Identity<'static> {
        Identity {
            user_id: "7".into(),
            email: "ada@example.com",
            role: "ADMIN",
            assertion: "jwt",
            client_ip: "10.1.2.3".into(),
            proto: "https",
        }
    }

    #[test]
    fn identity_headers_are_the_gateways_and_the_session_cookie_stays_home() {
        let mut incoming = HeaderMap::new();
        for (name, value) in [
            ("host", "app.example"),
            ("authorization", "Bearer stolen"),
            ("x-forwarded-user", "1"),
            ("X-Forwarded-Email", "root@example.com"),
            ("x-forwarded-groups", "ADMIN"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-auth-assertion", "forged"),
            ("x-real-ip", "6.6.6.6"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("cookie", "theme=dark; __Host-natsauth=v1.sealed"),
            ("cookie", "lang=en"),
            ("accept", "text/html"),
            ("x-request-id", "req-1"),
        ] {
            incoming.append(
                HeaderName::try_from(name).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        let out = request_headers(&incoming, "__Host-natsauth", None, &identity());
        let get = |n: &str| {
            out.get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-forwarded-user"), ["7"]);
        assert_eq!(get("x-forwarded-email"), ["ada@example.com"]);
        assert_eq!(get("x-forwarded-groups"), ["ADMIN"]);
        assert_eq!(get("x-forwarded-for"), ["10.1.2.3"]);
        assert_eq!(get("x-forwarded-proto"), ["https"]);
        assert_eq!(get("x-forwarded-host"), ["app.example"]);
        assert_eq!(get("x-auth-assertion"), ["jwt"]);
        assert_eq!(get("cookie"), ["theme=dark; lang=en"]);
        assert_eq!(get("accept"), ["text/html"]);
        assert_eq!(get("x-request-id"), ["req-1"]);
        for gone in [
            "authorization",
            "forwarded",
            "x-real-ip",
            "connection",
            "x-secret-hop",
            "te",
            "host",
        ] {
            assert!(get(gone).is_empty(), "{gone} was forwarded");
        }
        // Only the session cookie: no Cookie header at all.
        let mut only = HeaderMap::new();
        only.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-natsauth=x"),
        );
        assert!(
            request_headers(&only, "__Host-natsauth", None, &identity())
                .get(header::COOKIE)
                .is_none()
        );
        // An upgrade keeps what it needs.
        let up = request_headers(
            &only,
            "__Host-natsauth",
            Some(&HeaderValue::from_static("websocket")),
            &identity(),
        );
        assert_eq!(up.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(up.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn redirects_into_the_upstream_stay_under_the_prefix() {
        let r = route("http://127.0.0.1:9000", true);
        let re = |l: &str| rewrite_location(&r, l);
        assert_eq!(re("/login?x=1").as_deref(), Some("/proxy/tool/login?x=1"));
        assert_eq!(
            re("http://127.0.0.1:9000/a").as_deref(),
            Some("/proxy/tool/a")
        );
        assert_eq!(re("http://127.0.0.1:9000").as_deref(), Some("/proxy/tool/"));
        assert_eq!(re("https://elsewhere.example/a"), None);
        assert_eq!(re("//evil.example/a"), None);
        assert_eq!(re("relative/path"), None);
        let based = route("http://127.0.0.1:9000/base", true);
        assert_eq!(
            rewrite_location(&based, "/base/x").as_deref(),
            Some("/proxy/tool/x")
        );
        assert_eq!(rewrite_location(&based, "/other"), None);
        assert_eq!(rewrite_location(&based, "/basement"), None);
        let kept = route("http://127.0.0.1:9000", false);
        assert_eq!(
            rewrite_location(&kept, "http://127.0.0.1:9000/proxy/tool/a").as_deref(),
            Some("/proxy/tool/a")
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_static("/next"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        response_headers(&r, &mut headers, false);
        assert_eq!(headers.get(header::LOCATION).unwrap(), "/proxy/tool/next");
        assert!(headers.get("x-hop").is_none() && headers.get(header::CONNECTION).is_none());
        assert!(headers.get(header::TRANSFER_ENCODING).is_none());
    }
}
