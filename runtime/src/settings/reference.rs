//! The check that a process's reference files (`config/*.toml`) name every
//! key of its settings, for the test beside each process's settings.
//!
//! The keys come from the settings types, not from a list kept by hand: a
//! deserializer that holds no data walks the type, and each struct on the way
//! hands it the names of its fields (the list serde's derive passes to
//! `deserialize_struct`). So a field added to any settings struct, however
//! deeply nested, is a key the files must name, or the test fails.
//!
//! Limits of the walk: a value read through `deserialize_any` (an untagged
//! enum, a `deserialize_with` that accepts several shapes) is given an empty
//! list, so the walk does not see inside it; trace such a type on its own
//! with its table's path. `#[serde(flatten)]` fields are read as maps and
//! are not seen either.

use std::cell::RefCell;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor, value::Error,
};

/// The keys of `T`, read at the table `root` (`""` for a process's whole
/// settings), that none of `files` names, as `table.key`.
///
/// A file names the key `k` of the table `t` with a line `k = …` after the
/// header `[t]` (or `[[t]]`), or as a commented-out `# k = …` line (a
/// setting with no default), or with a header, commented out or not, of a
/// table under it (`[t.k]`, `# [[t.k]]`, `[t.k.<name>]`). A map's entries
/// are at `t.k.*`, where `*` stands for any one name.
///
/// Errors when `T` refuses the placeholders the walk gives it (say, an enum
/// whose first variant holds data).
pub fn undocumented<T: DeserializeOwned>(root: &str, files: &[&str]) -> Result<Vec<String>, Error> {
    let keys = RefCell::new(Vec::new());
    T::deserialize(Walk {
        path: root.to_owned(),
        keys: &keys,
    })?;
    let named = Named::read(files);
    Ok(keys
        .into_inner()
        .into_iter()
        .filter(|(table, key)| !named.names(table, key))
        .map(|(table, key)| join(&table, &key))
        .collect())
}

/// For a test: panics naming every setting of `T` (at `root`) that `files`
/// do not name (see [`undocumented`]).
#[track_caller]
pub fn assert_named<T: DeserializeOwned>(root: &str, files: &[&str]) {
    match undocumented::<T>(root, files) {
        Ok(missing) => assert!(
            missing.is_empty(),
            "settings missing from their config file: {missing:?}"
        ),
        Err(error) => panic!("the settings type cannot be walked: {error}"),
    }
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

/// What the files name: `(table, key)` pairs and table headers.
struct Named {
    keys: Vec<(String, String)>,
    headers: Vec<String>,
}

impl Named {
    fn read(files: &[&str]) -> Self {
        let mut named = Self {
            keys: Vec::new(),
            headers: Vec::new(),
        };
        for file in files {
            let mut table = String::new();
            for line in file.lines() {
                let line = line.trim();
                let line = line.strip_prefix('#').map_or(line, str::trim_start);
                if let Some(header) = header(line) {
                    table = header.to_owned();
                    named.headers.push(table.clone());
                } else if let Some((key, _)) = line.split_once('=') {
                    let key = key.trim();
                    if !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        named.keys.push((table.clone(), key.to_owned()));
                    }
                }
            }
        }
        named
    }

    /// Whether the key `key` of the table `table` (which may hold `*`) is
    /// named.
    fn names(&self, table: &str, key: &str) -> bool {
        let path = join(table, key);
        self.keys
            .iter()
            .any(|(t, k)| k == key && matches(table, t, false))
            || self.headers.iter().any(|h| matches(&path, h, true))
    }
}

/// `[a.b]` or `[[a.b]]` → `a.b`.
fn header(line: &str) -> Option<&str> {
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
    let inner = inner.trim();
    (!inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.\"".contains(&b)))
    .then_some(inner)
}

/// Whether the dotted `name` is `pattern` (a `*` segment matching any one),
/// or with `under`, a table under it.
fn matches(pattern: &str, name: &str, under: bool) -> bool {
    let split = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('.')
                .map(|p| p.trim_matches('"').to_owned())
                .collect()
        }
    };
    let (pattern, name) = (split(pattern), split(name));
    let long_enough = if under {
        name.len() >= pattern.len()
    } else {
        name.len() == pattern.len()
    };
    long_enough && pattern.iter().zip(&name).all(|(p, n)| p == "*" || p == n)
}

/// A deserializer without data: each struct records its fields at `path`
/// and is given every one of them; other values get a placeholder (zero,
/// `""`, `false`, one element, an enum's first variant).
struct Walk<'a> {
    path: String,
    keys: &'a RefCell<Vec<(String, String)>>,
}

