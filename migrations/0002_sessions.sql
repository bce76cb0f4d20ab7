-- Refresh-token sessions. A session is one login; each refresh exchanges the
-- session's current token for a new one (rotation). Presenting a token that
-- was already exchanged means it leaked, so the whole session is revoked.

create table sessions (
    id         uuid        primary key,
    user_id    bigint      not null references users (id) on delete cascade,
    created_at timestamptz not null default now(),
    -- The session ends here however often it is refreshed.
    expires_at timestamptz not null,
    revoked_at timestamptz
);

create index sessions_user_id_idx on sessions (user_id);

create table refresh_tokens (
    -- SHA-256 of the opaque token; the token itself is never stored, so a
    -- database dump yields no usable token. (High-entropy random tokens need
    -- no slow hash.)
    token_hash bytea       primary key,
    session_id uuid        not null references sessions (id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    -- Set when the token is exchanged for the next one.
    spent_at   timestamptz
);

create index refresh_tokens_session_id_idx on refresh_tokens (session_id);
