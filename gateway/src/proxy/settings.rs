//! `[proxy]` settings: the protected upstreams, checked once at start.
//!
//! A file may list routes as a table array or as tables by name; the
//! environment addresses them by name
//! (`GATEWAY_PROXY__ROUTES__<NAME>__<KEY>`). Every key, and its default, is
//! described in `config/gateway.toml`.

use std::{collections::BTreeMap, fmt, time::Duration};

use anyhow::{Context, bail, ensure};
use axum::http::{
    HeaderValue, Uri,
    uri::{Authority, Scheme},
};
use serde::{Deserialize, Deserializer, de};
use shared::{
    Role,
    auth::{PROXY_AUDIENCE_PREFIX, is_route_name},
};

/// `[proxy]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxySettings {
    /// The protected upstreams (none by default).
    #[serde(default)]
    pub routes: RouteList,
}

/// The routes, from a table array or from tables keyed by name.
#[derive(Debug, Clone, Default)]
pub struct RouteList(pub Vec<RouteSettings>);

/// One protected upstream as configured (see `config/gateway.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// `a-z`, `0-9`, `-`; in the keyed form, the key.
    #[serde(default)]
    pub name: String,
    /// Default `/proxy/<name>`.
    #[serde(default)]
    pub prefix: String,
    /// `http://host:port`, optionally with a base path.
    pub upstream: String,
    /// A list, or one comma-separated string (what a variable can hold).
    #[serde(deserialize_with = "roles")]
    pub roles: Vec<Role>,
    /// For the upstream's response head only.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "yes")]
    pub strip_prefix: bool,
    /// Replies get `Content-Security-Policy: sandbox …`.
    #[serde(default)]
    pub isolate: bool,
    /// Query parameters never forwarded: a list, or one comma-separated
    /// string.
    #[serde(default = "default_drop_query", deserialize_with = "names")]
    pub drop_query: Vec<String>,
    #[serde(default = "yes")]
    pub nosniff: bool,
    /// `same-origin`, `same-site`, `cross-origin`, or `""` for the
    /// upstream's own.
    #[serde(default = "default_resource_policy")]
    pub cross_origin_resource_policy: String,
    /// Only users whose address is verified may open the route (default);
    /// without it, an unverified user passes with no `X-Forwarded-Email`.
    #[serde(default = "yes")]
    pub require_verified_email: bool,
    /// `required`: only a session that proved a second factor passes; a
    /// navigation without one is sent to `/mfa?next=…` (302), any other
    /// request gets 401 with RFC 9470's `insufficient_user_authentication`
    /// challenge. `optional` (default): the upstream decides from the
    /// assertion's `amr`. A route whose roles are only ADMIN is `required`
    /// while `mfa.require_for_admin` is on.
    #[serde(default)]
    pub mfa: Mfa,
    /// Seconds since the session last proved a factor (its `auth_time`)
    /// after which it must prove one again, as if it had none (the 401's
    /// challenge then says `max_age`). 0 (default): no limit. Only with
    /// `mfa = "required"`.
    #[serde(default)]
    pub max_auth_age: u64,
}

/// A route's second-factor rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mfa {
    /// Anyone the roles admit (the assertion still says how they signed in).
    #[default]
    Optional,
    /// Only a session with a second factor.
    Required,
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_drop_query() -> Vec<String> {
    vec!["callback".to_owned()]
}

fn default_resource_policy() -> String {
    "same-origin".to_owned()
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for RouteList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            List(Vec<RouteSettings>),
            ByName(BTreeMap<String, RouteSettings>),
        }
        match Shape::deserialize(deserializer).map_err(|_| {
            de::Error::custom(
                "proxy.routes: expected [[proxy.routes]] tables or [proxy.routes.<name>] tables, \
                 each with at least `upstream` and `roles` (and only the known keys)",
            )
        })? {
            Shape::List(list) => Ok(Self(list)),
            Shape::ByName(map) => Ok(Self(
                map.into_iter()
                    .map(|(name, route)| RouteSettings {
                        name: if route.name.is_empty() {
                            name
                        } else {
                            route.name
                        },
                        ..route
                    })
                    .collect(),
            )),
        }
    }
}

/// A list of roles, or one string of comma-separated roles (what an
/// environment variable can hold); case does not matter.
fn roles<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Role>, D::Error> {
    names(deserializer)?
        .iter()
        .map(|r| role(r).map_err(de::Error::custom))
        .collect()
}

