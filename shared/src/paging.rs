//! Keyset paging, shared by `user.list` and `post.list`.
//!
//! A page is `{items, nextCursor}`. Rows come in ascending `id` order and the
//! cursor is the last id of the previous page, so the next page is
//! `where id > $cursor order by id limit $n`: an index range scan that costs
//! the same on page 1000 as on page 1, and that neither skips nor repeats a
//! row when rows are inserted or deleted between pages (new rows have larger
//! ids and show up on a later page). An offset would do both.
//!
//! * [`Limit`]: the page size; 20 when absent, at most 100 (a larger value is
//!   capped), at least 1 (0 or a negative value is refused).
//! * [`Cursor`]: opaque to clients (base64url of the last id); a cursor that
//!   does not decode is refused.
//! * [`Page`]: the reply, built by [`Page::from_rows`] from one extra row.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, Type},
};

/// The page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 20;
/// The largest page; a larger `limit` is capped to this.
pub const MAX_LIMIT: u32 = 100;

/// A page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Limit(u32);

/// Why a `limit` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a positive integer")]
pub struct LimitError;

impl Limit {
    /// Caps a large value at [`MAX_LIMIT`]; refuses zero and negatives (a
    /// page of nothing is a client bug, not a request to clamp).
    pub fn parse(n: i64) -> Result<Self, LimitError> {
        if n < 1 {
            return Err(LimitError);
        }
        let capped = n.min(i64::from(MAX_LIMIT));
        u32::try_from(capped).map(Self).map_err(|_| LimitError)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// How many rows to ask the database for: one more than a page, so the
    /// extra row tells whether another page follows.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Limit {
    /// From a JSON number, or from a query string's text (`?limit=50`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(deserializer)
            .map_err(|_| de::Error::custom("limit must be a positive integer"))?;
        Self::parse(n).map_err(de::Error::custom)
    }
}

impl PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            // What an i64 holds; anything from 101 up is capped at 100.
            .maximum(Some(i64::MAX))
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .default(Some(DEFAULT_LIMIT.into()))
            .description(Some(format!(
                "Page size: {DEFAULT_LIMIT} by default; larger values are capped at {MAX_LIMIT}"
            )))
            .into()
    }
}

impl ToSchema for Limit {}

/// Where the next page starts: after the row with this id. Clients see it as
/// an opaque string (base64url of the id's 8 big-endian bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cursor(i64);

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not valid")]
pub struct CursorError;

impl Cursor {
    /// The cursor of a page whose last row has `id`.
    pub fn after(id: i64) -> Self {
        Self(id)
    }

    /// The id the next page starts after.
    pub fn last_id(self) -> i64 {
        self.0
    }

    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.to_be_bytes())
    }

    /// Any string of the documented shape, `^[A-Za-z0-9_-]{11}$` (11
    /// base64url characters carry 8 bytes and 2 spare bits, which are
    /// ignored). An id below 0 means "from the start": ids are positive.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            GeneralPurposeConfig::new()
                .with_decode_padding_mode(DecodePaddingMode::RequireNone)
                .with_decode_allow_trailing_bits(true),
        );
        if text.len() != 11 {
            return Err(CursorError);
        }
        let bytes = LENIENT.decode(text).map_err(|_| CursorError)?;
        let bytes: [u8; 8] = bytes.try_into().map_err(|_| CursorError)?;
        Ok(Self(i64::from_be_bytes(bytes).max(0)))
    }

    /// The id the next page starts after, or 0 (before every id) for the
    /// first page.
    pub fn start(cursor: Option<Self>) -> i64 {
        cursor.map_or(0, Self::last_id)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::decode(&text).map_err(de::Error::custom)
    }
}

impl PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Opaque: pass a page's `nextCursor` back to get the page after it",
            ))
            .pattern(Some("^[A-Za-z0-9_-]{11}$"))
            .examples([serde_json::json!("AAAAAAAAABQ")])
            .into()
    }
}

impl ToSchema for Cursor {}

pub use page::Page;

// utoipa's `ToSchema` derive for a generic type writes a qualified path that
// the `unused_qualifications` lint flags; an allow on the struct does not
// reach the generated impl, an allow on its module does.
#[allow(unused_qualifications)]
mod page {
    use serde::{Deserialize, Serialize};
    use utoipa::ToSchema;

    use super::{Cursor, Limit};

