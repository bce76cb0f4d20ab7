-- Posts, after the Prisma Post model. A post outlives its author: deleting a
-- user keeps their posts with no author.

create table posts (
    id         bigint      generated always as identity primary key,
    title      text        not null,
    content    text,
    published  boolean     not null default false,
    author_id  bigint      references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Paging walks ids in order; these keep "by author" and "published only"
-- pages index-only scans however deep the cursor.
create index posts_author_id_id_idx on posts (author_id, id);
create index posts_published_id_idx on posts (id) where published;
