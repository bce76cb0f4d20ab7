import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import {
  type AccountSession,
  type ApiError,
  type SessionInfo,
  type User,
  changeEmail,
  changePassword,
  endOtherSessions,
  endSession,
  listSessions,
  resendVerification,
  updateProfile,
} from "../api";
import { Button } from "../components/Button";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { Field, PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { LogoutButton } from "../components/LogoutButton";
import { Page } from "../components/Page";
import { RequireSession } from "../components/RequireSession";
import { VerifiedBadge } from "../components/VerifiedBadge";
import { ErrorAlert, StatusMessage } from "../components/StatusMessage";
import { formatTime } from "../format";
import { toApiError, useSubmit } from "../forms";
import { TwoStepSection } from "./TwoStepSection";

export function AccountPage() {
  return <RequireSession>{(session) => <Account session={session} />}</RequireSession>;
}

function Account({ session }: { session: SessionInfo }) {
  const [user, setUser] = useState<User>(session.user);
  return (
    <Page title="Your account">
      <dl className="facts">
        <div>
          <dt>Email</dt>
          <dd>
            {user.email} <VerifiedBadge verified={user.emailVerified} />
          </dd>
        </div>
        <div>
          <dt>Role</dt>
          <dd>
            <span className={`badge badge-${user.role.toLowerCase()}`}>{user.role}</span>
          </dd>
        </div>
      </dl>
      {user.role === "ADMIN" ? (
        <p className="backoffice-link">
          <Link href="/dashboard/">Back-office</Link>
        </p>
      ) : null}
      <EmailSection user={user} onChange={setUser} />
      <TwoStepSection />
      <ProfileForm user={user} onSaved={setUser} />
      <PasswordForm />
      <Sessions />
      <div className="card-footer">
        <LogoutButton />
      </div>
    </Page>
  );
}

const PROFILE_FIELDS = ["firstname", "lastname"] as const;

/** A name as PATCH /api/users/me wants it: null clears it. */
const nameOrNull = (value: string) => (value.trim() === "" ? null : value.trim());

function ProfileForm({ user, onSaved }: { user: User; onSaved: (user: User) => void }) {
  const [firstname, setFirstname] = useState(user.firstname ?? "");
  const [lastname, setLastname] = useState(user.lastname ?? "");
  const [status, setStatus] = useState<string | null>(null);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, PROFILE_FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setStatus(null);
    void submit(async () => {
      const saved = await updateProfile({ firstname: nameOrNull(firstname), lastname: nameOrNull(lastname) });
      onSaved(saved);
      setFirstname(saved.firstname ?? "");
      setLastname(saved.lastname ?? "");
      setStatus("Profile saved");
    });
  }

  return (
    <section className="section" aria-labelledby="profile-heading">
      <h2 id="profile-heading">Profile</h2>
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <div className="field-row">
          <Field
            id="profile-firstname"
            label="First name"
            autoComplete="given-name"
            {...bind("firstname", firstname, setFirstname)}
          />
          <Field id="profile-lastname" label="Last name" autoComplete="family-name" {...bind("lastname", lastname, setLastname)} />
        </div>
        <div className="actions">
          <Button type="submit" variant="primary" busy={busy}>
            Save profile
          </Button>
          <StatusMessage message={status} />
        </div>
      </form>
    </section>
  );
}

const PASSWORD_FIELDS = ["currentPassword", "newPassword"] as const;

function PasswordForm() {
  const [currentPassword, setCurrentPassword] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [status, setStatus] = useState<string | null>(null);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, PASSWORD_FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setStatus(null);
    void submit(async () => {
      await changePassword({ currentPassword, newPassword });
      setCurrentPassword("");
      setNewPassword("");
      setStatus("Password changed");
    });
  }

  return (
    <section className="section" aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <PasswordField
          id="password-current"
          label="Current password"
          autoComplete="current-password"
          {...bind("currentPassword", currentPassword, setCurrentPassword)}
        />
        <PasswordField
          id="password-new"
          label="New password"
          autoComplete="new-password"
          hint="8 to 128 characters. Your other sessions end when it changes."
          {...bind("newPassword", newPassword, setNewPassword)}
        />
        <div className="actions">
          <Button type="submit" variant="primary" busy={busy}>
            Change password
          </Button>
          <StatusMessage message={status} />
        </div>
      </form>
    </section>
  );
}

