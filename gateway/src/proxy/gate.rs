//! What a request's head must say before anything is sent upstream: the
//! host it is for (with a public origin), the upgrade it asks for
//! (WebSocket only), and, for a cookie-authenticated request, where it
//! comes from. Pure functions, tested here.

use axum::http::{HeaderMap, HeaderValue, Method, Uri, header, uri::Authority};

use crate::error::ApiError;

/// Where a cookie-authenticated request comes from, by its Fetch Metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Same origin, the user's own navigation (`none`), a top-level
    /// navigation from elsewhere, or a safe method without metadata.
    Passes,
    /// Another site, or a sibling subdomain (`same-site`): refused.
    Refused,
    /// No Fetch Metadata and a method other than `GET`, `HEAD`, `OPTIONS`:
    /// its `Origin` decides, as for the API.
    AskOrigin,
}

/// The verdict on a cookie-authenticated request, whatever its method (a
/// tool may act on `PURGE`, `PROPFIND` or `MKCOL` as on `POST`).
pub fn site(method: &Method, headers: &HeaderMap) -> Site {
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        Some(b"same-origin" | b"none") => Site::Passes,
        Some(_) if top_level_navigation(method, headers) => Site::Passes,
        Some(_) => Site::Refused,
        None if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) => Site::Passes,
        None => Site::AskOrigin,
    }
}

/// A person following a link or typing the address: `GET`/`HEAD`,
/// `Sec-Fetch-Mode: navigate`, and a document (not a frame).
fn top_level_navigation(method: &Method, headers: &HeaderMap) -> bool {
    let is = |name: &str, value: &[u8]| headers.get(name).is_some_and(|v| v.as_bytes() == value);
    matches!(*method, Method::GET | Method::HEAD)
        && is("sec-fetch-mode", b"navigate")
        && (headers.get("sec-fetch-dest").is_none() || is("sec-fetch-dest", b"document"))
}

/// The host the upstream is told in `X-Forwarded-Host`. With a public
/// origin (`session.public_origin`), its host, and the request must be for
/// it (a 400 otherwise: a tool building links from that header would send
/// people to whatever host a client named); without, the request's own.
pub fn forwarded_host(
    public_origin: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, ApiError> {
    let requested = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(Authority::as_str));
    let public = public_origin.trim_end_matches('/');
    if public.is_empty() {
        return Ok(requested.and_then(|h| HeaderValue::try_from(h).ok()));
    }
    let public: Uri = public
        .parse()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("session.public_origin is no URL: {e}")))?;
    let (Some(scheme), Some(authority)) = (public.scheme_str(), public.authority()) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "session.public_origin has no scheme or host"
        )));
    };
    if !requested.is_some_and(|host| same_authority(host, authority, scheme)) {
        return Err(ApiError::BadRequest(
            "the request's Host is not this gateway's public origin".into(),
        ));
    }
    Ok(HeaderValue::try_from(authority.as_str()).ok())
}

/// `host` (a `Host` header) names `public`: same host, case aside, and same
/// port once the scheme's default is filled in.
fn same_authority(host: &str, public: &Authority, scheme: &str) -> bool {
    let default = if scheme == "https" { 443 } else { 80 };
    let port = |a: &Authority| a.port_u16().unwrap_or(default);
    !host.contains('@')
        && host.parse::<Authority>().is_ok_and(|requested| {
            requested.host().eq_ignore_ascii_case(public.host()) && port(&requested) == port(public)
        })
}

/// The upgrade a request asks for (`Connection: upgrade`): `Some` for a
/// WebSocket opened with `GET`, `None` for no upgrade (a lone `Upgrade`
/// header is hop-by-hop and goes), 400 for anything else, so an upstream
/// that speaks h2c or another protocol is never asked to switch to it.
pub fn websocket_upgrade(
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, ApiError> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return Ok(None);
    }
    let protocols: Vec<&HeaderValue> = headers.get_all(header::UPGRADE).iter().collect();
    match protocols.as_slice() {
        [one] if is_websocket(one) && *method == Method::GET => Ok(Some((*one).clone())),
        _ => Err(ApiError::BadRequest(
            "only a WebSocket upgrade on GET is proxied".into(),
        )),
    }
}

