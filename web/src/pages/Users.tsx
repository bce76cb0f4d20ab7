import { type ChangeEvent, useState } from "react";
import { type Role, type SessionInfo, type User, ROLES, deleteUser, listUsers, setRole } from "../api";
import { AdminHeader } from "../components/AdminHeader";
import { Button } from "../components/Button";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ListMessages } from "../components/ListMessages";
import { Page } from "../components/Page";
import { PagerControls } from "../components/PagerControls";
import { RequireSession } from "../components/RequireSession";
import { useList } from "../components/useList";
import { formatTime, fullName } from "../format";

export function UsersPage() {
  return <RequireSession admin>{(session) => <Users session={session} />}</RequireSession>;
}

function Users({ session }: { session: SessionInfo }) {
  const list = useList(listUsers);
  const [pendingRoles, setPendingRoles] = useState<Record<number, Role>>({});
  const [confirming, setConfirming] = useState<User | null>(null);
  const [deleting, setDeleting] = useState(false);
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

  async function confirmDelete() {
    if (!confirming) return;
    const user = confirming;
    setDeleting(true);
    try {
      await deleteUser(user.id);
      list.setItems((items) => items.filter((u) => u.id !== user.id));
      list.say(`Deleted ${user.email}`);
    } catch (caught) {
      list.fail(caught);
    } finally {
      setDeleting(false);
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
                  <td colSpan={5} className="empty">
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
                        variant="danger"
                        aria-label={`Delete ${user.email}`}
                        onClick={() => setConfirming(user)}
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
          title="Delete user?"
          confirmLabel="Delete user"
          busy={deleting}
          onConfirm={() => void confirmDelete()}
          onCancel={() => setConfirming(null)}
        >
          <p>
            Delete the account of <strong>{confirming.email}</strong>? Their sessions end at once; their posts
            stay, without an author. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </Page>
  );
}
