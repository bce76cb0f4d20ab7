// What every form does with a request: busy while it runs, the server's
// field errors beside their fields, any other failure in an alert, and
// focus on the first invalid field (or on the alert) after a failure.
import { type ChangeEvent, type RefObject, useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "./api/client";
import { PasskeyError } from "./webauthn";

/** Any thrown value as an ApiError (a passkey the browser refused, a bug in the app). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof PasskeyError) return new ApiError(0, error.message);
  console.error(error);
  return new ApiError(0, "Something went wrong in this page. Please reload it.");
}

/**
 * The text for the alert region: the message when no field shows an error,
 * plus any field error the form has no input for.
 */
export function alertText(error: ApiError | null, fields: readonly string[]): string | null {
  if (!error) return null;
  const entries = Object.entries(error.fieldErrors);
  const shown = entries.filter(([field]) => fields.includes(field));
  const other = entries.filter(([field]) => !fields.includes(field)).map(([field, message]) => `${field}: ${message}`);
  if (shown.length === 0) return [error.message, ...other].join(" ");
  return other.length > 0 ? other.join(" ") : null;
}

/** Ask the action to keep the form busy: the page is going away. */
export const NAVIGATING = "navigating";

export function useSubmit(formRef: RefObject<HTMLElement | null>, fields: readonly string[]) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [failures, setFailures] = useState(0);
  const alertRef = useRef<HTMLDivElement>(null);
  const running = useRef(false);

  useEffect(() => {
    if (failures === 0) return;
    const invalid = formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    if (invalid) invalid.focus();
    else alertRef.current?.focus();
  }, [failures, formRef]);

  const submit = useCallback(async (action: () => Promise<void | typeof NAVIGATING>) => {
    if (running.current) return;
    running.current = true;
    setBusy(true);
    setError(null);
    let keepBusy = false;
    try {
      keepBusy = (await action()) === NAVIGATING;
    } catch (caught) {
      setError(toApiError(caught));
      setFailures((n) => n + 1);
    } finally {
      if (!keepBusy) {
        running.current = false;
        setBusy(false);
      }
    }
  }, []);

  return {
    busy,
    error,
    submit,
    alertRef,
    alertMessage: alertText(error, fields),
    fieldError: (field: string): string | undefined => error?.fieldErrors[field],
    /** A text control's props from its state: its name, value, change handler and server error. */
    bind: (field: string, value: string, setValue: (value: string) => void) => ({
      name: field,
      value,
      onChange: (e: ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => setValue(e.target.value),
      error: error?.fieldErrors[field],
    }),
    clearError: () => setError(null),
  };
}
