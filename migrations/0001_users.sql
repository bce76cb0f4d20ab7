-- Users and their roles, after the Prisma User model this system descends from.

-- The role is a database enum so no other value can ever be stored.
create type role as enum ('USER', 'ADMIN');

create table users (
    id            bigint generated always as identity primary key,
    -- Stored as the user typed it (trimmed by the workers); uniqueness and
    -- look-ups ignore case through the index below.
    email         text        not null,
    -- An argon2id PHC string. It never leaves the auth-worker.
    password_hash text        not null,
    firstname     text,
    lastname      text,
    role          role        not null default 'USER',
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    -- A plain-text or weaker hash can never be stored by mistake.
    constraint users_password_hash_argon2id check (password_hash like '$argon2id$%')
);

-- One account per email, compared case-insensitively. The name is what the
-- auth-worker maps a unique violation by ("email already registered").
create unique index users_email_key on users (lower(email));
