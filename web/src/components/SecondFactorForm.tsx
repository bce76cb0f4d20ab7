import { type FormEvent, useEffect, useRef, useState } from "react";
import type { FactorProof, PasskeyRequestOptions } from "../api";
import { NAVIGATING, useSubmit } from "../forms";
import { getPasskey } from "../webauthn";
import { Button } from "./Button";
import { Field } from "./Field";
import { ErrorAlert } from "./StatusMessage";

const FIELDS = ["code"] as const;

/** What a code field takes, from the factors the account has. */
export function codeHint(app: boolean, recoveryCodes: boolean): string {
  if (app && recoveryCodes) return "The 6-digit code from your authenticator app, or one of your recovery codes.";
  return app ? "The 6-digit code from your authenticator app." : "One of your recovery codes.";
}

/**
 * The props of a code input: an app's code or a recovery code
 * (`xxxxx-xxxxx`), so text, not a numeric keypad, and filled by the
 * browser or the phone from a one-time code when it can.
 */
export const CODE_INPUT = {
  type: "text",
  inputMode: "text",
  autoComplete: "one-time-code",
  autoCapitalize: "none",
  autoCorrect: "off",
  spellCheck: false,
} as const;

interface SecondFactorFormProps {
  /** Prefix of the input's id. */
  id: string;
  /** The account has an authenticator app. */
  app: boolean;
  /** The account has recovery codes left. */
  recoveryCodes: boolean;
  /** The account has a passkey. */
  passkey: boolean;
  /** The challenge for a passkey; null when the page has dealt with a failure itself. */
  passkeyOptions: () => Promise<PasskeyRequestOptions | null>;
  /** Sends the proof; NAVIGATING keeps the buttons busy while the browser leaves. */
  onProof: (proof: FactorProof) => Promise<void | typeof NAVIGATING>;
}

/**
 * A second factor, proved: a "Code" field with "Verify", and "Use a
 * passkey" when the account has one. Failures show in the form's alert or
 * beside the field; the first control has the focus, since the form
 * replaces what the person was looking at.
 */
export function SecondFactorForm({ id, app, recoveryCodes, passkey, passkeyOptions, onProof }: SecondFactorFormProps) {
  const [code, setCode] = useState("");
  const area = useRef<HTMLDivElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(area, FIELDS);
  const withCode = app || recoveryCodes;

  useEffect(() => {
    area.current?.querySelector<HTMLElement>("input, button")?.focus();
  }, []);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(() => onProof({ code: code.trim() }));
  }

  function proveWithPasskey() {
    void submit(async () => {
      const options = await passkeyOptions();
      if (options === null) return;
      return onProof({ passkey: await getPasskey(options) });
    });
  }

  return (
    <div ref={area}>
      <ErrorAlert ref={alertRef} message={alertMessage} />
      {withCode ? (
        <form noValidate onSubmit={onSubmit}>
          <Field
            id={`${id}-code`}
            label="Code"
            required
            hint={codeHint(app, recoveryCodes)}
            {...CODE_INPUT}
            {...bind("code", code, setCode)}
          />
          <Button type="submit" variant="primary" className="wide" busy={busy}>
            Verify
          </Button>
        </form>
      ) : null}
      {passkey ? (
        <div className="actions second-factor-alt">
          <Button className="wide" variant={withCode ? "secondary" : "primary"} busy={busy} onClick={proveWithPasskey}>
            Use a passkey
          </Button>
        </div>
      ) : null}
    </div>
  );
}
