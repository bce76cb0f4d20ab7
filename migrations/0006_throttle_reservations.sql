-- Throttles that count an attempt before the password is checked, for
-- sign-ups as well as logins; and the sealed successor of a rotated refresh
-- token.

-- login_failures now counts attempts per key, reserved by one upsert before
-- an argon2 verification (so parallel guesses cannot all pass a check made
-- before any failure was recorded) and given back when the password was
-- right. A key is refused while its count in the current window is over its
-- limit. Scopes:
--   'pair'   an email from one client address (hard limit);
--   'ip'     a client address over every email (hard limit);
--   'email'  an email from every address (a slowdown only, never a refusal);
--   'signup' sign-ups from one client address.
-- locked_until is no longer written; it stays for copies of the previous
-- version still running during a rolling upgrade.
alter table login_failures drop constraint login_failures_scope;
alter table login_failures
    add constraint login_failures_scope check (scope in ('email', 'ip', 'pair', 'signup'));

-- On rotation, the next refresh token sealed (AES-256-GCM) under a key
-- derived from the token being spent. A client that lost the reply and
-- retries inside the grace window gets the current pair back; only the
-- holder of the spent token can open it, so a database dump still yields no
-- usable token.
alter table refresh_tokens add column successor bytea;

-- The purge looks rows up by these.
create index refresh_tokens_expires_at_idx on refresh_tokens (expires_at);
create index refresh_tokens_spent_at_idx on refresh_tokens (spent_at) where spent_at is not null;
create index sessions_expires_at_idx on sessions (expires_at);
create index sessions_revoked_at_idx on sessions (revoked_at) where revoked_at is not null;
create index login_failures_window_start_idx on login_failures (window_start);