/** Whether the gateway sent the person here from a tool that needs a
 * verified address (`/account?verify=required`). */
function toolAskedForVerification(): boolean {
  return new URLSearchParams(window.location.search).get("verify") === "required";
}

/** The address's verification (with "send again") and the email change. */
function EmailSection({ user, onChange }: { user: User; onChange: (user: User) => void }) {
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [alert, setAlert] = useState<string | null>(null);

  async function resend() {
    setBusy(true);
    setStatus(null);
    setAlert(null);
    try {
      await resendVerification();
      setStatus(`We sent a new link to ${user.email}. It works for 24 hours.`);
    } catch (caught) {
      const error = toApiError(caught);
      if (error.status === 409) {
        onChange({ ...user, emailVerified: true });
        setStatus("Your email address is already verified.");
      } else {
        setAlert(error.message);
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="section" aria-labelledby="email-heading">
      <h2 id="email-heading">Email address</h2>
      {user.emailVerified ? (
        <p>
          <strong>{user.email}</strong> is verified.
        </p>
      ) : (
        <>
          {toolAskedForVerification() && (
            <p className="notice" role="status">
              The tool you opened needs a verified email address. Follow the link we mailed to{" "}
              <strong>{user.email}</strong>, then open the tool again.
            </p>
          )}
          <p>
            <strong>{user.email}</strong> is not verified yet: follow the link we mailed to it.
          </p>
          <div className="actions">
            <Button busy={busy} onClick={() => void resend()}>
              Send the link again
            </Button>
          </div>
        </>
      )}
      <StatusMessage className="notice" message={status} />
      <ErrorAlert message={alert} />
      <EmailForm user={user} />
    </section>
  );
}

const EMAIL_FIELDS = ["email", "currentPassword"] as const;

function EmailForm({ user }: { user: User }) {
  const [email, setEmail] = useState("");
  const [currentPassword, setCurrentPassword] = useState("");
  const [status, setStatus] = useState<string | null>(null);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, EMAIL_FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setStatus(null);
    void submit(async () => {
      const wanted = email.trim();
      await changeEmail({ email: wanted, currentPassword });
      setEmail("");
      setCurrentPassword("");
      setStatus(
        `We sent a confirmation link to ${wanted}; the change takes effect when you follow it. We also told ${user.email}.`,
      );
    });
  }

  return (
    <form ref={form} noValidate onSubmit={onSubmit} aria-labelledby="email-change-heading">
      <h3 id="email-change-heading">Change your email address</h3>
      <ErrorAlert ref={alertRef} message={alertMessage} />
      <Field
        id="email-new"
        label="New email address"
        type="email"
        autoComplete="email"
        required
        {...bind("email", email, setEmail)}
      />
      <PasswordField
        id="email-password"
        label="Confirm with your password"
        autoComplete="current-password"
        {...bind("currentPassword", currentPassword, setCurrentPassword)}
      />
      <div className="actions">
        <Button type="submit" variant="primary" busy={busy}>
          Change email address
        </Button>
      </div>
      <StatusMessage className="notice" message={status} />
    </form>
  );
}

/** "Firefox on Linux", or what to say when the browser was not recognized. */
function device(session: AccountSession): string {
  return session.userAgent?.trim() || "Unknown browser";
}

/** This browser's session first, then the most recently used. */
function bySessionOrder(a: AccountSession, b: AccountSession): number {
  if (a.current !== b.current) return a.current ? -1 : 1;
  return Date.parse(b.lastUsedAt) - Date.parse(a.lastUsedAt);
}

type Confirming = { kind: "one"; session: AccountSession } | { kind: "others" };

/** The account's live sessions, each one ended from here at once. */
function Sessions() {
  const [sessions, setSessions] = useState<AccountSession[] | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [status, setStatus] = useState<string | null>(null);
  const [alert, setAlert] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Confirming | null>(null);
  const [ending, setEnding] = useState(false);
  const [returnFocus, setReturnFocus] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    let current = true;
    setLoadError(null);
    listSessions().then(
      (list) => {
        if (current) setSessions([...list.items].sort(bySessionOrder));
      },
      (caught: unknown) => {
        const error = toApiError(caught);
        if (current && error.status !== 401) setLoadError(error);
      },
    );
    return () => {
      current = false;
    };
  }, [attempt]);

  // After a row's button is gone, the list's heading takes the focus (the
  // dialog would otherwise give it to the page's heading).
  useEffect(() => {
    if (returnFocus && confirming === null) {
      heading.current?.focus();
      setReturnFocus(false);
    }
  }, [returnFocus, confirming]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);

  async function confirmEnd() {
    if (!confirming) return;
    setEnding(true);
    setStatus(null);
    setAlert(null);
    try {
      if (confirming.kind === "one") {
        const ended = confirming.session;
        await endSession(ended.id);
        setSessions((items) => items?.filter((s) => s.id !== ended.id) ?? null);
        setStatus(`Signed out ${device(ended)}.`);
      } else {
        await endOtherSessions();
        setSessions((items) => items?.filter((s) => s.current) ?? null);
        setStatus("Signed out everywhere else.");
      }
      setReturnFocus(true);
    } catch (caught) {
      setAlert(toApiError(caught).message);
      reload();
    } finally {
      setEnding(false);
      setConfirming(null);
    }
  }

  const others = sessions?.filter((s) => !s.current).length ?? 0;

  return (
    <section className="section" aria-labelledby="sessions-heading">
      <h2 id="sessions-heading" ref={heading} tabIndex={-1}>
        Sessions
      </h2>
      <p className="muted">Where your account is logged in. Sign out any session you do not recognize.</p>
      <StatusMessage className="notice" message={status} />
      <ErrorAlert message={alert ?? loadError?.message ?? null} />
      {loadError ? (
        <div className="actions">
          <Button onClick={reload}>Try again</Button>
        </div>
      ) : null}
      {sessions === null ? (
        loadError ? null : <p className="muted">Loading sessions…</p>
      ) : (
        <ul className="sessions" aria-labelledby="sessions-heading">
          {sessions.map((session) => (
            <li key={session.id} className="session">
              <div className="session-head">
                <span className="session-device">{device(session)}</span>
                {session.current ? <span className="badge badge-current">This device</span> : null}
              </div>
              <dl className="session-facts">
                <div>
                  <dt>Network</dt>
                  <dd>{session.network ?? "unknown"}</dd>
                </div>
                <div>
                  <dt>Signed in</dt>
                  <dd>
                    <time dateTime={session.createdAt}>{formatTime(session.createdAt)}</time>
                  </dd>
                </div>
                <div>
                  <dt>Last used</dt>
                  <dd>
                    <time dateTime={session.lastUsedAt}>{formatTime(session.lastUsedAt)}</time>
                  </dd>
                </div>
              </dl>
              {session.current ? null : (
                <Button
                  variant="danger"
                  className="session-end"
                  aria-label={`Sign out ${device(session)}, signed in ${formatTime(session.createdAt)}`}
                  onClick={() => setConfirming({ kind: "one", session })}
                >
                  Sign out
                </Button>
              )}
            </li>
          ))}
        </ul>
      )}
      {others > 0 ? (
        <div className="actions">
          <Button variant="danger" onClick={() => setConfirming({ kind: "others" })}>
            Sign out everywhere else
          </Button>
        </div>
      ) : null}
      {confirming ? (
        <ConfirmDialog
          title={confirming.kind === "one" ? "Sign out this session?" : "Sign out everywhere else?"}
          confirmLabel="Sign out"
          busy={ending}
          onConfirm={() => void confirmEnd()}
          onCancel={() => setConfirming(null)}
        >
          {confirming.kind === "one" ? (
            <p>
              End the session of <strong>{device(confirming.session)}</strong> from{" "}
              {confirming.session.network ?? "an unknown network"}, signed in{" "}
              {formatTime(confirming.session.createdAt)}? It is logged out at once.
            </p>
          ) : (
            <p>
              End {others === 1 ? "the other session" : `all ${others} other sessions`} of your account? They are logged
              out at once; this browser stays logged in.
            </p>
          )}
        </ConfirmDialog>
      ) : null}
    </section>
  );
}
