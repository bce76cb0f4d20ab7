import { type ChangeEvent, useState } from "react";
import {
  type Role,
  type SessionInfo,
  type User,
  ROLES,
  deleteUser,
  endUserSessions,
  listUsers,
  resetUserMfa,
  sendResetLink,
  setRole,
} from "../api";
import { AdminHeader } from "../components/AdminHeader";
import { Button } from "../components/Button";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ListMessages } from "../components/ListMessages";
import { Page } from "../components/Page";
import { PagerControls } from "../components/PagerControls";
import { RequireSession } from "../components/RequireSession";
import { useList } from "../components/useList";
import { VerifiedBadge } from "../components/VerifiedBadge";
import { formatTime, fullName } from "../format";
import { goTo, loginUrl } from "../navigation";

/** An action on one user that asks first. */
type Action = "recover" | "end-sessions" | "reset-mfa" | "delete";

export function UsersPage() {
  return <RequireSession admin>{(session) => <Users session={session} />}</RequireSession>;
}

function Users({ session }: { session: SessionInfo }) {
  const list = useList(listUsers);
  const [pendingRoles, setPendingRoles] = useState<Record<number, Role>>({});
  const [confirming, setConfirming] = useState<{ action: Action; user: User } | null>(null);
  const [acting, setActing] = useState(false);
  async function changeRole(user: User, role: Role) {
    if (pendingRoles[user.id] !== undefined || role === user.role) return;
    setPendingRoles((p) => ({ ...p, [user.id]: role }));
    try {
      const saved = await setRole(user.id, role);
      list.setItems((items) => items.map((u) => (u.id === saved.id ? saved : u)));
      list.say(`Role of ${saved.email} set to ${saved.role}`);
    } catch (caught) {
      list.fail(caught); // The select shows the role the server kept.
    } finally {
      setPendingRoles(({ [user.id]: _done, ...rest }) => rest);
    }
  }

  async function confirmAction() {
    if (!confirming) return;
    const { action, user } = confirming;
    setActing(true);
    try {
      switch (action) {
        case "recover":
          await sendResetLink(user.id);
          list.say(`Sent a password reset link to ${user.email}`);
          break;
        case "end-sessions":
          await endUserSessions(user.id);
          if (user.id === session.user.id) {
            goTo(loginUrl("/dashboard/")); // This browser's session was one of them.
            return;
          }
          list.say(`Ended every session of ${user.email}`);
          break;
        case "reset-mfa":
          await resetUserMfa(user.id);
          if (user.id === session.user.id) {
            goTo(loginUrl("/dashboard/")); // Resetting ends the user's sessions, this one too.
            return;
          }
          list.say(`Reset two-step verification of ${user.email}`);
          break;
        case "delete":
          await deleteUser(user.id);
          list.setItems((items) => items.filter((u) => u.id !== user.id));
          list.say(`Deleted ${user.email}`);
          break;
      }
    } catch (caught) {
      list.fail(caught);
    } finally {
      setActing(false);
      setConfirming(null);
    }
  }

  return (
    <Page
      title="Users"
      layout="wide"
      header={<AdminHeader current="/dashboard/" email={session.user.email} tools={session.tools} />}
    >
      <ListMessages {...list.messages} />
      {list.items === null ? (
        list.loading ? <p className="muted">Loading users…</p> : null
      ) : (
        <div className="table-wrap">
          <table className="table" aria-busy={list.loading || undefined}>
            <caption className="visually-hidden">Users, page {list.page}</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Email verified</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.length === 0 ? (
                <tr>
                  <td colSpan={6} className="empty">
                    No users on this page.
                  </td>
                </tr>
              ) : (
                list.items.map((user) => (
                  <tr key={user.id}>
                    <th scope="row" className="cell-main">
                      {user.email}
                    </th>
                    <td>
                      {fullName(user) ?? <span className="muted">—</span>}
                      {user.id === session.user.id ? <span className="muted"> (you)</span> : null}
                    </td>
                    <td>
                      <VerifiedBadge verified={user.emailVerified} />
                    </td>
                    <td>
                      <select
                        aria-label={`Role for ${user.email}`}
                        value={pendingRoles[user.id] ?? user.role}
                        aria-busy={pendingRoles[user.id] !== undefined || undefined}
                        onChange={(e: ChangeEvent<HTMLSelectElement>) => {
                          const role = ROLES.find((r) => r === e.target.value);
                          if (role) void changeRole(user, role);
                        }}
                      >
                        {ROLES.map((role) => (
                          <option key={role} value={role}>
                            {role}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <time dateTime={user.createdAt}>{formatTime(user.createdAt)}</time>
                    </td>
                    <td className="cell-actions">
                      <Button
                        aria-label={`Send reset link to ${user.email}`}
                        onClick={() => setConfirming({ action: "recover", user })}
                      >
                        Send reset link
                      </Button>
                      <Button
                        aria-label={`End sessions of ${user.email}`}
                        onClick={() => setConfirming({ action: "end-sessions", user })}
                      >
                        End sessions
                      </Button>
                      <Button
                        aria-label={`Reset two-step of ${user.email}`}
                        onClick={() => setConfirming({ action: "reset-mfa", user })}
                      >
                        Reset two-step
                      </Button>
                      <Button
                        variant="danger"
                        aria-label={`Delete ${user.email}`}
                        onClick={() => setConfirming({ action: "delete", user })}
                      >
                        Delete
                      </Button>
                    </td>
                  </tr>
                ))
              )}
            </tbody>
          </table>
        </div>
      )}
      {list.items !== null ? (
        <PagerControls {...list.pagerControls} />
      ) : null}
      {confirming ? (
        <ConfirmDialog
          {...DIALOGS[confirming.action]}
          busy={acting}
          onConfirm={() => void confirmAction()}
          onCancel={() => setConfirming(null)}
        >
          <ConfirmText action={confirming.action} user={confirming.user} you={confirming.user.id === session.user.id} />
        </ConfirmDialog>
      ) : null}
    </Page>
  );
}

const DIALOGS = {
  recover: { title: "Send a password reset link?", confirmLabel: "Send link", confirmVariant: "primary" },
  "end-sessions": { title: "End all sessions?", confirmLabel: "End all sessions", confirmVariant: "danger" },
  "reset-mfa": {
    title: "Reset two-step verification?",
    confirmLabel: "Reset two-step",
    confirmVariant: "danger",
  },
  delete: { title: "Delete user?", confirmLabel: "Delete user", confirmVariant: "danger" },
} as const satisfies Record<Action, { title: string; confirmLabel: string; confirmVariant: "primary" | "danger" }>;

function ConfirmText({ action, user, you }: { action: Action; user: User; you: boolean }) {
  const email = <strong>{user.email}</strong>;
  switch (action) {
    case "recover":
      return (
        <p>
          Mail {email} a link to choose a new password? It works for 15 minutes. Their password stays as it is
          unless they follow it.
        </p>
      );
    case "end-sessions":
      return (
        <p>
          Log {email} out on every device at once? They can log in again with their password.
          {you ? " This browser is one of them: you will be logged out too." : null}
        </p>
      );
    case "reset-mfa":
      return (
        <p>
          Remove every second factor of {email} (authenticator app, passkeys, recovery codes)? Their sessions end at
          once, and they log in with their password alone until they set up a new factor. Do it only when you know
          it is really them asking.
          {you ? " This is your account: you will be logged out too." : null}
        </p>
      );
    case "delete":
      return (
        <p>
          Delete the account of {email}? Their sessions end at once; their posts stay, without an author. This cannot
          be undone.
        </p>
      );
  }
}
