import { type FormEvent, useRef, useState } from "react";
import { type Post, type SessionInfo, createPost, deletePost, listPosts, updatePost } from "../api";
import { AdminHeader } from "../components/AdminHeader";
import { Button } from "../components/Button";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { Dialog } from "../components/Dialog";
import { CheckboxField, Field, TextAreaField } from "../components/Field";
import { ListMessages } from "../components/ListMessages";
import { Page } from "../components/Page";
import { PagerControls } from "../components/PagerControls";
import { RequireSession } from "../components/RequireSession";
import { ErrorAlert } from "../components/StatusMessage";
import { useList } from "../components/useList";
import { useSubmit } from "../forms";
import { formatTime } from "../format";

export function PostsPage() {
  return <RequireSession admin>{(session) => <Posts session={session} />}</RequireSession>;
}

/** Content as the API wants it: null when blank (no content). */
const contentOrNull = (value: string) => (value.trim() === "" ? null : value);

function Posts({ session }: { session: SessionInfo }) {
  const list = useList(listPosts);
  const [toggling, setToggling] = useState<ReadonlySet<number>>(new Set());
  const [editing, setEditing] = useState<Post | null>(null);
  const [confirming, setConfirming] = useState<Post | null>(null);
  const [deleting, setDeleting] = useState(false);
  function replace(saved: Post) {
    list.setItems((items) => items.map((p) => (p.id === saved.id ? saved : p)));
  }

  async function togglePublished(post: Post) {
    if (toggling.has(post.id)) return;
    setToggling((s) => new Set(s).add(post.id));
    try {
      const saved = await updatePost(post.id, { published: !post.published });
      replace(saved);
      list.say(`${saved.published ? "Published" : "Unpublished"} ${saved.title}`);
    } catch (caught) {
      list.fail(caught);
    } finally {
      setToggling((s) => {
        const rest = new Set(s);
        rest.delete(post.id);
        return rest;
      });
    }
  }

  async function confirmDelete() {
    if (!confirming) return;
    const post = confirming;
    setDeleting(true);
    try {
      await deletePost(post.id);
      list.setItems((items) => items.filter((p) => p.id !== post.id));
      list.say(`Deleted ${post.title}`);
    } catch (caught) {
      list.fail(caught);
    } finally {
      setDeleting(false);
      setConfirming(null);
    }
  }

  return (
    <Page
      title="Posts"
      layout="wide"
      header={<AdminHeader current="/dashboard/posts" email={session.user.email} tools={session.tools} />}
    >
      <CreatePostForm
        onCreated={(post) => {
          // Shown at the top of this page, whatever page it lands on.
          list.setItems((items) => [post, ...items.filter((p) => p.id !== post.id)]);
          list.say(`Created ${post.title}`);
        }}
      />
      <h2 className="list-heading">All posts</h2>
      <ListMessages {...list.messages} />
      {list.items === null ? (
        list.loading ? <p className="muted">Loading posts…</p> : null
      ) : (
        <div className="table-wrap">
          <table className="table" aria-busy={list.loading || undefined}>
            <caption className="visually-hidden">Posts, page {list.page}</caption>
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Status</th>
                <th scope="col">Author</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.length === 0 ? (
                <tr>
                  <td colSpan={5} className="empty">
                    No posts on this page.
                  </td>
                </tr>
              ) : (
                list.items.map((post) => (
                  <tr key={post.id}>
                    <th scope="row" className="cell-main">
                      {post.title}
                    </th>
                    <td>
                      <span className={post.published ? "badge badge-published" : "badge badge-draft"}>
                        {post.published ? "Published" : "Draft"}
                      </span>
                    </td>
                    <td>
                      {post.authorId === null || post.authorId === undefined ? (
                        <span className="muted">deleted</span>
                      ) : (
                        <>
                          <span className="visually-hidden">user </span>#{post.authorId}
                          {post.authorId === session.user.id ? <span className="muted"> (you)</span> : null}
                        </>
                      )}
                    </td>
                    <td>
                      <time dateTime={post.updatedAt}>{formatTime(post.updatedAt)}</time>
                    </td>
                    <td className="cell-actions">
                      <Button aria-label={`Edit ${post.title}`} onClick={() => setEditing(post)}>
                        Edit
                      </Button>
                      <Button
                        aria-label={`${post.published ? "Unpublish" : "Publish"} ${post.title}`}
                        busy={toggling.has(post.id)}
                        onClick={() => void togglePublished(post)}
                      >
                        {post.published ? "Unpublish" : "Publish"}
                      </Button>
                      <Button variant="danger" aria-label={`Delete ${post.title}`} onClick={() => setConfirming(post)}>
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
      {editing ? (
        <EditPostDialog
          post={editing}
          onCancel={() => setEditing(null)}
          onSaved={(saved) => {
            replace(saved);
            setEditing(null);
            list.say(`Saved ${saved.title}`);
          }}
        />
      ) : null}
      {confirming ? (
        <ConfirmDialog
          title="Delete post?"
          confirmLabel="Delete post"
          busy={deleting}
          onConfirm={() => void confirmDelete()}
          onCancel={() => setConfirming(null)}
        >
          <p>
            Delete the post <strong>{confirming.title}</strong>? This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </Page>
  );
}

const POST_FIELDS = ["title", "content", "published"] as const;

function CreatePostForm({ onCreated }: { onCreated: (post: Post) => void }) {
  const [title, setTitle] = useState("");
  const [content, setContent] = useState("");
  const [published, setPublished] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, fieldError, bind } = useSubmit(form, POST_FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      const post = await createPost({ title, content: contentOrNull(content), published });
      setTitle("");
      setContent("");
      setPublished(false);
      onCreated(post);
    });
  }

  return (
    <section className="panel" aria-labelledby="create-post-heading">
      <h2 id="create-post-heading">New post</h2>
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field id="create-post-title" label="Title" required {...bind("title", title, setTitle)} />
        <TextAreaField id="create-post-content" label="Content" rows={4} {...bind("content", content, setContent)} />
        <div className="actions">
          <CheckboxField
            id="create-post-published"
            name="published"
            label="Published"
            checked={published}
            onChange={(e) => setPublished(e.target.checked)}
            error={fieldError("published")}
          />
          <Button type="submit" variant="primary" busy={busy}>
            Create post
          </Button>
        </div>
      </form>
    </section>
  );
}

const EDIT_FIELDS = ["title", "content"] as const;

function EditPostDialog({ post, onSaved, onCancel }: { post: Post; onSaved: (post: Post) => void; onCancel: () => void }) {
  const [title, setTitle] = useState(post.title);
  const [content, setContent] = useState(post.content ?? "");
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, EDIT_FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      onSaved(await updatePost(post.id, { title, content: contentOrNull(content) }));
    });
  }

  return (
    <Dialog title="Edit post" onCancel={onCancel} busy={busy}>
      <form ref={form} noValidate onSubmit={onSubmit} className="dialog-form">
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field id="edit-post-title" label="Title" required data-autofocus {...bind("title", title, setTitle)} />
        <TextAreaField id="edit-post-content" label="Content" rows={6} {...bind("content", content, setContent)} />
        <div className="actions">
          <Button type="submit" variant="primary" busy={busy}>
            Save post
          </Button>
          <Button onClick={onCancel} busy={busy}>
            Cancel
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
