-- Emails are stored normalized from now on (`shared::types::Email`; the
-- contract's rule: one account per mailbox, whatever its spelling): trimmed,
-- the local part NFC, the domain mapped by IDNA (UTS #46) to its ASCII form,
-- without a trailing dot. Look-ups normalize what they are given the same
-- way and still compare lower(email), which the unique index users_email_key
-- keeps as it was.
--
-- Rows stored earlier hold the address as typed, trimmed. Most differ from
-- the normal form only by capitals in an ASCII domain: this lower-cases
-- those, as UTS #46 maps an ASCII domain (with `translate`, not lower(),
-- which follows the database's locale). That leaves every row's lower(email)
-- as it was, so no two rows come to collide. (In a locale whose lower() does
-- not fold A-Z to a-z alone, the unique index refuses a collision, and the
-- whole migration with it.)
--
-- What SQL cannot do (the IDNA mapping of other domains, and rows written by
-- an earlier version still running, or by hand) is the data step that
-- `auth-worker migrate` runs after the migrations (auth-worker/src/
-- normalize.rs), with the function that parses every request. It refuses,
-- changing nothing and naming the accounts, when two rows would share a
-- mailbox.
update users u
   set email = left(u.email, -length(d.domain))
               || translate(d.domain, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
  from (select id, substring(email from '@([^@]*)$') as domain from users) d
 where u.id = d.id
   and octet_length(d.domain) = length(d.domain)
   and d.domain <> translate(d.domain, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
