//! Where a request goes upstream: its path, which must stay under the
//! route, and its query, less the parameters the route drops. Pure
//! functions, tested here.

use axum::http::Uri;
use percent_encoding::percent_decode;

use super::settings::Route;

/// The 400's message for a path refused by [`upstream_uri`].
pub const REFUSED: &str = "path would leave the route";

/// The upstream URL of a request under `route`: the route's base path, then
/// the path under the prefix (or the whole path, without `strip_prefix`),
/// then the query less [`Route::drop_query`]. `None` when the path
/// [leaves the route](leaves_route).
pub fn upstream_uri(route: &Route, uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let rest = path.strip_prefix(route.prefix.as_str())?;
    if !(rest.is_empty() || rest.starts_with('/')) || leaves_route(rest) {
        return None;
    }
    let sent = if route.strip_prefix { rest } else { path };
    let sent = if sent.is_empty() { "/" } else { sent };
    let query = uri
        .query()
        .map(|q| kept_query(q, &route.drop_query))
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    Uri::builder()
        .scheme(route.scheme.clone())
        .authority(route.authority.clone())
        .path_and_query(format!("{}{sent}{query}", route.base_path))
        .build()
        .ok()
}

/// Whether a path under the prefix could resolve outside it for a server
/// that decodes it once or twice: a `.` or `..` segment (also as Tomcat
/// reads `..;x`), a backslash (a separator on Windows and for some
/// normalizers), or an encoded `/` or `\` that a decoding would turn into a
/// separator. Checked raw, once decoded and twice decoded.
pub fn leaves_route(rest: &str) -> bool {
    let raw = rest.as_bytes();
    let once: Vec<u8> = percent_decode(raw).collect();
    let twice: Vec<u8> = percent_decode(&once).collect();
    [raw, &once, &twice].iter().any(|form| has_escape(form))
        || [raw, &once].iter().any(|form| has_encoded_separator(form))
}

/// A backslash, or a segment that is `.` or `..` before any `;` parameter.
fn has_escape(path: &[u8]) -> bool {
    path.contains(&b'\\')
        || path.split(|b| *b == b'/').any(|segment| {
            let name = segment.split(|b| *b == b';').next().unwrap_or_default();
            name == b"." || name == b".."
        })
}

/// `%2F` or `%5C`, in any case.
fn has_encoded_separator(path: &[u8]) -> bool {
    path.windows(3).any(|w| {
        w[0] == b'%' && (w[1..].eq_ignore_ascii_case(b"2f") || w[1..].eq_ignore_ascii_case(b"5c"))
    })
}

/// `query` without the parameters named in `drop` (compared
/// case-insensitively, after percent- and `+`-decoding), the rest byte for
/// byte. A `&`-separated pair goes whole when any of its `;`-separated
/// parts is dropped, for servers that also split on `;`.
pub fn kept_query(query: &str, drop: &[String]) -> String {
    if drop.is_empty() {
        return query.to_owned();
    }
    let dropped = |part: &str| {
        let name = part.split('=').next().unwrap_or_default().replace('+', " ");
        let name = percent_decode(name.as_bytes()).decode_utf8_lossy();
        drop.iter().any(|d| d.eq_ignore_ascii_case(name.trim()))
    };
    query
        .split('&')
        .filter(|pair| !pair.split(';').any(dropped))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::tests::route;

    fn sent(route: &Route, path: &str) -> Option<String> {
        upstream_uri(route, &path.parse().unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn the_path_and_query_go_under_the_upstreams_base_path() {
        let r = route("http://127.0.0.1:9000", true);
        assert_eq!(
            sent(&r, "/proxy/tool/varz?a=1&b=%2F").unwrap(),
            "http://127.0.0.1:9000/varz?a=1&b=%2F"
        );
        assert_eq!(sent(&r, "/proxy/tool/").unwrap(), "http://127.0.0.1:9000/");
        let based = route("http://127.0.0.1:9000/base/", true);
        assert_eq!(
            sent(&based, "/proxy/tool/x").unwrap(),
            "http://127.0.0.1:9000/base/x"
        );
        assert_eq!(
            sent(&based, "/proxy/tool/").unwrap(),
            "http://127.0.0.1:9000/base/"
        );
        let kept = route("http://127.0.0.1:9000", false);
        assert_eq!(
            sent(&kept, "/proxy/tool/x?q").unwrap(),
            "http://127.0.0.1:9000/proxy/tool/x?q"
        );
        // Only what the router sent here: under the prefix, at a boundary.
        assert_eq!(sent(&r, "/proxy/toolbox/x"), None);
        assert_eq!(sent(&r, "/elsewhere"), None);
    }

    #[test]
    fn a_path_that_would_leave_the_route_once_or_twice_decoded_is_refused() {
        let r = route("http://127.0.0.1:9000/base", true);
        for path in [
            "/proxy/tool/../secret",
            "/proxy/tool/a/./b",
            "/proxy/tool/..",
            "/proxy/tool/%2e%2e/secret",
            "/proxy/tool/%2E./x",
            "/proxy/tool/%2e%2e%2fsecret",
            "/proxy/tool/..;/secret",
            "/proxy/tool/a/..;jsessionid=x/b",
            "/proxy/tool/.;/x",
            "/proxy/tool/%2e%2e;x/y",
            "/proxy/tool/a%2fb",
            "/proxy/tool/a%2Fb",
            "/proxy/tool/a%5cb",
            "/proxy/tool/a%5C..%5Cb",
            "/proxy/tool/%252e%252e/x",
            "/proxy/tool/%252E%252E%252Fx",
            "/proxy/tool/a%252fb",
            "/proxy/tool/a%255Cb",
            "/proxy/tool/%25%32%65%25%32%65/x",
        ] {
            assert_eq!(sent(&r, path), None, "{path}");
        }
        for rest in ["/a\\b", "/..\\x", "/a%5c"] {
            assert!(leaves_route(rest), "{rest}");
        }
        for fine in [
            "/proxy/tool/..hidden/x",
            "/proxy/tool/a..b/.c/...",
            "/proxy/tool/%41%20b",
            "/proxy/tool/;x/y",
            "/proxy/tool/a?p=../..%2f",
        ] {
            assert!(sent(&r, fine).is_some(), "{fine}");
        }
    }

    #[test]
    fn dropped_query_parameters_go_however_they_are_spelled() {
        let drop = vec!["callback".to_owned()];
        let kept = |q: &str| kept_query(q, &drop);
        assert_eq!(kept("callback=f"), "");
        assert_eq!(kept("a=1&callback=f&b=%2F"), "a=1&b=%2F");
        assert_eq!(kept("CallBack=f&%63allback=g&callback+=h&x"), "x");
        assert_eq!(kept("a=1;callback=f&b=2"), "b=2");
        assert_eq!(kept("callbacks=1&a=callback"), "callbacks=1&a=callback");
        assert_eq!(kept_query("callback=f", &[]), "callback=f");
        let r = route("http://127.0.0.1:9000", true);
        assert_eq!(
            sent(&r, "/proxy/tool/varz?callback=f").unwrap(),
            "http://127.0.0.1:9000/varz"
        );
    }
}
