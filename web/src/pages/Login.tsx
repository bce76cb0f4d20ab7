import { type FormEvent, useRef, useState } from "react";
import { logIn } from "../api";
import { Button } from "../components/Button";
import { Field, PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { Page } from "../components/Page";
import { ErrorAlert } from "../components/StatusMessage";
import { NAVIGATING, useSubmit } from "../forms";
import { goTo } from "../navigation";
import { useLocation } from "../router";

const FIELDS = ["email", "password"] as const;

/** `?next=` carried to another page of the login flow. */
export function withNext(path: string, next: string | null): string {
  return next === null ? path : `${path}?next=${encodeURIComponent(next)}`;
}

export function LoginPage() {
  const { search } = useLocation();
  const next = search.get("next");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      // `next` goes as it came; the server decides whether to follow it.
      const reply = await logIn(next === null ? { email, password } : { email, password, next });
      goTo(reply.redirectTo);
      return NAVIGATING;
    });
  }

  return (
    <Page title="Log in">
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field id="login-email" label="Email" type="email" autoComplete="username" required {...bind("email", email, setEmail)} />
        <PasswordField
          id="login-password"
          label="Password"
          autoComplete="current-password"
          {...bind("password", password, setPassword)}
        />
        <p className="field-aside">
          <Link href={withNext("/forgot", next)}>Forgot password?</Link>
        </p>
        <Button type="submit" variant="primary" className="wide" busy={busy}>
          Log in
        </Button>
      </form>
      <p className="card-footer">
        New here? <Link href={withNext("/signup", next)}>Create an account</Link>
      </p>
    </Page>
  );
}
