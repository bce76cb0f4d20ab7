-- Failed logins, counted per email and per client address. Kept in the
-- database so every copy of the auth worker (and every gateway in front of
-- them) sees the same counts.

create table login_failures (
    -- 'email' (the lower-cased address) or 'ip' (the client address).
    scope        text        not null,
    key          text        not null,
    -- Failures counted since window_start; a failure after the window starts
    -- a new one.
    window_start timestamptz not null default now(),
    failures     integer     not null default 0,
    -- Set when failures reach the threshold; logins for this key answer 429
    -- until then, even with the right password.
    locked_until timestamptz,
    primary key (scope, key),
    constraint login_failures_scope check (scope in ('email', 'ip'))
);
