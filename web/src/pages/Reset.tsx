import { type FormEvent, useRef, useState } from "react";
import { ApiError, resetPassword } from "../api";
import { Button } from "../components/Button";
import { PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { Outcome } from "../components/Outcome";
import { Page } from "../components/Page";
import { ErrorAlert } from "../components/StatusMessage";
import { useSubmit } from "../forms";
import { isBadLink } from "../linkErrors";
import { useLinkToken } from "../linkToken";

const FIELDS = ["newPassword", "confirmPassword"] as const;

export const BAD_RESET_LINK = "This link is invalid or has expired. Ask for a new one.";
export const PASSWORD_SET = "Your password is set, and every session of your account has ended. Log in with your new password.";

type State = "form" | "done" | "bad-link";

/**
 * `/reset?token=…`, from a password reset mail. Opening it calls nothing;
 * the token is sent with the new password, when the form is submitted.
 */
export function ResetPage() {
  const token = useLinkToken();
  const [state, setState] = useState<State>(token === null ? "bad-link" : "form");
  const [newPassword, setNewPassword] = useState("");
  const [confirmPassword, setConfirmPassword] = useState("");
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      if (token === null) return;
      if (newPassword !== confirmPassword) {
        throw new ApiError(400, "The two passwords differ.", { confirmPassword: "Does not match the new password." });
      }
      try {
        await resetPassword({ token, newPassword });
      } catch (caught) {
        if (!isBadLink(caught)) throw caught;
        setState("bad-link");
        return;
      }
      setNewPassword("");
      setConfirmPassword("");
      setState("done");
    });
  }

  return (
    <Page title="Choose a new password">
      {state === "done" ? (
        <Outcome kind="success">
          <p>{PASSWORD_SET}</p>
          <Link href="/login" className="button button-primary">
            Log in
          </Link>
        </Outcome>
      ) : state === "bad-link" ? (
        <Outcome kind="failure">
          <p>{BAD_RESET_LINK}</p>
          <Link href="/forgot">Ask for a new link</Link>
        </Outcome>
      ) : (
        <form ref={form} noValidate onSubmit={onSubmit}>
          <ErrorAlert ref={alertRef} message={alertMessage} />
          <PasswordField
            id="reset-new-password"
            label="New password"
            autoComplete="new-password"
            hint="8 to 128 characters. Every session of your account ends when it is set."
            {...bind("newPassword", newPassword, setNewPassword)}
          />
          <PasswordField
            id="reset-confirm-password"
            label="Confirm new password"
            autoComplete="new-password"
            {...bind("confirmPassword", confirmPassword, setConfirmPassword)}
          />
          <Button type="submit" variant="primary" className="wide" busy={busy}>
            Set new password
          </Button>
        </form>
      )}
      {state === "done" ? null : (
        <p className="card-footer">
          <Link href="/login">Back to log in</Link>
        </p>
      )}
    </Page>
  );
}
