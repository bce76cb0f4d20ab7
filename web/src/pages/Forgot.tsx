import { type FormEvent, useRef, useState } from "react";
import { recover } from "../api";
import { Button } from "../components/Button";
import { Field } from "../components/Field";
import { Link } from "../components/Link";
import { Page } from "../components/Page";
import { ErrorAlert, StatusMessage } from "../components/StatusMessage";
import { useSubmit } from "../forms";
import { useLocation } from "../router";
import { withNext } from "./Login";

const FIELDS = ["email"] as const;

/**
 * What every accepted request hears, whether or not the address has an
 * account: the page must not tell anyone which addresses are registered.
 */
export const RESET_LINK_SENT =
  "If an account exists for that address, we sent a link to reset its password. The link works for 15 minutes.";

export function ForgotPage() {
  const { search } = useLocation();
  const next = search.get("next");
  const [email, setEmail] = useState("");
  const [status, setStatus] = useState<string | null>(null);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setStatus(null);
    void submit(async () => {
      await recover({ email });
      setStatus(RESET_LINK_SENT);
    });
  }

  return (
    <Page title="Reset your password">
      <p>Enter the email address of your account. We will mail you a link to choose a new password.</p>
      <form ref={form} noValidate onSubmit={onSubmit}>
        <StatusMessage className="notice" message={status} />
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field id="forgot-email" label="Email" type="email" autoComplete="email" required {...bind("email", email, setEmail)} />
        <Button type="submit" variant="primary" className="wide" busy={busy}>
          Send reset link
        </Button>
      </form>
      <p className="card-footer">
        Remembered it? <Link href={withNext("/login", next)}>Log in</Link>
      </p>
    </Page>
  );
}