    /// One page of a list: `{items, nextCursor}`; `nextCursor` is null on the
    /// last page.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Page<T> {
        pub items: Vec<T>,
        pub next_cursor: Option<Cursor>,
    }

    impl<T> Page<T> {
        /// Builds a page from the rows of a query that asked for
        /// [`Limit::fetch`] rows in ascending id order: an extra row means
        /// another page follows, starting after the last row kept.
        pub fn from_rows(mut rows: Vec<T>, limit: Limit, id: impl Fn(&T) -> i64) -> Self {
            let page = limit.get() as usize;
            let next_cursor = if rows.len() > page {
                rows.truncate(page);
                rows.last().map(|row| Cursor::after(id(row)))
            } else {
                None
            };
            Self {
                items: rows,
                next_cursor,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_defaults_to_20_and_is_capped_at_100() {
        assert_eq!(Limit::default().get(), 20);
        assert_eq!(Limit::parse(1).unwrap().get(), 1);
        assert_eq!(Limit::parse(100).unwrap().get(), 100);
        assert_eq!(Limit::parse(101).unwrap().get(), 100);
        assert_eq!(Limit::parse(i64::MAX).unwrap().get(), 100);
        assert_eq!(Limit::parse(20).unwrap().fetch(), 21);
    }

    #[test]
    fn a_limit_of_zero_or_less_is_refused() {
        assert_eq!(Limit::parse(0), Err(LimitError));
        assert_eq!(Limit::parse(-5), Err(LimitError));
        assert!(serde_json::from_str::<Limit>("0").is_err());
        assert!(serde_json::from_str::<Limit>("2.5").is_err());
        assert!(serde_json::from_str::<Limit>("\"20\"").is_err());
    }

    #[test]
    fn a_limit_reads_from_a_query_string() {
        #[derive(Deserialize)]
        struct Q {
            #[serde(default)]
            limit: Limit,
        }
        let parse = |q: &str| serde_urlencoded::from_str::<Q>(q).map(|q| q.limit.get());
        assert_eq!(parse("").unwrap(), 20);
        assert_eq!(parse("limit=50").unwrap(), 50);
        assert_eq!(parse("limit=500").unwrap(), 100);
        for bad in ["limit=0", "limit=-1", "limit=ten", "limit="] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cursor_round_trips_as_an_opaque_string() {
        for id in [0, 1, 20, 45, i64::MAX] {
            let cursor = Cursor::after(id);
            let text = cursor.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(Cursor::decode(&text), Ok(cursor));
            let json = serde_json::to_string(&cursor).unwrap();
            assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), cursor);
        }
    }

    #[test]
    fn a_cursor_that_does_not_decode_is_refused() {
        let short = URL_SAFE_NO_PAD.encode([0u8; 4]);
        let padded = format!("{}=", Cursor::after(5).encode());
        for bad in [
            "",
            "!!!",
            "not a cursor",
            "42",
            &short,
            &padded,
            "AAAAAAAAAA!",
        ] {
            assert_eq!(Cursor::decode(bad), Err(CursorError), "{bad:?}");
        }
        // Every string of the documented shape is a cursor; a negative id
        // means "from the start".
        let negative = URL_SAFE_NO_PAD.encode((-1i64).to_be_bytes());
        assert_eq!(Cursor::decode(&negative), Ok(Cursor::after(0)));
        assert!(Cursor::decode("__________8").is_ok());
        assert!(serde_json::from_str::<Cursor>("\"@@\"").is_err());
        assert!(serde_json::from_str::<Cursor>("42").is_err());
    }

    #[test]
    fn a_page_keeps_limit_rows_and_points_after_the_last_one() {
        let limit = Limit::parse(3).unwrap();
        let full = Page::from_rows(vec![1, 2, 3, 4], limit, |r| *r);
        assert_eq!(full.items, [1, 2, 3]);
        assert_eq!(full.next_cursor, Some(Cursor::after(3)));
        let last = Page::from_rows(vec![7, 8, 9], limit, |r| *r);
        assert_eq!(last.items, [7, 8, 9]);
        assert_eq!(last.next_cursor, None);
        let empty = Page::from_rows(Vec::<i64>::new(), limit, |r| *r);
        assert_eq!(empty.next_cursor, None);
        let json = serde_json::to_value(&last).unwrap();
        assert_eq!(json["nextCursor"], serde_json::Value::Null);
    }

    #[test]
    fn the_first_page_starts_before_every_id() {
        assert_eq!(Cursor::start(None), 0);
        assert_eq!(Cursor::start(Some(Cursor::after(9))), 9);
    }
}
