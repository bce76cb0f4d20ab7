//! Cookies across the proxy. Each route's cookies live in the browser under
//! the route's name prefix (`<route>.<name>`) and under its path
//! (`/proxy/<route>/…`, as oauth2-proxy and Pomerium's path-based routes
//! scope them); the upstream sees them under its own names, and nothing
//! else: not the gateway's session cookie, not another route's cookies,
//! not a cookie some page of this origin set for the whole site. The
//! gateway's session cookie crosses in neither direction. Pure functions,
//! tested here.

use axum::http::{HeaderMap, HeaderValue, header};

use super::settings::Route;

/// The browser's name prefix for `route`'s cookies (route names have no
/// `.`, so no prefix is another's).
pub fn namespace(route: &str) -> String {
    format!("{route}.")
}

/// The `Cookie` header for `route`'s upstream: the browser's cookies named
/// `<route>.…`, under the names the upstream gave them; `None` when there
/// are none.
pub fn upstream_cookie(route: &str, incoming: &HeaderMap) -> Option<HeaderValue> {
    let prefix = namespace(route);
    let pairs: Vec<&str> = incoming
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(prefix.as_str()))
        .filter(|pair| {
            pair.split_once('=')
                .is_some_and(|(n, _)| !n.trim().is_empty())
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    HeaderValue::try_from(pairs.join("; ")).ok()
}

/// An upstream's `Set-Cookie` as the browser gets it: renamed
/// `<route>.<name>`, its `Path` [under the route](cookie_path), without
/// `Domain`, its other attributes as sent. `None` drops it: a cookie
/// without a name (whose value a browser sends bare, so it could pass for
/// any `name=value`), or one named like the gateway's session cookie.
pub fn browser_set_cookie(route: &Route, session_cookie: &str, value: &str) -> Option<String> {
    let mut parts = value.split(';');
    let (name, cookie_value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || same_name(name, session_cookie) {
        return None;
    }
    let mut out = format!("{}{name}={}", namespace(&route.name), cookie_value.trim());
    for attribute in parts.map(str::trim).filter(|a| !a.is_empty()) {
        let (key, path) = match attribute.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (attribute, ""),
        };
        if key.eq_ignore_ascii_case("domain") {
            continue;
        }
        if key.eq_ignore_ascii_case("path") {
            // Without a path starting with `/`, the browser takes the
            // request's directory, which is under the route already.
            if path.starts_with('/') {
                out.push_str("; Path=");
                out.push_str(&cookie_path(route, path));
            }
            continue;
        }
        out.push_str("; ");
        out.push_str(attribute);
    }
    Some(out)
}

/// Whether two cookie names are the same to a browser or a lenient server:
/// case aside, and with or without `__Host-` or `__Secure-`.
fn same_name(a: &str, b: &str) -> bool {
    fn bare(name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        ["__host-", "__secure-"]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))
            .unwrap_or(&lower)
            .to_owned()
    }
    bare(a) == bare(b)
}

/// An upstream cookie's path, under the route: the upstream's own path
/// space mapped onto the prefix as its redirects are (`/app` of an upstream
/// at `/` is `/proxy/<route>/app`); anything else, or anything with a dot
/// segment, an escape or a backslash, is the route's root.
fn cookie_path(route: &Route, path: &str) -> String {
    let root = format!("{}/", route.prefix);
    if path.contains(['%', '\\']) || path.split('/').any(|s| s == "." || s == "..") {
        return root;
    }
    let mapped = if route.strip_prefix {
        path.strip_prefix(route.base_path.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .map(|rest| {
                format!(
                    "{}{}",
                    route.prefix,
                    if rest.is_empty() { "/" } else { rest }
                )
            })
    } else {
        Some(path.to_owned())
    };
    mapped.filter(|p| p.starts_with(&root)).unwrap_or(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::tests::route;

    const SESSION: &str = "__Host-natsauth";

    #[test]
    fn the_gateways_cookie_is_never_set_by_an_upstream_however_spelled() {
        let r = route("http://127.0.0.1:9000", true);
        for value in [
            "__Host-natsauth=x; Path=/; Secure",
            "__HOST-NATSAUTH=x",
            "__host-natsauth=x",
            "__Secure-natsauth=x; Secure",
            "natsauth=x",
            "NatsAuth=x; Path=/proxy/tool/",
            " natsauth =x",
            "=__Host-natsauth=x",
            "=x",
            "novalue",
            "",
        ] {
            assert_eq!(browser_set_cookie(&r, SESSION, value), None, "{value:?}");
        }
        assert!(browser_set_cookie(&r, SESSION, "natsauth2=x").is_some());
    }

    #[test]
    fn upstream_cookies_are_renamed_and_scoped_to_the_route() {
        let r = route("http://127.0.0.1:9000", true);
        let set = |v: &str| browser_set_cookie(&r, SESSION, v).unwrap();
        assert_eq!(
            set("sid=a b=c; Path=/; Domain=tool.example; HttpOnly; SameSite=Lax"),
            "tool.sid=a b=c; Path=/proxy/tool/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            set("s=1; path=/app; DOMAIN=.x"),
            "tool.s=1; Path=/proxy/tool/app"
        );
        assert_eq!(
            set("s=1; Path=/proxy/other/"),
            "tool.s=1; Path=/proxy/tool/proxy/other/"
        );
        assert_eq!(set("s=1; Path=/a/../../"), "tool.s=1; Path=/proxy/tool/");
        assert_eq!(set("s=1; Path=/a%2f..%2f"), "tool.s=1; Path=/proxy/tool/");
        assert_eq!(set("s=1; Path=relative"), "tool.s=1");
        assert_eq!(
            set("__Host-s=1; Secure; Max-Age=60; Partitioned"),
            "tool.__Host-s=1; Secure; Max-Age=60; Partitioned"
        );
        let based = route("http://127.0.0.1:9000/base", true);
        let set = |v: &str| browser_set_cookie(&based, SESSION, v).unwrap();
        assert_eq!(set("s=1; Path=/base/x"), "tool.s=1; Path=/proxy/tool/x");
        assert_eq!(set("s=1; Path=/base"), "tool.s=1; Path=/proxy/tool/");
        assert_eq!(set("s=1; Path=/basement"), "tool.s=1; Path=/proxy/tool/");
        let kept = route("http://127.0.0.1:9000", false);
        let set = |v: &str| browser_set_cookie(&kept, SESSION, v).unwrap();
        assert_eq!(
            set("s=1; Path=/proxy/tool/x"),
            "tool.s=1; Path=/proxy/tool/x"
        );
        assert_eq!(
            set("s=1; Path=/proxy/toolbox"),
            "tool.s=1; Path=/proxy/tool/"
        );
        assert_eq!(set("s=1; Path=/"), "tool.s=1; Path=/proxy/tool/");
    }

    #[test]
    fn the_upstream_gets_only_its_own_cookies_under_their_own_names() {
        let mut incoming = HeaderMap::new();
        for value in [
            "__Host-natsauth=sealed; tool.sid=a; other.sid=b; theme=dark",
            "tool.lang=en;tool.=x; tool.novalue; TOOL.up=1",
        ] {
            incoming.append(header::COOKIE, HeaderValue::from_static(value));
        }
        assert_eq!(
            upstream_cookie("tool", &incoming).unwrap(),
            "sid=a; lang=en"
        );
        assert_eq!(upstream_cookie("toolbox", &incoming), None);
        assert_eq!(upstream_cookie("tool", &HeaderMap::new()), None);
    }
}
