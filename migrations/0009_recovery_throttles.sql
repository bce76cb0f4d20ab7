-- The throttles of the recovery mails: reset mails per email
-- ('recover') and per client address ('recover_ip'), new verification
-- mails per user ('resend'). Counted apart from the login's, so asking for
-- mails never slows a login down, nor the other way round.
alter table login_failures drop constraint login_failures_scope;
alter table login_failures
    add constraint login_failures_scope
    check (scope in ('email', 'ip', 'pair', 'signup', 'recover', 'recover_ip', 'resend'));
