-- The second factor: an authenticator app (TOTP) with recovery codes, and
-- passkeys (WebAuthn); the pending logins between the password and the
-- factor; and how each session was authenticated.

-- How the session was authenticated (RFC 8176 values: 'pwd', 'otp', 'hwk')
-- and when it last did (its login, or its last step-up with a factor).
-- Sessions made before this migration were password logins.
alter table sessions add column amr text[] not null default '{pwd}';
alter table sessions add column auth_time timestamptz;
update sessions set auth_time = created_at;
alter table sessions alter column auth_time set default now();
alter table sessions alter column auth_time set not null;

-- One authenticator app per user. The secret is sealed (AES-256-GCM, key
-- from the auth-worker's `mfa.key_file`, the user id as associated data):
-- a database dump alone yields no code. Unconfirmed until the first code;
-- `last_step` is the last time step accepted, so no code is taken twice.
create table totp_factors (
    user_id      bigint      primary key references users (id) on delete cascade,
    secret       bytea       not null,
    created_at   timestamptz not null default now(),
    confirmed_at timestamptz,
    last_step    bigint
);

-- Single-use recovery codes: SHA-256 of the code (a code is 50 random
-- bits, so a fast hash of it is as good as a slow one of a password).
create table recovery_codes (
    user_id   bigint      not null references users (id) on delete cascade,
    code_hash bytea       not null,
    used_at   timestamptz,
    primary key (user_id, code_hash)
);

-- Passkeys: the credential as webauthn-rs keeps it (public key, counter,
-- backup state), its id, and the name the user gave it.
create table passkeys (
    id            uuid        primary key,
    user_id       bigint      not null references users (id) on delete cascade,
    credential_id bytea       not null unique,
    name          text        not null,
    credential    jsonb       not null,
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz
);

create index passkeys_user_id_idx on passkeys (user_id);

-- A password login waiting for its second factor: not a session. Only the
-- SHA-256 of its token is kept; it lasts minutes, allows a few tries, and
-- is spent by the login it completes. Where the login came from is kept
-- for the session it becomes.
create table mfa_pending (
    token_hash bytea       primary key,
    user_id    bigint      not null references users (id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    failures   integer     not null default 0,
    user_agent text,
    network    text
);

create index mfa_pending_expires_at_idx on mfa_pending (expires_at);

-- WebAuthn ceremonies in progress: the challenge state webauthn-rs needs to
-- check the answer. Bound to the session (enrolment, step-up) or the
-- pending login that asked, one per owner and purpose, taken (deleted) by
-- the answer that uses it: a challenge is single-use.
create table webauthn_challenges (
    owner      text        not null,
    purpose    text        not null,
    user_id    bigint      not null references users (id) on delete cascade,
    state      jsonb       not null,
    expires_at timestamptz not null,
    primary key (owner, purpose),
    constraint webauthn_challenges_purpose check (purpose in ('register', 'authenticate'))
);

create index webauthn_challenges_expires_at_idx on webauthn_challenges (expires_at);

-- Second-factor checks are throttled like password checks: per user and
-- client address ('mfa'), and per user over every address ('mfa_user').
alter table login_failures drop constraint login_failures_scope;
alter table login_failures
    add constraint login_failures_scope
    check (scope in ('email', 'ip', 'pair', 'signup', 'recover', 'recover_ip', 'resend',
                     'mfa', 'mfa_user'));

grant select, insert, update, delete
    on totp_factors, recovery_codes, passkeys, mfa_pending, webauthn_challenges
    to natsauth_auth_worker;
-- The user-worker checks sessions; it reads nothing of the factors.
