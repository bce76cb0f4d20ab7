import { useRef, useState } from "react";
import { type User, verifyEmail } from "../api";
import { Button } from "../components/Button";
import { Link } from "../components/Link";
import { Outcome } from "../components/Outcome";
import { Page } from "../components/Page";
import { ErrorAlert } from "../components/StatusMessage";
import { useSubmit } from "../forms";
import { isBadLink } from "../linkErrors";
import { useLinkToken } from "../linkToken";

export const EMAIL_VERIFIED = "Your email address is verified.";
export const BAD_VERIFY_LINK = "This link is invalid or has expired. You can send a new one from your account.";

type State = { kind: "ready" } | { kind: "done"; user: User } | { kind: "bad-link" };

/**
 * `/verify?token=…`, from a verification or email-change mail. Opening it
 * calls nothing; the person confirms with the button, which sends the token.
 */
export function VerifyPage() {
  const token = useLinkToken();
  const [state, setState] = useState<State>(token === null ? { kind: "bad-link" } : { kind: "ready" });
  const area = useRef<HTMLDivElement>(null);
  const { busy, submit, alertRef, alertMessage } = useSubmit(area, []);

  function verify() {
    void submit(async () => {
      if (token === null) return;
      try {
        const user = await verifyEmail({ token });
        setState({ kind: "done", user });
      } catch (caught) {
        if (!isBadLink(caught)) throw caught;
        setState({ kind: "bad-link" });
      }
    });
  }

  return (
    <Page title="Verify your email address">
      {state.kind === "done" ? (
        <Outcome kind="success">
          <p>{EMAIL_VERIFIED}</p>
          <p>
            Your account&apos;s address is <strong>{state.user.email}</strong>.
          </p>
          <Link href="/account">Go to your account</Link>
        </Outcome>
      ) : state.kind === "bad-link" ? (
        <Outcome kind="failure">
          <p>{BAD_VERIFY_LINK}</p>
          <Link href="/account">Go to your account</Link>
        </Outcome>
      ) : (
        <div ref={area}>
          <p>Press the button to confirm that the address this link was mailed to is yours.</p>
          <ErrorAlert ref={alertRef} message={alertMessage} />
          <Button variant="primary" className="wide" busy={busy} onClick={verify}>
            Verify my email address
          </Button>
        </div>
      )}
    </Page>
  );
}