/// A list of strings, or one string of comma-separated ones; blanks go.
fn names<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Names;
    impl<'de> de::Visitor<'de> for Names {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list, or a comma-separated string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(n) = seq.next_element::<String>()? {
                if !n.trim().is_empty() {
                    out.push(n.trim().to_owned());
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Names)
}

fn role(name: &str) -> Result<Role, String> {
    match name.to_ascii_uppercase().as_str() {
        "USER" => Ok(Role::User),
        "ADMIN" => Ok(Role::Admin),
        _ => Err(format!("unknown role {name:?} (USER or ADMIN)")),
    }
}

/// A route, checked and ready to serve.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// `/proxy/nats` (no trailing slash).
    pub prefix: String,
    /// `proxy:<name>` (shared with the assertion cache's keys).
    pub audience: std::sync::Arc<str>,
    pub roles: Vec<Role>,
    pub timeout: Duration,
    pub strip_prefix: bool,
    /// `http`.
    pub scheme: Scheme,
    pub authority: Authority,
    /// The upstream URL's path without its trailing slash (`""` for none).
    pub base_path: String,
    /// Replies are sandboxed (see [`RouteSettings::isolate`]).
    pub isolate: bool,
    /// Query parameter names never forwarded.
    pub drop_query: Vec<String>,
    pub nosniff: bool,
    /// `Cross-Origin-Resource-Policy` for every reply, if any.
    pub resource_policy: Option<HeaderValue>,
    /// Refuses users whose address is not verified (see
    /// [`RouteSettings::require_verified_email`]).
    pub require_verified_email: bool,
    /// The second-factor rule as configured (see [`Route::requires_mfa`]
    /// for the one applied).
    pub mfa: Mfa,
    /// A factor older than this must be proved again; `None`: no limit.
    pub max_auth_age: Option<Duration>,
}

impl Route {
    /// Whether only a session with a second factor may pass: the route says
    /// so, or it admits only ADMIN and `require_for_admin` (the
    /// `mfa.require_for_admin` setting) is on.
    pub fn requires_mfa(&self, require_for_admin: bool) -> bool {
        self.mfa == Mfa::Required || (require_for_admin && self.roles == [Role::Admin])
    }

    /// Whether a session authenticated by `amr` at `auth_time` (Unix
    /// seconds) must prove a factor (again) to pass, at `now`: `Err` is the
    /// refusal, with the route's `max_age` when it has one.
    pub fn step_up(
        &self,
        require_for_admin: bool,
        amr: &[String],
        auth_time: i64,
        now: i64,
    ) -> Result<(), crate::error::ApiError> {
        if !self.requires_mfa(require_for_admin) {
            return Ok(());
        }
        let max_age = self.max_auth_age.map(|age| age.as_secs());
        let too_old = max_age.is_some_and(|age| {
            now.saturating_sub(auth_time) > i64::try_from(age).unwrap_or(i64::MAX)
        });
        if shared::mfa::amr::has_second_factor(amr) && !too_old {
            Ok(())
        } else {
            Err(crate::error::ApiError::StepUpRequired { max_age })
        }
    }
}

/// Paths the gateway itself serves: no route may take them over.
const RESERVED: &[&str] = &[
    "/api",
    "/assets",
    "/login",
    "/signup",
    "/account",
    "/mfa",
    "/dashboard",
    "/healthz",
    "/readyz",
    "/metrics",
];

impl ProxySettings {
    /// The routes, each checked: a clear error names the route and the
    /// setting at fault.
    pub fn routes(&self) -> anyhow::Result<Vec<Route>> {
        let mut routes: Vec<Route> = Vec::new();
        for settings in &self.routes.0 {
            let route = settings
                .check()
                .with_context(|| format!("proxy route {:?}", settings.name))?;
            for other in &routes {
                ensure!(
                    other.name != route.name,
                    "two proxy routes are named {:?}",
                    route.name
                );
                ensure!(
                    !nested(&other.prefix, &route.prefix) && !nested(&route.prefix, &other.prefix),
                    "proxy routes {:?} ({}) and {:?} ({}) overlap",
                    other.name,
                    other.prefix,
                    route.name,
                    route.prefix
                );
            }
            routes.push(route);
        }
        Ok(routes)
    }
}

