import { type FormEvent, useEffect, useRef, useState } from "react";
import {
  ApiError,
  type FactorProof,
  type MfaChallenge,
  type MfaMethod,
  logIn,
  logInSecondStep,
  loginPasskeyOptions,
  needsSecondFactor,
} from "../api";
import { Button } from "../components/Button";
import { Field, PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { Page } from "../components/Page";
import { SecondFactorForm } from "../components/SecondFactorForm";
import { ErrorAlert } from "../components/StatusMessage";
import { NAVIGATING, useSubmit } from "../forms";
import { goTo } from "../navigation";
import { useLocation } from "../router";

const FIELDS = ["email", "password"] as const;

/** `?next=` carried to another page of the login flow. */
export function withNext(path: string, next: string | null): string {
  return next === null ? path : `${path}?next=${encodeURIComponent(next)}`;
}

/**
 * The password, then (for an account with a second factor) a code or a
 * passkey. Between the two the server keeps a pending login in an HttpOnly
 * cookie; this page only knows which factors it may ask for.
 */
type Step = { kind: "password"; notice: string | null } | { kind: "second"; methods: MfaMethod[] };

export function LoginPage() {
  const { search } = useLocation();
  const next = search.get("next");
  const [email, setEmail] = useState("");
  const [step, setStep] = useState<Step>({ kind: "password", notice: null });

  return step.kind === "second" ? (
    <SecondStep
      next={next}
      methods={step.methods}
      onRestart={(notice) => setStep({ kind: "password", notice })}
    />
  ) : (
    <PasswordStep
      next={next}
      email={email}
      setEmail={setEmail}
      notice={step.notice}
      onSecondStep={(challenge) => setStep({ kind: "second", methods: challenge.methods })}
    />
  );
}

interface PasswordStepProps {
  next: string | null;
  email: string;
  setEmail: (email: string) => void;
  /** Why the person is back here (the second step's pending login ended). */
  notice: string | null;
  onSecondStep: (challenge: MfaChallenge) => void;
}

function PasswordStep({ next, email, setEmail, notice: initialNotice, onSecondStep }: PasswordStepProps) {
  const [password, setPassword] = useState("");
  const [notice, setNotice] = useState(initialNotice);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, FIELDS);

  // Back from the second step: the alert says why, so it takes the focus.
  useEffect(() => {
    if (initialNotice !== null) alertRef.current?.focus();
  }, [initialNotice, alertRef]);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    setNotice(null);
    void submit(async () => {
      // `next` goes as it came; the server decides whether to follow it.
      const reply = await logIn(next === null ? { email, password } : { email, password, next });
      if (needsSecondFactor(reply)) {
        onSecondStep(reply);
        return;
      }
      goTo(reply.redirectTo);
      return NAVIGATING;
    });
  }

  return (
    <Page title="Log in">
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage ?? notice} />
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

interface SecondStepProps {
  next: string | null;
  methods: MfaMethod[];
  /** Back to the password, saying why (null: the person chose to). */
  onRestart: (notice: string | null) => void;
}

function SecondStep({ next, methods, onRestart }: SecondStepProps) {
  /**
   * A 401 on this step means the pending login is gone (it expired, or took
   * too many wrong codes): only the password step can start a new one.
   */
  async function onPendingLogin<T>(call: () => Promise<T>): Promise<T | null> {
    try {
      return await call();
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 401) {
        onRestart(caught.message);
        return null;
      }
      throw caught;
    }
  }

  async function finish(proof: FactorProof) {
    const reply = await onPendingLogin(() => logInSecondStep(next === null ? proof : { ...proof, next }));
    if (reply === null) return;
    goTo(reply.redirectTo);
    return NAVIGATING;
  }

  const passkey = methods.includes("passkey");
  const withCode = methods.includes("totp") || methods.includes("recoveryCode");
  return (
    <Page title="Two-step verification">
      <p className="muted">
        {withCode
          ? "Your password is right. Now confirm it is you with your second factor."
          : "Your password is right. Now use your passkey to finish logging in."}
      </p>
      <SecondFactorForm
        id="login"
        app={methods.includes("totp")}
        recoveryCodes={methods.includes("recoveryCode")}
        passkey={passkey}
        passkeyOptions={() => onPendingLogin(loginPasskeyOptions)}
        onProof={finish}
      />
      <p className="card-footer">
        <Button variant="link" onClick={() => onRestart(null)}>
          Start over
        </Button>
      </p>
    </Page>
  );
}
