//! Posts as they travel, and the `post.*` subjects (served by the user worker).
//!
//! Who may see and change a post is decided by the worker from the caller:
//! a published post is public; a draft is visible only to its author and to
//! ADMINs (anyone else is told it does not exist); only the author or an
//! ADMIN may change or delete a post.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::{
    Caller, Done,
    endpoint::{endpoint, partial_update},
    paging::{Cursor, Limit, Page},
    types::{printable, trimmed},
    user::{self, SERVICE, UserId},
};

/// Ids are 64-bit integers (PostgreSQL `bigint`).
pub type PostId = i64;

/// Longest title, in characters.
pub const TITLE_MAX_CHARS: u64 = 200;
/// Longest content, in characters. Below the gateway's default 64 KiB body
/// limit for plain text, so a post that passes here also fits a request.
pub const CONTENT_MAX_CHARS: u64 = 50_000;

/// A post as every reply shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Post {
    #[schema(example = 1)]
    pub id: PostId,
    #[schema(example = "Notes on the Analytical Engine")]
    pub title: String,
    pub content: Option<String>,
    pub published: bool,
    /// Null once the author's account is deleted.
    #[schema(example = 1)]
    pub author_id: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Post {
    /// True when `author` wrote this post (false once the author is gone).
    pub fn is_by(&self, author: UserId) -> bool {
        self.author_id == Some(author)
    }
}

/// `post.create`, and the body of `POST /api/posts`. The author is the
/// caller. Missing fields decode as empty so every failing field is listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePost)]
pub struct CreateRequest {
    /// 1 to 200 characters, trimmed, no control characters.
    #[serde(default, deserialize_with = "trimmed")]
    #[validate(custom(function = "post_title"))]
    #[schema(
        example = "Notes on the Analytical Engine",
        required = true,
        min_length = 1,
        max_length = 200
    )]
    pub title: String,
    /// Up to 50 000 characters; blank means none. Line breaks and tabs are
    /// kept; other control characters are refused.
    #[serde(
        default,
        deserialize_with = "optional_content",
        skip_serializing_if = "Option::is_none"
    )]
    #[validate(custom(function = "post_content"))]
    #[schema(max_length = 50000)]
    pub content: Option<String>,
    /// False (a draft) unless sent.
    #[serde(default)]
    pub published: bool,
}

/// `post.get`: a published post, or a draft for its author or an ADMIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct GetRequest {
    #[validate(range(min = 1, message = "must be a positive id"))]
    pub id: PostId,
}

/// `post.list`, and the query of `GET /api/posts`: published posts, plus the
/// caller's own drafts, in id order, a page at a time.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema, IntoParams,
)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListRequest {
    #[serde(default)]
    #[param(inline)]
    pub limit: Limit,
    /// The `nextCursor` of the previous page; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(inline)]
    pub cursor: Option<Cursor>,
    /// Only this author's posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, message = "must be a positive id"))]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub author_id: Option<UserId>,
}

partial_update! {
    fields {
        /// A new title (1 to 200 characters); absent to keep, never null.
        #[serde(default, deserialize_with = "present_title", skip_serializing_if = "Option::is_none")]
        #[validate(custom(function = "post_title"))]
        #[schema(value_type = String, min_length = 1, max_length = 200)]
        pub title: Option<String>,
        /// New content; `null` or blank to clear, absent to keep.
        #[serde(default, deserialize_with = "clearable_content", skip_serializing_if = "Option::is_none")]
        #[validate(custom(function = "post_content"))]
        #[schema(value_type = Option<String>, max_length = 50000)]
        pub content: Option<Option<String>>,
        /// Publish (`true`) or withdraw to a draft (`false`); absent to keep.
        #[serde(default, deserialize_with = "user::present", skip_serializing_if = "Option::is_none")]
        #[schema(value_type = bool)]
        pub published: Option<bool>,
    }
    /// `post.update`: a partial update (author or ADMIN). Absent fields stay as
    /// they are; `content: null` (or blank) clears the content; `title` and
    /// `published` cannot be null.
    UpdateRequest {
        #[validate(range(min = 1, message = "must be a positive id"))]
        pub id: PostId,
    } {}
    /// The body of `PATCH /api/posts/{id}`.
    UpdatePost {} {}
}

impl UpdateRequest {
    /// True when the request changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.content.is_none() && self.published.is_none()
    }
}

impl UpdatePost {
    /// The `post.update` request for post `id`.
    pub fn for_post(self, id: PostId) -> UpdateRequest {
        UpdateRequest {
            id,
            title: self.title,
            content: self.content,
            published: self.published,
        }
    }
}

/// `post.delete`: author or ADMIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct DeleteRequest {
    #[validate(range(min = 1, message = "must be a positive id"))]
    pub id: PostId,
}

endpoint!(
    /// `post.create`: a post by the caller.
    Create, "post.create", "post_create", SERVICE, Caller, CreateRequest => Post
);
endpoint!(
    /// `post.get`: a post the caller may see.
    Get, "post.get", "post_get", SERVICE, Option<Caller>, GetRequest => Post
);
endpoint!(
    /// `post.list`: a page of published posts plus the caller's drafts.
    List, "post.list", "post_list", SERVICE, Option<Caller>, ListRequest => Page<Post>
);
endpoint!(
    /// `post.update`: title, content, published (author or ADMIN).
    Update, "post.update", "post_update", SERVICE, Caller, UpdateRequest => Post
);
endpoint!(
    /// `post.delete`: author or ADMIN.
    Delete, "post.delete", "post_delete", SERVICE, Caller, DeleteRequest => Done
);