/// Whether `inner` is `outer` or under it.
fn nested(outer: &str, inner: &str) -> bool {
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

impl RouteSettings {
    fn check(&self) -> anyhow::Result<Route> {
        ensure!(
            is_route_name(&self.name),
            "name must be 1 to 64 of a-z, 0-9 and -"
        );
        let prefix = self.prefix()?;
        let (scheme, authority, base_path) = self.upstream()?;
        ensure!(!self.roles.is_empty(), "roles must name USER and/or ADMIN");
        ensure!(self.timeout_ms > 0, "timeout_ms must be positive");
        ensure!(
            self.max_auth_age == 0 || self.mfa == Mfa::Required,
            "max_auth_age needs mfa = \"required\" (a factor's age means nothing where none \
             is asked for)"
        );
        let mut roles = self.roles.clone();
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        Ok(Route {
            audience: format!("{PROXY_AUDIENCE_PREFIX}{}", self.name).into(),
            name: self.name.clone(),
            prefix,
            roles,
            timeout: Duration::from_millis(self.timeout_ms),
            strip_prefix: self.strip_prefix,
            scheme,
            authority,
            base_path,
            isolate: self.isolate,
            drop_query: self.drop_query.clone(),
            nosniff: self.nosniff,
            resource_policy: self.resource_policy()?,
            require_verified_email: self.require_verified_email,
            mfa: self.mfa,
            max_auth_age: (self.max_auth_age > 0).then(|| Duration::from_secs(self.max_auth_age)),
        })
    }

    /// The route's path prefix: `/proxy/<name>` unless given, a plain path
    /// that overlaps nothing the gateway serves itself.
    fn prefix(&self) -> anyhow::Result<String> {
        let prefix = if self.prefix.is_empty() {
            format!("/proxy/{}", self.name)
        } else {
            self.prefix.trim_end_matches('/').to_owned()
        };
        ensure!(
            prefix.starts_with('/')
                && prefix.len() > 1
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
                && !prefix.contains("//")
                && !prefix.split('/').any(|s| s == "." || s == ".."),
            "prefix {prefix:?} must be a path like /proxy/tool (letters, digits, - . _ ~)"
        );
        if let Some(taken) = RESERVED
            .iter()
            .find(|r| nested(r, &prefix) || nested(&prefix, r))
        {
            bail!("prefix {prefix} overlaps {taken}, which the gateway serves itself");
        }
        Ok(prefix)
    }

    /// The upstream's scheme, authority and base path (without its final
    /// `/`): `http://host:port[/path]`, with no query and no user info.
    fn upstream(&self) -> anyhow::Result<(Scheme, Authority, String)> {
        let uri: Uri = self
            .upstream
            .parse()
            .with_context(|| format!("upstream {:?} is not a URL", self.upstream))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            bail!(
                "upstream {:?} must be http://host:port[/path]",
                self.upstream
            );
        };
        ensure!(
            scheme.as_str() == "http",
            "upstream {:?}: only http:// upstreams (internal services) are supported",
            self.upstream
        );
        ensure!(
            uri.query().is_none() && !authority.as_str().contains('@'),
            "upstream {:?} must have no query and no user info",
            self.upstream
        );
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok((scheme.clone(), authority.clone(), base_path))
    }

    fn resource_policy(&self) -> anyhow::Result<Option<HeaderValue>> {
        Ok(match self.cross_origin_resource_policy.as_str() {
            "" => None,
            policy @ ("same-origin" | "same-site" | "cross-origin") => {
                Some(HeaderValue::from_str(policy)?)
            }
            other => bail!(
                "cross_origin_resource_policy {other:?} must be same-origin, same-site, \
                 cross-origin or empty"
            ),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A route `tool` at `/proxy/tool` to `upstream`, with the defaults.
    pub(crate) fn route(upstream: &str, strip_prefix: bool) -> Route {
        let toml = format!(
            "[[proxy.routes]]\nname = \"tool\"\nupstream = \"{upstream}\"\nroles = \"ADMIN\"\n\
             timeout_ms = 1000\nstrip_prefix = {strip_prefix}\n"
        );
        load(&toml).unwrap().remove(0)
    }

    fn load(toml: &str) -> anyhow::Result<Vec<Route>> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            proxy: ProxySettings,
        }
        let doc: Doc = runtime::settings::load(&[toml], None, "PROXY_SETTINGS_TEST_UNUSED")?;
        doc.proxy.routes()
    }

    #[test]
    fn the_config_file_names_every_key_of_a_route() {
        // `RouteList` reads its routes through an untagged enum, which the
        // walk of the gateway's settings cannot see inside, so a route is
        // walked here at its own table.
        runtime::settings::reference::assert_named::<RouteSettings>(
            "proxy.routes",
            &[include_str!("../../../config/gateway.toml")],
        );
    }

    #[test]
    fn routes_come_as_a_table_array_or_keyed_by_name() {
        let list = load(
            "[[proxy.routes]]\nname = \"nats\"\nupstream = \"http://127.0.0.1:8222\"\n\
             roles = [\"ADMIN\"]\n",
        )
        .unwrap();
        assert_eq!(list[0].prefix, "/proxy/nats");
        assert_eq!(&*list[0].audience, "proxy:nats");
        assert_eq!(list[0].roles, vec![Role::Admin]);
        assert!(list[0].strip_prefix);
        assert_eq!(list[0].timeout, Duration::from_secs(30));
        let keyed = load(
            "[proxy.routes.tool]\nprefix = \"/back-office/\"\n\
             upstream = \"http://127.0.0.1:9000/base/\"\nroles = \"user, ADMIN\"\n\
             timeout_ms = 500\nstrip_prefix = false\n",
        )
        .unwrap();
        let tool = &keyed[0];
        assert_eq!(tool.name, "tool");
        assert_eq!(tool.prefix, "/back-office");
        assert_eq!(tool.base_path, "/base");
        assert_eq!(tool.authority.as_str(), "127.0.0.1:9000");
        assert_eq!(tool.roles.len(), 2);
        assert!(!tool.strip_prefix);
        assert!(load("").unwrap().is_empty());
    }

    #[test]
    fn every_route_drops_jsonp_and_is_marked_unless_told_otherwise() {
        let plain = route("http://127.0.0.1:9000", true);
        assert_eq!(plain.drop_query, ["callback"]);
        assert!(plain.nosniff && !plain.isolate);
        assert!(plain.require_verified_email);
        assert_eq!(plain.resource_policy.unwrap(), "same-origin");
        let told = load(
            "[proxy.routes.tool]\nupstream = \"http://127.0.0.1:9000\"\nroles = \"ADMIN\"\n\
             isolate = true\ndrop_query = \"jsonp, cb\"\nnosniff = false\n\
             cross_origin_resource_policy = \"\"\nrequire_verified_email = false\n",
        )
        .unwrap()
        .remove(0);
        assert!(told.isolate && !told.nosniff && !told.require_verified_email);
        assert_eq!(told.drop_query, ["jsonp", "cb"]);
        assert_eq!(told.resource_policy, None);
        let none = load(
            "[proxy.routes.tool]\nupstream = \"http://127.0.0.1:9000\"\nroles = \"ADMIN\"\n\
             drop_query = []\ncross_origin_resource_policy = \"same-site\"\n",
        )
        .unwrap()
        .remove(0);
        assert!(none.drop_query.is_empty());
        assert_eq!(none.resource_policy.unwrap(), "same-site");
        let bad = load(
            "[proxy.routes.tool]\nupstream = \"http://127.0.0.1:9000\"\nroles = \"ADMIN\"\n\
             cross_origin_resource_policy = \"anyone\"\n",
        );
        assert!(format!("{:#}", bad.unwrap_err()).contains("cross_origin_resource_policy"));
    }

    /// A route `tool` for `roles` with the extra `keys`.
    fn with(roles: &str, keys: &str) -> anyhow::Result<Route> {
        load(&format!(
            "[proxy.routes.tool]\nupstream = \"http://127.0.0.1:9000\"\nroles = \"{roles}\"\n{keys}"
        ))
        .map(|mut routes| routes.remove(0))
    }

    #[test]
    fn a_route_asks_for_a_second_factor_only_when_told_or_when_it_is_for_admins() {
        let plain = with("USER,ADMIN", "").unwrap();
        assert_eq!(plain.mfa, Mfa::Optional);
        assert_eq!(plain.max_auth_age, None);
        assert!(!plain.requires_mfa(true));
        let required = with("USER,ADMIN", "mfa = \"required\"\nmax_auth_age = 300\n").unwrap();
        assert_eq!(required.mfa, Mfa::Required);
        assert_eq!(required.max_auth_age, Some(Duration::from_secs(300)));
        assert!(required.requires_mfa(false));
        let admins = with("ADMIN", "mfa = \"optional\"\n").unwrap();
        assert!(admins.requires_mfa(true) && !admins.requires_mfa(false));
        assert!(with("USER", "mfa = \"sometimes\"\n").is_err());
        assert!(with("USER", "mfa = \"Required\"\n").is_err());
    }

    #[test]
    fn max_auth_age_without_a_required_factor_is_refused_naming_the_route() {
        let error = format!("{:#}", with("ADMIN", "max_auth_age = 60\n").unwrap_err());
        assert!(
            error.contains("\"tool\"") && error.contains("max_auth_age"),
            "{error}"
        );
        assert!(with("ADMIN", "mfa = \"optional\"\nmax_auth_age = 0\n").is_ok());
    }

    #[test]
    fn a_session_steps_up_without_a_second_factor_or_with_one_too_old() {
        let amr = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let now = 10_000;
        let required = with("USER", "mfa = \"required\"\n").unwrap();
        assert!(
            required
                .step_up(false, &amr(&["pwd", "otp"]), 0, now)
                .is_ok()
        );
        assert!(
            required
                .step_up(false, &amr(&["pwd", "hwk"]), 0, now)
                .is_ok()
        );
        assert!(matches!(
            required.step_up(false, &amr(&["pwd"]), now, now),
            Err(crate::error::ApiError::StepUpRequired { max_age: None })
        ));
        let recent = with("USER", "mfa = \"required\"\nmax_auth_age = 300\n").unwrap();
        assert!(
            recent
                .step_up(false, &amr(&["pwd", "otp"]), now - 300, now)
                .is_ok()
        );
        assert!(matches!(
            recent.step_up(false, &amr(&["pwd", "otp"]), now - 301, now),
            Err(crate::error::ApiError::StepUpRequired { max_age: Some(300) })
        ));
        assert!(matches!(
            recent.step_up(false, &amr(&["pwd"]), now, now),
            Err(crate::error::ApiError::StepUpRequired { max_age: Some(300) })
        ));
        let admins = with("ADMIN", "").unwrap();
        assert!(admins.step_up(true, &amr(&["pwd"]), now, now).is_err());
        assert!(admins.step_up(false, &amr(&["pwd"]), now, now).is_ok());
        let everyone = with("USER,ADMIN", "").unwrap();
        assert!(everyone.step_up(true, &amr(&["pwd"]), now, now).is_ok());
    }

    #[test]
    fn no_route_takes_over_the_step_up_page() {
        let error = format!(
            "{:#}",
            with("USER", "prefix = \"/mfa/tool\"\n").unwrap_err()
        );
        assert!(error.contains("overlaps /mfa"), "{error}");
    }

    #[test]
    fn a_bad_route_is_refused_with_what_is_wrong() {
        let bad = [
            (
                "name = \"Bad Name\"\nupstream = \"http://a:1\"\nroles = \"ADMIN\"",
                "name",
            ),
            (
                "name = \"a\"\nupstream = \"https://a:1\"\nroles = \"ADMIN\"",
                "only http",
            ),
            (
                "name = \"a\"\nupstream = \"a:1\"\nroles = \"ADMIN\"",
                "http://host",
            ),
            (
                "name = \"a\"\nupstream = \"http://a:1\"\nroles = \"ROOT\"",
                "expected",
            ),
            (
                "name = \"a\"\nupstream = \"http://a:1\"\nroles = \"\"",
                "roles",
            ),
            (
                "name = \"a\"\nprefix = \"/api/x\"\nupstream = \"http://a:1\"\nroles = \"ADMIN\"",
                "overlaps /api",
            ),
            (
                "name = \"a\"\nprefix = \"/\"\nupstream = \"http://a:1\"\nroles = \"ADMIN\"",
                "prefix",
            ),
            (
                "name = \"a\"\nprefix = \"/x/../api\"\nupstream = \"http://a:1\"\nroles = \"ADMIN\"",
                "prefix",
            ),
            (
                "name = \"a\"\nprefix = \"/{x}\"\nupstream = \"http://a:1\"\nroles = \"ADMIN\"",
                "prefix",
            ),
            (
                "name = \"a\"\nupstream = \"http://u@a:1\"\nroles = \"ADMIN\"",
                "user info",
            ),
        ];
        for (route, expected) in bad {
            let error = load(&format!("[[proxy.routes]]\n{route}\n")).unwrap_err();
            let text = format!("{error:#}");
            assert!(text.contains(expected), "{route}: {text}");
        }
        let twice = "[[proxy.routes]]\nname = \"a\"\nupstream = \"http://a:1\"\nroles = \"ADMIN\"\n\
                     [[proxy.routes]]\nname = \"b\"\nprefix = \"/proxy/a/b\"\n\
                     upstream = \"http://a:1\"\nroles = \"ADMIN\"\n";
        assert!(format!("{:#}", load(twice).unwrap_err()).contains("overlap"));
    }
}
