import { type KeyboardEvent, type ReactNode, type SyntheticEvent, useEffect, useId, useRef } from "react";

interface DialogProps {
  title: string;
  children: ReactNode;
  /** Escape, or the dialog's own Cancel button. */
  onCancel: () => void;
  /** While a request runs, Escape does nothing. */
  busy?: boolean;
}

/**
 * A modal <dialog> (role dialog, named by its heading). Opening moves focus
 * into it (the element marked data-autofocus, else the first control);
 * closing gives focus back to whatever opened it, or to the page heading if
 * that is gone (a deleted row's button).
 */
export function Dialog({ title, children, onCancel, busy = false }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (typeof dialog.showModal === "function") {
      if (!dialog.open) dialog.showModal();
    } else {
      dialog.setAttribute("open", ""); // An environment without modal dialogs.
    }
    const first = dialog.querySelector<HTMLElement>("[data-autofocus]") ?? dialog.querySelector<HTMLElement>("input, textarea, select, button");
    first?.focus();
    return () => {
      if (dialog.open && typeof dialog.close === "function") dialog.close();
      const back = opener && opener.isConnected ? opener : document.querySelector<HTMLElement>("main h1");
      back?.focus();
    };
  }, []);

  function cancel(event: SyntheticEvent) {
    event.preventDefault(); // React unmounts the dialog instead.
    if (!busy) onCancel();
  }

  function keyDown(event: KeyboardEvent<HTMLDialogElement>) {
    if (event.key === "Escape") cancel(event);
  }

  return (
    <dialog ref={ref} className="dialog" aria-labelledby={titleId} onCancel={cancel} onKeyDown={keyDown}>
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}
