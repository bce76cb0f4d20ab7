//! What the sessions list and the `session.created` event say about the
//! client of a login: the browser family and system ("Firefox on Linux"),
//! never the whole `User-Agent`, and the client's network, never its
//! address.

use std::net::IpAddr;

use shared::headers::ClientAddress;

/// The browser (or tool) and the system a `User-Agent` names, e.g.
/// "Chrome on Android"; either alone when only one is known; `None` when
/// neither is.
pub fn family(user_agent: &str) -> Option<String> {
    let ua = user_agent.trim();
    // Tools name themselves first; their versions and platforms say nothing
    // a user would recognise.
    const TOOLS: &[(&str, &str)] = &[
        ("curl/", "curl"),
        ("Wget/", "Wget"),
        ("python-requests/", "Python requests"),
        ("Python-urllib/", "Python"),
        ("Go-http-client/", "Go"),
        ("okhttp/", "OkHttp"),
        ("PostmanRuntime/", "Postman"),
        ("HTTPie/", "HTTPie"),
    ];
    if let Some((_, name)) = TOOLS.iter().find(|(prefix, _)| ua.starts_with(prefix)) {
        return Some((*name).to_owned());
    }
    let has = |needle: &str| ua.contains(needle);
    // Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari",
    // Android says "Linux", iOS says "like Mac OS X".
    let browser = if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("SamsungBrowser/") {
        Some("Samsung Internet")
    } else if has("Chromium/") {
        Some("Chromium")
    } else if has("Chrome/") || has("CriOS/") {
        Some("Chrome")
    } else if has("Safari/") && has("Version/") {
        Some("Safari")
    } else {
        None
    };
    let system = if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPad") || has("iPod") {
        Some("iOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Macintosh") || has("Mac OS X") {
        Some("macOS")
    } else if has("Linux") || has("X11") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(b), Some(s)) => Some(format!("{b} on {s}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

/// The client's network: an IPv4 /24 ("203.0.113.0/24", also for an IPv4
/// address mapped into IPv6) or an IPv6 /48 ("2001:db8:1::/48").
pub fn network(client: ClientAddress) -> String {
    match client.masked() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{prefix}/48")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(ua: &str) -> Option<String> {
        family(ua)
    }

    #[test]
    fn browsers_are_named_with_their_system() {
        assert_eq!(
            f("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0").as_deref(),
            Some("Firefox on Linux")
        );
        assert_eq!(
            f("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36").as_deref(),
            Some("Chrome on Android")
        );
        assert_eq!(
            f("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15").as_deref(),
            Some("Safari on macOS")
        );
        assert_eq!(
            f("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1").as_deref(),
            Some("Safari on iOS")
        );
        assert_eq!(
            f("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0").as_deref(),
            Some("Edge on Windows")
        );
        assert_eq!(
            f("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36").as_deref(),
            Some("Chrome on Windows")
        );
    }

    #[test]
    fn tools_are_named_alone() {
        assert_eq!(f("curl/8.5.0").as_deref(), Some("curl"));
        assert_eq!(
            f("python-requests/2.32").as_deref(),
            Some("Python requests")
        );
    }

    #[test]
    fn nothing_known_is_none() {
        assert_eq!(f(""), None);
        assert_eq!(f("something/1.0"), None);
    }

    #[test]
    fn networks_are_a_24_or_a_48() {
        let n = |s: &str| network(ClientAddress(s.parse().unwrap()));
        assert_eq!(n("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(n("::ffff:198.51.100.9"), "198.51.100.0/24");
        assert_eq!(n("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
    }
}
