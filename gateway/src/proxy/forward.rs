//! Sending a request upstream ([`send`]) and what crosses the proxy: the
//! headers each way and the upstream's redirects, pure functions tested
//! here. The upstream's URL is [`super::paths`]'s, its cookies
//! [`super::cookies`]', a WebSocket's byte stream [`super::tunnel`]'s.

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header, request::Parts},
    response::Response,
};
use futures::StreamExt;

use super::{Admitted, assertions::Minted, cookies, settings::Route, tunnel};
use crate::{
    AppState,
    error::{ApiError, Proxied},
};

/// Sends the request upstream and streams the answer back (or, for a
/// WebSocket answered 101, tunnels the two connections).
pub(super) async fn send(
    state: &AppState,
    route: &Route,
    mut parts: Parts,
    body: Body,
    minted: &Minted,
    admitted: Admitted,
    tunnel: Option<tunnel::Registration>,
) -> Result<Response, ApiError> {
    let headers = upstream_headers(state, route, &parts, minted, &admitted);
    let client_upgrade = tunnel
        .is_some()
        .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
        .flatten();
    let mut outgoing = axum::http::Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = admitted.uri;
    *outgoing.headers_mut() = headers;
    let sent = tokio::time::timeout(route.timeout, state.proxy.client.request(outgoing)).await;
    let mut upstream = match sent {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            return Err(ApiError::BadGateway(format!(
                "{}: {e} ({})",
                route.name,
                std::error::Error::source(&e).map_or_else(String::new, ToString::to_string)
            )));
        }
        Err(_) => return Err(ApiError::UpstreamTimedOut),
    };
    let switching = upstream.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        tunnel::open(state, route, &mut upstream, client_upgrade, tunnel)?;
    }
    let (mut head, incoming) = upstream.into_parts();
    let session_cookie = &state.sessions.settings.cookie_name;
    response_headers(route, session_cookie, &mut head.headers, switching);
    // Streamed as it arrives, until it ends or the gateway shuts down.
    let body = Body::new(incoming)
        .into_data_stream()
        .take_until(state.proxy.closing.clone().cancelled_owned());
    let mut response = Response::from_parts(head, Body::from_stream(body));
    response.extensions_mut().insert(Proxied);
    Ok(response)
}

/// The headers the upstream gets ([`request_headers`]), with this
/// hop of the request's trace.
fn upstream_headers(
    state: &AppState,
    route: &Route,
    parts: &Parts,
    minted: &Minted,
    admitted: &Admitted,
) -> HeaderMap {
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            crate::extract::client_ip(
                *peer,
                &parts.headers,
                state.settings.http.trust_forwarded_for,
            )
            .to_string()
        })
        .unwrap_or_default();
    let proto = if state.settings.session.public_origin.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let identity = Identity {
        user_id: minted.user.id.to_string(),
        // An unverified address is only a claim: the upstream is not told it.
        email: minted
            .user
            .email_verified
            .then_some(minted.user.email.as_str()),
        role: minted.user.role.as_str(),
        assertion: &minted.assertion,
        client_ip,
        proto,
        host: admitted.host.clone(),
    };
    let mut headers = request_headers(
        &parts.headers,
        &route.name,
        admitted.upgrade.as_ref(),
        &identity,
    );
    if let Some(trace) = parts.extensions.get::<shared::headers::TraceParent>()
        && let Ok(value) = HeaderValue::try_from(trace.to_string())
    {
        headers.insert(shared::headers::TRACEPARENT, value);
    }
    headers
}

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

/// Headers an upstream may read as who the user is, where the request came
/// from or which URL it was for (oauth2-proxy's, Authelia's, Grafana's,
/// IIS's, proxies' and CDNs'), besides the [families](IDENTITY_FAMILIES).
const IDENTITY: &[&str] = &[
    "authorization",
    "forwarded",
    "x-auth-assertion",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "x-client-address",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
];

