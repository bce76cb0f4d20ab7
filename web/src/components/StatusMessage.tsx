import { forwardRef } from "react";

/**
 * A polite live region for what just succeeded ("Profile saved"). It is
 * always in the page, so screen readers announce each new text.
 */
export function StatusMessage({ message, className }: { message: string | null; className?: string }) {
  return (
    <p role="status" className={["status", className].filter(Boolean).join(" ")}>
      {message ?? ""}
    </p>
  );
}

/**
 * What went wrong, for a failure that is not about one field. The form
 * moves focus here after a failed submit (so it has tabIndex -1).
 */
export const ErrorAlert = forwardRef<HTMLDivElement, { message: string | null }>(function ErrorAlert(
  { message },
  ref,
) {
  return (
    <div ref={ref} role="alert" tabIndex={-1} className="alert">
      {message ?? ""}
    </div>
  );
});