impl<'a> Walk<'a> {
    /// The walk of the value at `key` of this table.
    fn at(&self, key: &str) -> Walk<'a> {
        Walk {
            path: join(&self.path, key),
            keys: self.keys,
        }
    }

    /// The walk of a value at this same path (a list's element).
    fn here(&self) -> Walk<'a> {
        Walk {
            path: self.path.clone(),
            keys: self.keys,
        }
    }
}

macro_rules! zero {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_u64(0)
        }
    )*};
}

macro_rules! empty_str {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_str("")
        }
    )*};
}

impl<'de> Deserializer<'de> for Walk<'_> {
    type Error = Error;

    /// A value of several accepted shapes: an empty list, which every such
    /// shape here takes (a list of routes, of roles, of names).
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Elements {
            walk: self,
            left: 0,
        })
    }

    zero!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
          deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
          deserialize_f32 deserialize_f64);
    empty_str!(deserialize_str deserialize_string deserialize_identifier);

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_char(' ')
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(&[])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(&[])
    }

    /// `Some`, so that an optional struct is walked too.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// One element, at the list's own path (`[[t.k]]` tables are at `t.k`).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Elements {
            walk: self,
            left: 1,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Elements {
            walk: self,
            left: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    /// One entry, whose value is at `path.*`.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Entries {
            walk: self,
            keys: MAP_ENTRY.iter(),
            map: true,
            current: "",
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.keys.borrow_mut().extend(
            fields
                .iter()
                .map(|field| (self.path.clone(), (*field).to_owned())),
        );
        visitor.visit_map(Entries {
            walk: self,
            keys: fields.iter(),
            map: false,
            current: "",
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let first = variants
            .first()
            .ok_or_else(|| de::Error::custom(format!("enum {name} has no variant")))?;
        visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(*first))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// A list's or tuple's elements: `left` of them.
struct Elements<'a> {
    walk: Walk<'a>,
    left: usize,
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.walk.here()).map(Some)
    }
}

/// The one entry a map is given: its value is at `<path>.*`.
const MAP_ENTRY: &[&str] = &["*"];

/// A struct's fields, or a map's one entry.
struct Entries<'a> {
    walk: Walk<'a>,
    keys: std::slice::Iter<'static, &'static str>,
    /// A map's: its key is a placeholder of the key's type.
    map: bool,
    current: &'static str,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(&key) = self.keys.next() else {
            return Ok(None);
        };
        self.current = key;
        if self.map {
            seed.deserialize(self.walk.here()).map(Some)
        } else {
            seed.deserialize(IntoDeserializer::<Error>::into_deserializer(key))
                .map(Some)
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.walk.at(self.current))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Demo {
        http: Http,
        tls: Option<Tls>,
        routes: Vec<Route>,
        timeouts_ms: HashMap<String, Lane>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Http {
        addr: String,
        password: Option<String>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tls {
        ca_file: std::path::PathBuf,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Route {
        upstream: String,
        roles: Vec<String>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Lane {
        limit: u32,
    }

    const NAMED: &str = "\
[http]
addr = \"127.0.0.1:1\"
# The password; none by default.
# password = \"…\"

# [tls]
# ca_file = \"ca.pem\"

# [[routes]]
# upstream = \"http://a:1\"
# roles = [\"ADMIN\"]

[timeouts_ms.fast]
limit = 1
";

    #[test]
    fn every_key_named_as_a_key_a_commented_key_or_a_table_passes() {
        assert_eq!(
            undocumented::<Demo>("", &[NAMED]).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_key_the_files_leave_out_is_reported_with_its_table() {
        let without = NAMED
            .replace("# password = \"…\"\n", "")
            .replace("# roles = [\"ADMIN\"]\n", "")
            .replace("limit = 1\n", "");
        assert_eq!(
            undocumented::<Demo>("", &[&without]).unwrap(),
            ["http.password", "routes.roles", "timeouts_ms.*.limit"]
        );
        // A key under another table does not count.
        let elsewhere = NAMED.replace("# password = \"…\"\n", "") + "[other]\npassword = 1\n";
        assert_eq!(
            undocumented::<Demo>("", &[&elsewhere]).unwrap(),
            ["http.password"]
        );
    }

    #[test]
    fn the_files_are_read_together_and_a_root_table_can_be_given() {
        let (http, rest) = NAMED.split_at(NAMED.find("# [tls]").unwrap());
        assert!(undocumented::<Demo>("", &[rest, http]).unwrap().is_empty());
        assert_eq!(
            undocumented::<Route>("routes", &["[[routes]]\nupstream = \"x\"\n"]).unwrap(),
            ["routes.roles"]
        );
    }
}