/// A title: present, at most 200 characters, no control characters.
pub fn post_title(title: &str) -> Result<(), ValidationError> {
    if title.is_empty() {
        return Err(ValidationError::new("required").with_message("is required".into()));
    }
    if title.chars().count() as u64 > TITLE_MAX_CHARS {
        return Err(ValidationError::new("length")
            .with_message(format!("must be at most {TITLE_MAX_CHARS} characters").into()));
    }
    printable(title)
}

/// Content: at most 50 000 characters; tabs and line breaks are the only
/// control characters allowed (PostgreSQL cannot store NUL at all).
pub fn post_content(content: &str) -> Result<(), ValidationError> {
    if content.chars().count() as u64 > CONTENT_MAX_CHARS {
        return Err(ValidationError::new("length")
            .with_message(format!("must be at most {CONTENT_MAX_CHARS} characters").into()));
    }
    if content
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new("printable").with_message(
            "must not contain control characters other than tabs and line breaks".into(),
        ));
    }
    Ok(())
}

/// Content as sent (not trimmed: leading white space can matter), except that
/// blank content means none.
fn optional_content<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.trim().is_empty()))
}

/// [`optional_content`] in a partial update: absent stays `None`, `null` or
/// blank clears.
fn clearable_content<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    optional_content(deserializer).map(Some)
}

/// A title in a partial update: trimmed, and never `null`.
fn present_title<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    trimmed(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;

    fn failing_fields(v: &impl Validate) -> Vec<String> {
        let err = ServiceError::from(v.validate().unwrap_err());
        err.details.into_iter().map(|d| d.field).collect()
    }

    #[test]
    fn a_new_post_is_a_trimmed_draft_unless_published() {
        let req: CreateRequest =
            serde_json::from_str(r#"{"title":"  Hello  ","content":"  \n"}"#).unwrap();
        assert_eq!(req.title, "Hello");
        assert_eq!(req.content, None);
        assert!(!req.published);
        assert!(req.validate().is_ok());
        let kept: CreateRequest =
            serde_json::from_str(r#"{"title":"t","content":"    indented\n"}"#).unwrap();
        assert_eq!(kept.content.as_deref(), Some("    indented\n"));
    }

    #[test]
    fn a_new_post_lists_every_bad_or_missing_field() {
        let empty: CreateRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(failing_fields(&empty), ["title"]);
        let bad = CreateRequest {
            title: "x".repeat(201),
            content: Some("a\u{0}b".into()),
            published: true,
        };
        assert_eq!(failing_fields(&bad), ["content", "title"]);
        assert!(serde_json::from_str::<CreateRequest>(r#"{"title":"t","authorId":2}"#).is_err());
    }

    #[test]
    fn titles_and_content_have_their_limits() {
        assert!(post_title(&"é".repeat(200)).is_ok());
        assert!(post_title(&"é".repeat(201)).is_err());
        assert!(post_title("").is_err());
        assert!(post_title("a\tb").is_err());
        assert!(post_content(&"x".repeat(50_000)).is_ok());
        assert!(post_content(&"x".repeat(50_001)).is_err());
        assert!(post_content("line\r\nbreak\tand tab").is_ok());
        assert!(post_content("bell\u{7}").is_err());
    }

    #[test]
    fn a_post_update_keeps_absent_fields_clears_null_content_and_refuses_null_title() {
        let req: UpdatePost = serde_json::from_str(r#"{"content":null}"#).unwrap();
        assert_eq!(req.content, Some(None));
        assert_eq!(req.title, None);
        assert_eq!(req.published, None);
        assert!(serde_json::from_str::<UpdatePost>(r#"{"title":null}"#).is_err());
        assert!(serde_json::from_str::<UpdatePost>(r#"{"published":null}"#).is_err());
        let blank: UpdatePost = serde_json::from_str(r#"{"title":"   "}"#).unwrap();
        assert_eq!(failing_fields(&blank), ["title"]);
        let req = UpdatePost {
            content: Some(None),
            published: Some(true),
            ..UpdatePost::default()
        }
        .for_post(3);
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(json, r#"{"id":3,"content":null,"published":true}"#);
        assert_eq!(serde_json::from_str::<UpdateRequest>(&json).unwrap(), req);
        assert!(UpdatePost::default().for_post(3).is_empty());
    }

    #[test]
    fn a_list_request_takes_an_author_id_in_camel_case() {
        let req: ListRequest = serde_json::from_str(r#"{"authorId":4,"limit":5}"#).unwrap();
        assert_eq!(req.author_id, Some(4));
        assert_eq!(req.limit.get(), 5);
        let bad: ListRequest = serde_json::from_str(r#"{"authorId":0}"#).unwrap();
        assert_eq!(failing_fields(&bad), ["authorId"]);
    }

    #[test]
    fn a_post_serializes_in_camel_case_with_rfc3339_times() {
        let post = Post {
            id: 1,
            title: "t".into(),
            content: None,
            published: false,
            author_id: None,
            created_at: time::macros::datetime!(2026-01-01 0:00 UTC),
            updated_at: time::macros::datetime!(2026-01-01 0:00 UTC),
        };
        let json = serde_json::to_value(&post).unwrap();
        assert_eq!(json["authorId"], serde_json::Value::Null);
        assert_eq!(json["createdAt"], "2026-01-01T00:00:00Z");
        assert!(!post.is_by(1));
    }
}
