import type { ReactNode } from "react";
import { Button } from "./Button";
import { Dialog } from "./Dialog";

interface ConfirmDialogProps {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  /** "danger" (the default) for what takes something away; "primary" for what only sends a mail. */
  confirmVariant?: "danger" | "primary";
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}

/** "Are you sure?" before something that cannot be undone. Focus starts on Cancel. */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  confirmVariant = "danger",
  busy,
  onConfirm,
  onCancel,
}: ConfirmDialogProps) {
  return (
    <Dialog title={title} onCancel={onCancel} busy={busy}>
      <div className="dialog-body">{children}</div>
      <div className="actions">
        <Button variant={confirmVariant} busy={busy} onClick={onConfirm}>
          {confirmLabel}
        </Button>
        <Button data-autofocus busy={busy} onClick={onCancel}>
          Cancel
        </Button>
      </div>
    </Dialog>
  );
}
