//! Addresses: a free port of 127.0.0.1, and PostgreSQL URLs changed or shown
//! without their password. On `std` alone and always built (without the
//! `stack` feature too), so that `xtask` uses these very functions without
//! compiling the harness.

use std::net::{Ipv4Addr, TcpListener};

/// Where [`free_port`] hands out ports: below Linux's ephemeral range
/// (32768–60999 by default), so no outgoing connection takes a port between
/// the check here and the server's own bind.
const PORTS: std::ops::Range<u32> = 10_000..32_000;

/// A port of 127.0.0.1 that nothing listens on (for a process that must be
/// told its port, or a server that comes back on the same one).
///
/// Each port is handed out once per process: asking the kernel for port 0
/// and letting it go can give two callers the same port, and then one test's
/// requests reach the other's gateway (a first sign-up answered 409, logins
/// 429 from a throttle the test had lifted). Processes start at a different
/// place in the range (by process id), and a port something else already
/// holds is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};

    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let span = PORTS.end - PORTS.start;
    let start = std::process::id().wrapping_mul(7919) % span;
    loop {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "every port of {PORTS:?} was handed out");
        let port = u16::try_from(PORTS.start + (start + n) % span).expect("in range");
        if port_is_free(port) {
            return port;
        }
    }
}

/// Whether nothing listens on 127.0.0.1:`port` (it could be bound now).
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// `postgres://user[:password]@127.0.0.1:port/database`.
pub fn loopback_url(user: &str, password: Option<&str>, port: u16, database: &str) -> String {
    let password = password.map(|p| format!(":{p}")).unwrap_or_default();
    format!("postgres://{user}{password}@127.0.0.1:{port}/{database}")
}

/// Where the authority of `url` (`scheme://[user[:password]@]host[:port]`)
/// starts and ends, if it has a scheme.
fn authority(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    Some((start, end))
}

/// `url` (`postgres://…/db?params`) with its database replaced by
/// `database`, credentials and parameters kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let path_start = authority(base).map_or(base.len(), |(_, end)| end);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` (`postgres://[user[:password]@]host…`) as `user`, without a
/// password (one comes from a password file, or loopback is trusted).
pub fn with_user(url: &str, user: &str) -> String {
    let Some((start, end)) = authority(url) else {
        return url.to_owned();
    };
    let host_on = match url[start..end].rfind('@') {
        Some(at) => &url[start + at + 1..],
        None => &url[start..],
    };
    format!("{}{user}@{host_on}", &url[..start])
}

/// `url` with its password shown as `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((start, end)) = authority(url) else {
        return url.to_owned();
    };
    let Some(at) = url[start..end].rfind('@').map(|at| start + at) else {
        return url.to_owned();
    };
    match url[start..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_handed_out_once_and_only_when_nothing_holds_it() {
        let first = free_port();
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, first)).expect("bind");
        assert!(!port_is_free(first));
        let second = free_port();
        assert_ne!(second, first);
        assert!(port_is_free(second));
        drop(held);
    }

    #[test]
    fn a_loopback_url_names_user_password_port_and_database() {
        assert_eq!(
            loopback_url("postgres", None, 5432, "postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            loopback_url("postgres", Some("pw"), 15432, "natsauth"),
            "postgres://postgres:pw@127.0.0.1:15432/natsauth"
        );
    }

    #[test]
    fn the_database_of_a_url_is_replaced_keeping_credentials_and_parameters() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "natsauth"),
            "postgres://postgres@127.0.0.1:5432/natsauth"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/x?sslmode=disable", "natsauth"),
            "postgres://u:p@h:1/natsauth?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h", "natsauth"),
            "postgres://u@h/natsauth"
        );
        assert_eq!(
            with_database("postgresql://h:5/?application_name=a", "d"),
            "postgresql://h:5/d?application_name=a"
        );
    }

    #[test]
    fn a_url_changes_user_and_loses_its_password() {
        assert_eq!(
            with_user(
                "postgres://postgres:pw@127.0.0.1:5432/natsauth?x=1",
                "natsauth_migrator"
            ),
            "postgres://natsauth_migrator@127.0.0.1:5432/natsauth?x=1"
        );
        assert_eq!(
            with_user("postgres://127.0.0.1/postgres", "r"),
            "postgres://r@127.0.0.1/postgres"
        );
        assert_eq!(with_user("not a url", "r"), "not a url");
    }

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/postgres"),
            "postgres://app:***@db:5432/postgres"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/postgres"),
            "postgres://postgres@127.0.0.1/postgres"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
