//! Posts as they travel, and the `post.*` subjects (served by the user worker).
