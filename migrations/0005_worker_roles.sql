-- Each worker connects as its own role with only the privileges its SQL
-- needs, so a worker that is taken over (or a query bug in it) reaches no
-- more than its job: above all, the user-worker never reads a password hash
-- or a refresh token.
--
-- The roles are made by `auth-worker provision` (a superuser's step: roles
-- are cluster-wide and creating them is no job for the schema's owner), which
-- also makes natsauth_migrator the owner of the database, of `public` and of
-- every table. This migration runs as that owner.
--
-- A later migration that adds a table grants on it as this one does; a column
-- added to a table where a role has table-level privileges is covered.

-- A grant by someone who does not own the table is only a warning, and
-- would leave the workers without privileges: stop instead.
do $$
begin
  if not pg_has_role(current_user, (select relowner from pg_class where oid = 'users'::regclass), 'member') then
    raise exception 'run the migrations as the owner of the tables (natsauth_migrator, after auth-worker provision), not as %', current_user;
  end if;
end $$;

-- Nobody but the owner creates anything in the schema (PostgreSQL before 15
-- lets PUBLIC create there); the workers may only look objects up in it.
revoke all on schema public from public;
grant usage on schema public to natsauth_auth_worker, natsauth_user_worker;

-- auth-worker: accounts and credentials, sessions, refresh tokens, throttle
-- counts. It inserts users (sign-up) and changes only their password; the
-- names and the role are the user-worker's (and the migrator's set-role).
-- Table-level privileges on its own tables: it (and a purge job) also
-- deletes expired sessions, tokens and throttle rows, and columns added to
-- them later are its own too.
grant select, insert on users to natsauth_auth_worker;
grant update (password_hash, updated_at) on users to natsauth_auth_worker;
grant select, insert, update, delete on sessions, refresh_tokens, login_failures
  to natsauth_auth_worker;

-- user-worker: profiles and posts. Column privileges on users leave out
-- password_hash, so `select *` fails too; it changes names and roles
-- (`select … for update` of the ADMIN rows needs UPDATE on some column) and
-- deletes users. Deleting a user removes their sessions and tokens and
-- unsets their posts' author through the foreign keys, whose actions run as
-- the tables' owner, not as this role.
grant select (id, email, firstname, lastname, role, created_at, updated_at) on users
  to natsauth_user_worker;
grant update (firstname, lastname, role, updated_at), delete on users to natsauth_user_worker;
-- It reads a caller's session to check it is live and revokes sessions (a
-- demoted ADMIN's), and nothing of refresh_tokens at all.
grant select (id, user_id, expires_at, revoked_at), update (revoked_at) on sessions
  to natsauth_user_worker;
grant select, insert, update, delete on posts to natsauth_user_worker;
