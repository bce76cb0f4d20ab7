-- Verified emails, the tokens that mails carry, the sessions list, and the
-- outbox of security events (the contract's "Recovery, verification,
-- sessions" and "Events").

-- Set when the owner of the address followed a verification link. Accounts
-- made before this migration start unverified, like new ones.
alter table users add column email_verified boolean not null default false;

-- What the sessions list shows: the user-agent family ("Firefox on Linux",
-- never the whole header) and the client's network (an IPv4 /24 or an IPv6
-- /48, never the address), both as the login saw them; and when the session
-- was last refreshed.
alter table sessions add column user_agent text;
alter table sessions add column network text;
alter table sessions add column last_used_at timestamptz;
update sessions set last_used_at = created_at;
alter table sessions alter column last_used_at set default now();
alter table sessions alter column last_used_at set not null;

-- A token a mail carries: verification, password reset, or the
-- confirmation of a new address. The row is written with the event that
-- asks for the mail (its id is the event's `tokenId`); the token itself is
-- made only when the mail-worker asks for it (`auth.mail_token`), and only
-- its SHA-256 is kept, so neither the event stream nor a database dump
-- holds a usable token. Spent once; void after a later password change.
create table email_tokens (
    id         uuid        primary key,
    user_id    bigint      not null references users (id) on delete cascade,
    purpose    text        not null,
    -- The address the token proves: the account's, or the new one for a
    -- change of address.
    email      text        not null,
    token_hash bytea       unique,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    spent_at   timestamptz,
    voided_at  timestamptz,
    constraint email_tokens_purpose check (purpose in ('verify', 'reset', 'change_email'))
);

create index email_tokens_user_id_idx on email_tokens (user_id);
create index email_tokens_expires_at_idx on email_tokens (expires_at);

-- Security events, written in the transaction of the change they report and
-- published to JetStream by the auth-worker's relay with the row's id as
-- `Nats-Msg-Id` (so a relay that dies between publishing and marking
-- publishes no duplicate inside the stream's duplicate window).
create table outbox (
    -- A UUIDv7: publishing in id order is publishing in the order written.
    id           uuid        primary key,
    -- `events.auth.<kind>`.
    kind         text        not null,
    -- The event's JSON (`shared::events::Envelope`).
    payload      jsonb       not null,
    created_at   timestamptz not null default now(),
    published_at timestamptz
);

create index outbox_pending_idx on outbox (id) where published_at is null;
create index outbox_published_at_idx on outbox (published_at) where published_at is not null;

-- The relay sleeps until a row arrives.
create function outbox_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('natsauth_outbox', '');
  return null;
end $$;

create trigger outbox_notify after insert on outbox
  for each statement execute function outbox_notify();

-- auth-worker: it verifies addresses and changes them, writes and spends
-- tokens, writes events and relays them.
grant update (email, email_verified) on users to natsauth_auth_worker;
grant select, insert, update, delete on email_tokens, outbox to natsauth_auth_worker;
-- user-worker: shows the verification state, and writes the events of its
-- own changes (a role changed, a user deleted), which the auth-worker relays.
grant select (email_verified) on users to natsauth_user_worker;
grant insert on outbox to natsauth_user_worker;
