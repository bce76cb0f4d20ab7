import { type FormEvent, useRef, useState } from "react";
import { type SessionInfo, type User, changePassword, updateProfile } from "../api";
import { Button } from "../components/Button";
import { Field, PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { LogoutButton } from "../components/LogoutButton";
import { Page } from "../components/Page";
import { RequireSession } from "../components/RequireSession";
import { ErrorAlert, StatusMessage } from "../components/StatusMessage";
import { useSubmit } from "../forms";

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
          <dd>{user.email}</dd>
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
      <ProfileForm user={user} onSaved={setUser} />
      <PasswordForm />
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
