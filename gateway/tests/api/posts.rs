//! Posts: drafts, visibility, ownership, paging.