/// Whole families of them: `X-Forwarded-*` (`-User`, `-Email`, `-Groups`,
/// `-Preferred-Username`, `-For`, `-Host`, …), `X-Auth-Request-*`,
/// `X-Remote-*`, `Remote-*`, `X-WEBAUTH-*`.
const IDENTITY_FAMILIES: &[&str] = &[
    "x-forwarded-",
    "x-auth-request-",
    "x-remote-",
    "remote-",
    "x-webauth-",
];

/// Whether a client-sent header could claim an identity, an address or a
/// URL the upstream would trust. Names are read case-insensitively and with
/// `_` as `-`, as CGI, WSGI, PHP and Rack read them (`X_Forwarded_User` is
/// their `X-Forwarded-User`). All of them are dropped; the gateway sets its
/// own.
pub fn is_identity(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    IDENTITY.contains(&name.as_str()) || IDENTITY_FAMILIES.iter().any(|f| name.starts_with(f))
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

/// What the gateway tells the upstream about the request.
#[derive(Debug)]
pub struct Identity<'a> {
    pub user_id: String,
    /// The verified address; `None` (no header) for an unverified one.
    pub email: Option<&'a str>,
    pub role: &'a str,
    pub assertion: &'a str,
    pub client_ip: String,
    /// `http` or `https`: how the browser reached the gateway.
    pub proto: &'a str,
    /// `X-Forwarded-Host`: the public origin's host, or the request's.
    pub host: Option<HeaderValue>,
}

/// The headers sent upstream for `route`: the client's, less hop-by-hop
/// headers, [identity](is_identity) headers, `Host`, every header whose
/// name has an `_` (as nginx drops them by default: CGI-style servers read
/// `A_B` as `A-B`, so it could stand in for a header the gateway sets), and
/// every cookie but the route's own ([`cookies::upstream_cookie`]); plus the
/// gateway's identity headers, each once. An upgrade keeps its `Upgrade`.
pub fn request_headers(
    incoming: &HeaderMap,
    route: &str,
    upgrade: Option<&HeaderValue>,
    identity: &Identity<'_>,
) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 8);
    for (name, value) in incoming {
        if is_hop_by_hop(name)
            || listed.contains(name)
            || name.as_str().contains('_')
            || is_identity(name.as_str())
            || name == header::HOST
            || name == header::COOKIE
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(cookie) = cookies::upstream_cookie(route, incoming) {
        out.insert(header::COOKIE, cookie);
    }
    if let Some(host) = &identity.host {
        out.insert("x-forwarded-host", host.clone());
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::try_from(value) {
            out.insert(name, value);
        }
    };
    set(FORWARDED_USER, &identity.user_id);
    if let Some(email) = identity.email {
        set(FORWARDED_EMAIL, email);
    }
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
/// headers go (but a 101 keeps `Connection` and `Upgrade`), a redirect into
/// the upstream is turned into one under the route's prefix, cookies are
/// [the route's](cookies::browser_set_cookie), headers that would act on
/// the whole origin go, and every reply but a 101 is [marked](protect).
pub fn response_headers(
    route: &Route,
    session_cookie: &str,
    headers: &mut HeaderMap,
    switching: bool,
) {
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
    set_cookies(route, session_cookie, headers);
    for name in BEYOND_THE_ROUTE {
        headers.remove(*name);
    }
    if !switching {
        protect(route, headers);
    }
}

/// Response headers whose effect reaches past the route, so past what the
/// upstream may decide: `Clear-Site-Data` would clear the gateway's session
/// cookie and storage, `Service-Worker-Allowed` would let a worker
/// registered under the route control the gateway's pages.
const BEYOND_THE_ROUTE: &[&str] = &["clear-site-data", "service-worker-allowed"];

/// Replaces the upstream's `Set-Cookie`s by the route's versions of them.
fn set_cookies(route: &Route, session_cookie: &str, headers: &mut HeaderMap) {
    let values: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| cookies::browser_set_cookie(route, session_cookie, v))
        .filter_map(|v| HeaderValue::try_from(v).ok())
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in values {
        headers.append(header::SET_COOKIE, value);
    }
}