/// `websocket`, in any case (what a `101` must name too).
pub fn is_websocket(protocol: &HeaderValue) -> bool {
    protocol
        .to_str()
        .is_ok_and(|p| p.trim().eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::forward::tests::map as headers;

    #[test]
    fn another_site_passes_only_as_a_top_level_navigation_whatever_the_method() {
        let verdict = |method: &str, pairs: &[(&str, &str)]| {
            site(
                &Method::from_bytes(method.as_bytes()).unwrap(),
                &headers(pairs),
            )
        };
        for from in ["same-site", "cross-site", "bogus"] {
            for method in [
                "GET", "HEAD", "OPTIONS", "POST", "PURGE", "PROPFIND", "MKCOL",
            ] {
                assert_eq!(
                    verdict(
                        method,
                        &[("sec-fetch-site", from), ("sec-fetch-mode", "cors")]
                    ),
                    Site::Refused,
                    "{from} {method}"
                );
            }
            let navigate = [("sec-fetch-site", from), ("sec-fetch-mode", "navigate")];
            assert_eq!(verdict("GET", &navigate), Site::Passes);
            assert_eq!(verdict("HEAD", &navigate), Site::Passes);
            assert_eq!(verdict("POST", &navigate), Site::Refused);
            assert_eq!(verdict("PROPFIND", &navigate), Site::Refused);
            let framed = [
                ("sec-fetch-site", from),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "iframe"),
            ];
            assert_eq!(verdict("GET", &framed), Site::Refused);
        }
        for ours in ["same-origin", "none"] {
            assert_eq!(verdict("PURGE", &[("sec-fetch-site", ours)]), Site::Passes);
        }
        for safe in ["GET", "HEAD", "OPTIONS"] {
            assert_eq!(verdict(safe, &[]), Site::Passes);
        }
        for method in ["POST", "PURGE", "PROPFIND", "MKCOL", "X-ANYTHING"] {
            assert_eq!(verdict(method, &[]), Site::AskOrigin);
        }
    }

    #[test]
    fn with_a_public_origin_the_upstream_hears_of_it_and_no_other_host_passes() {
        let uri: Uri = "/proxy/tool/".parse().unwrap();
        let host = |origin: &str, host: &str| {
            forwarded_host(origin, &uri, &headers(&[("host", host)]))
                .map(|h| h.map(|h| h.to_str().unwrap().to_owned()))
        };
        assert_eq!(
            host("", "127.0.0.1:8080").unwrap().unwrap(),
            "127.0.0.1:8080"
        );
        let public = "https://Tools.Example/";
        assert_eq!(
            host(public, "tools.example").unwrap().unwrap(),
            "Tools.Example"
        );
        assert!(host(public, "TOOLS.EXAMPLE:443").is_ok());
        for other in [
            "tools.example:8443",
            "tools.example.evil",
            "evil.example",
            "x@tools.example",
            "",
        ] {
            assert!(
                matches!(host(public, other), Err(ApiError::BadRequest(_))),
                "{other}"
            );
        }
        assert!(host("http://tools.example:8080", "tools.example:8080").is_ok());
        assert!(host("http://tools.example:8080", "tools.example").is_err());
        // HTTP/2 carries the host in the URI.
        let absolute: Uri = "https://tools.example/proxy/tool/".parse().unwrap();
        assert!(forwarded_host(public, &absolute, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn only_a_websocket_upgrade_on_get_is_asked_for() {
        let up =
            |method: Method, pairs: &[(&str, &str)]| websocket_upgrade(&method, &headers(pairs));
        let ws = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ];
        assert_eq!(up(Method::GET, &ws).unwrap().unwrap(), "WebSocket");
        assert!(up(Method::POST, &ws).is_err());
        for protocol in ["h2c", "websocket, h2c", "TLS/1.2", ""] {
            let asks = [
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", protocol),
            ];
            assert!(up(Method::GET, &asks).is_err(), "{protocol}");
        }
        let twice = [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("upgrade", "h2c"),
        ];
        assert!(up(Method::GET, &twice).is_err());
        assert!(up(Method::GET, &[("connection", "upgrade")]).is_err());
        // No `Connection: upgrade`: no upgrade (its `Upgrade` is dropped).
        assert_eq!(up(Method::GET, &[("upgrade", "h2c")]).unwrap(), None);
        assert_eq!(up(Method::GET, &[]).unwrap(), None);
    }
}
