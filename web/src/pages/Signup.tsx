import { type FormEvent, useRef, useState } from "react";
import { ApiError, logIn, needsSecondFactor, signUp } from "../api";
import { Button } from "../components/Button";
import { Field, PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { Page } from "../components/Page";
import { ErrorAlert } from "../components/StatusMessage";
import { NAVIGATING, useSubmit } from "../forms";
import { goTo } from "../navigation";
import { useLocation } from "../router";
import { withNext } from "./Login";

const FIELDS = ["email", "password", "firstname", "lastname"] as const;

/** A name as the sign-up body wants it: absent when blank. */
const optional = (value: string) => (value.trim() === "" ? undefined : value.trim());

export function SignupPage() {
  const { search } = useLocation();
  const next = search.get("next");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [firstname, setFirstname] = useState("");
  const [lastname, setLastname] = useState("");
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      await signUp({ email, password, firstname: optional(firstname), lastname: optional(lastname) });
      // The account exists: log in with the same credentials, go where the server says.
      try {
        const reply = await logIn(next === null ? { email, password } : { email, password, next });
        // A new account has no second factor; should the server ask for one
        // anyway, the login page asks for the password again and then for it.
        goTo(needsSecondFactor(reply) ? withNext("/login", next) : reply.redirectTo);
        return NAVIGATING;
      } catch (caught) {
        if (!(caught instanceof ApiError)) throw caught;
        throw new ApiError(
          caught.status,
          `Your account was created, but logging in failed: ${caught.message}`,
          {},
          caught.retryAfter,
          caught.requestId,
        );
      }
    });
  }

  return (
    <Page title="Create an account">
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field id="signup-email" label="Email" type="email" autoComplete="email" required {...bind("email", email, setEmail)} />
        <PasswordField
          id="signup-password"
          label="Password"
          autoComplete="new-password"
          hint="8 to 128 characters."
          {...bind("password", password, setPassword)}
        />
        <div className="field-row">
          <Field id="signup-firstname" label="First name" autoComplete="given-name" {...bind("firstname", firstname, setFirstname)} />
          <Field id="signup-lastname" label="Last name" autoComplete="family-name" {...bind("lastname", lastname, setLastname)} />
        </div>
        <Button type="submit" variant="primary" className="wide" busy={busy}>
          Sign up
        </Button>
      </form>
      <p className="card-footer">
        Already have an account? <Link href={withNext("/login", next)}>Log in</Link>
      </p>
    </Page>
  );
}