/// The sandbox of an isolated route: scripts, forms, popups (sandboxed
/// too), dialogs and downloads work, but in an opaque origin: no
/// `allow-same-origin`, so no access to the gateway's cookies, storage or
/// pages, and no credentialed same-site request to `/api/`.
pub const SANDBOX: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/// What every reply of `route` gets: `X-Content-Type-Options: nosniff` and
/// its `Cross-Origin-Resource-Policy` (unless its settings say otherwise),
/// and for an isolated route the [`SANDBOX`] (beside any policy of the
/// upstream's own: browsers enforce both).
fn protect(route: &Route, headers: &mut HeaderMap) {
    if route.nosniff {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if let Some(policy) = &route.resource_policy {
        headers.insert("cross-origin-resource-policy", policy.clone());
    }
    if route.isolate {
        headers.append(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX),
        );
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
pub(crate) mod tests {
    use super::*;
    use crate::proxy::settings::tests::route;

    fn identity() -> Identity<'static> {
        Identity {
            user_id: "7".into(),
            email: Some("ada@example.com"),
            role: "ADMIN",
            assertion: "jwt",
            client_ip: "10.1.2.3".into(),
            proto: "https",
            host: Some(HeaderValue::from_static("app.example")),
        }
    }

    /// A header map of `pairs`, in order (the proxy's tests share it).
    pub(crate) fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::try_from(*value).unwrap(),
            );
        }
        map
    }

    fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn identity_headers_are_recognized_however_spelled() {
        for name in [
            "X-Forwarded-User",
            "x_forwarded_user",
            "X-Forwarded_Email",
            "x-forwarded-groups",
            "X-FORWARDED-PREFERRED-USERNAME",
            "x-auth-assertion",
            "X_Auth_Request_Email",
            "x-remote-user",
            "X_REMOTE_GROUPS",
            "Remote-User",
            "remote_email",
            "X-WEBAUTH-USER",
            "x_webauth_role",
            "X-Original-URL",
            "X_Rewrite_Url",
            "Forwarded",
            "X-Real-IP",
            "True-Client-IP",
            "x_client_ip",
            "CF-Connecting-IP",
            "authorization",
        ] {
            assert!(is_identity(name), "{name}");
        }
        for name in [
            "accept",
            "x-request-id",
            "x-remotely",
            "remoteuser",
            "cookie",
        ] {
            assert!(!is_identity(name), "{name}");
        }
    }

    #[test]
    fn an_unverified_address_reaches_the_upstream_by_no_header() {
        let incoming = map(&[
            ("X-Forwarded-Email", "root@example.com"),
            ("x-auth-request-email", "root@example.com"),
        ]);
        let unverified = Identity {
            email: None,
            ..identity()
        };
        let out = request_headers(&incoming, "tool", None, &unverified);
        assert!(values(&out, "x-forwarded-email").is_empty());
        assert!(values(&out, "x-auth-request-email").is_empty());
        assert_eq!(values(&out, "x-forwarded-user"), ["7"]);
    }

    #[test]
    fn identity_headers_are_the_gateways_and_only_the_routes_cookies_pass() {
        let incoming = map(&[
            ("host", "app.example"),
            ("authorization", "Bearer stolen"),
            ("x-forwarded-user", "1"),
            ("x_forwarded_user", "1"),
            ("X-Forwarded-Email", "root@example.com"),
            ("x-forwarded-groups", "ADMIN"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=6.6.6.6"),
            ("x-auth-assertion", "forged"),
            ("x-real-ip", "6.6.6.6"),
            ("x-webauth-user", "admin"),
            ("remote_user", "root"),
            ("x_custom", "1"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            (
                "cookie",
                "theme=dark; __Host-natsauth=v1.sealed; tool.sid=a",
            ),
            ("cookie", "tool.lang=en; other.sid=b"),
            ("accept", "text/html"),
            ("x-request-id", "req-1"),
        ]);
        let out = request_headers(&incoming, "tool", None, &identity());
        let get = |n: &str| values(&out, n);
        assert_eq!(get("x-forwarded-user"), ["7"]);
        assert_eq!(get("x-forwarded-email"), ["ada@example.com"]);
        assert_eq!(get("x-forwarded-groups"), ["ADMIN"]);
        assert_eq!(get("x-forwarded-for"), ["10.1.2.3"]);
        assert_eq!(get("x-forwarded-proto"), ["https"]);
        assert_eq!(get("x-forwarded-host"), ["app.example"]);
        assert_eq!(get("x-auth-assertion"), ["jwt"]);
        assert_eq!(get("cookie"), ["sid=a; lang=en"]);
        assert_eq!(get("accept"), ["text/html"]);
        assert_eq!(get("x-request-id"), ["req-1"]);
        for (name, _) in &out {
            assert!(!name.as_str().contains('_'), "{name} was forwarded");
        }
        for gone in [
            "authorization",
            "forwarded",
            "x-real-ip",
            "x-webauth-user",
            "connection",
            "x-secret-hop",
            "te",
            "host",
        ] {
            assert!(get(gone).is_empty(), "{gone} was forwarded");
        }
        // No cookie of the route's: no Cookie header at all.
        let only = map(&[("cookie", "__Host-natsauth=x; theme=dark")]);
        let no_host = Identity {
            host: None,
            ..identity()
        };
        let out = request_headers(&only, "tool", None, &no_host);
        assert!(out.get(header::COOKIE).is_none());
        assert!(out.get("x-forwarded-host").is_none());
        // An upgrade keeps what it needs.
        let up = request_headers(
            &only,
            "tool",
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
    }

    #[test]
    fn replies_lose_hop_headers_and_the_session_cookie_and_are_marked() {
        let r = route("http://127.0.0.1:9000", true);
        let mut headers = map(&[
            ("location", "/next"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("set-cookie", "__Host-natsauth=evil; Path=/"),
            ("set-cookie", "sid=1; Path=/; Domain=x.example"),
            ("clear-site-data", "\"cookies\""),
            ("service-worker-allowed", "/"),
            ("x-content-type-options", "sniff-away"),
            ("content-security-policy", "default-src 'self'"),
        ]);
        response_headers(&r, "__Host-natsauth", &mut headers, false);
        assert_eq!(values(&headers, "location"), ["/proxy/tool/next"]);
        for gone in [
            "x-hop",
            "connection",
            "transfer-encoding",
            "clear-site-data",
            "service-worker-allowed",
        ] {
            assert!(headers.get(gone).is_none(), "{gone}");
        }
        assert_eq!(
            values(&headers, "set-cookie"),
            ["tool.sid=1; Path=/proxy/tool/"]
        );
        assert_eq!(values(&headers, "x-content-type-options"), ["nosniff"]);
        assert_eq!(
            values(&headers, "cross-origin-resource-policy"),
            ["same-origin"]
        );
        assert_eq!(
            values(&headers, "content-security-policy"),
            ["default-src 'self'"]
        );

        let mut isolated = route("http://127.0.0.1:9000", true);
        isolated.isolate = true;
        isolated.nosniff = false;
        isolated.resource_policy = None;
        let mut headers = map(&[("content-security-policy", "default-src 'self'")]);
        response_headers(&isolated, "__Host-natsauth", &mut headers, false);
        assert_eq!(
            values(&headers, "content-security-policy"),
            ["default-src 'self'", SANDBOX]
        );
        assert!(!SANDBOX.contains("allow-same-origin"));
        assert!(headers.get("x-content-type-options").is_none());
        assert!(headers.get("cross-origin-resource-policy").is_none());

        // A 101 keeps what the switch needs, and nothing is added to it.
        let mut switched = map(&[("connection", "upgrade"), ("upgrade", "websocket")]);
        response_headers(&isolated, "__Host-natsauth", &mut switched, true);
        assert_eq!(values(&switched, "upgrade"), ["websocket"]);
        assert!(switched.get("content-security-policy").is_none());
    }
}
