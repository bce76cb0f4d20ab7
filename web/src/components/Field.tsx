import type { InputHTMLAttributes, ReactNode, TextareaHTMLAttributes } from "react";

interface FieldText {
  id: string;
  label: string;
  /** What the server said is wrong with this field. */
  error?: string | undefined;
  /** A short rule shown under the label. */
  hint?: ReactNode;
}

/** The ids an input's aria-describedby names: its hint and its error. */
function describedBy(id: string, hint: ReactNode, error: string | undefined): string | undefined {
  const ids = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean);
  return ids.length > 0 ? ids.join(" ") : undefined;
}

function Hint({ id, hint }: { id: string; hint: ReactNode }) {
  return hint ? (
    <p id={`${id}-hint`} className="field-hint">
      {hint}
    </p>
  ) : null;
}

function FieldError({ id, error }: { id: string; error: string | undefined }) {
  return error ? (
    <p id={`${id}-error`} className="field-error">
      {error}
    </p>
  ) : null;
}

type FieldProps = FieldText & Omit<InputHTMLAttributes<HTMLInputElement>, "id">;

/** A labelled input with its hint and its error beside it. */
export function Field({ id, label, error, hint, className, ...input }: FieldProps) {
  return (
    <div className={["field", className].filter(Boolean).join(" ")}>
      <label htmlFor={id}>{label}</label>
      <Hint id={id} hint={hint} />
      <input
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        {...input}
      />
      <FieldError id={id} error={error} />
    </div>
  );
}

/** A required password input; `autoComplete` says whether the browser fills a saved one or offers a new one. */
export function PasswordField(props: Omit<FieldProps, "type" | "required">) {
  return <Field type="password" required {...props} />;
}

type TextAreaFieldProps = FieldText & Omit<TextareaHTMLAttributes<HTMLTextAreaElement>, "id">;

export function TextAreaField({ id, label, error, hint, className, ...textarea }: TextAreaFieldProps) {
  return (
    <div className={["field", className].filter(Boolean).join(" ")}>
      <label htmlFor={id}>{label}</label>
      <Hint id={id} hint={hint} />
      <textarea
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        {...textarea}
      />
      <FieldError id={id} error={error} />
    </div>
  );
}

type CheckboxFieldProps = FieldText & Omit<InputHTMLAttributes<HTMLInputElement>, "id" | "type">;

export function CheckboxField({ id, label, error, hint, className, ...input }: CheckboxFieldProps) {
  return (
    <div className={["field", "field-checkbox", className].filter(Boolean).join(" ")}>
      <input
        id={id}
        type="checkbox"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        {...input}
      />
      <label htmlFor={id}>{label}</label>
      <Hint id={id} hint={hint} />
      <FieldError id={id} error={error} />
    </div>
  );
}
