//! The user worker's SQL, inline and lowercase, one file per table (and
//! `outbox`, the events of its changes).
//!
//! Lists are keyset pages: `id > $after order by id limit $n`, served by the
//! primary key or by `posts_author_id_id_idx` / `posts_published_id_idx`, so
//! a deep page costs what the first does (see [`shared::paging`]).

pub mod outbox;
pub mod posts;
pub mod users;
