// The account page's "Two-step verification": an authenticator app,
// passkeys and recovery codes. Every change is the server's to allow; the
// section shows what GET /api/users/me/mfa says after each one.
import { type FormEvent, type ReactNode, useCallback, useEffect, useRef, useState } from "react";
import {
  ApiError,
  type FactorProof,
  type MfaStatus,
  type PasskeyInfo,
  type TotpEnrolment,
  beginTotp,
  confirmTotp,
  getMfaStatus,
  newRecoveryCodes,
  passkeyCreationOptions,
  registerPasskey,
  removePasskey,
  removeTotp,
  renamePasskey,
  stepUpPasskeyOptions,
} from "../api";
import { svgDataUrl } from "../base64";
import { Button } from "../components/Button";
import { Dialog } from "../components/Dialog";
import { Field, PasswordField } from "../components/Field";
import { Link } from "../components/Link";
import { CODE_INPUT, codeHint } from "../components/SecondFactorForm";
import { ErrorAlert, StatusMessage } from "../components/StatusMessage";
import { formatTime } from "../format";
import { toApiError, useSubmit } from "../forms";
import { createPasskey, getPasskey } from "../webauthn";
import { hasFactor } from "./StepUp";

export const ADMIN_NEEDS_FACTOR =
  "An ADMIN account needs a second factor. Set one up below to use the back-office and ADMIN tools.";

/** Whether the gateway sent an ADMIN here for want of a factor (`/account?mfa=required`). */
function sentForFactor(): boolean {
  return new URLSearchParams(window.location.search).get("mfa") === "required";
}

/** Whether this session proved a second factor (a one-time code or a passkey). */
function sessionProvedFactor(status: MfaStatus): boolean {
  return status.amr.includes("otp") || status.amr.includes("hwk");
}

/** The step-up page, coming back to `next`. */
const stepUpLink = (next: string) => `/mfa?next=${encodeURIComponent(next)}`;

type Open =
  | { kind: "totp-off" }
  | { kind: "rename"; passkey: PasskeyInfo }
  | { kind: "remove-passkey"; passkey: PasskeyInfo }
  | { kind: "new-codes" };

export function TwoStepSection() {
  const [status, setStatus] = useState<MfaStatus | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [said, setSaid] = useState<string | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [open, setOpen] = useState<Open | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const refocus = useRef(false);

  useEffect(() => {
    let current = true;
    setLoadError(null);
    getMfaStatus().then(
      (loaded) => {
        if (current) setStatus(loaded);
      },
      (caught: unknown) => {
        const error = toApiError(caught);
        if (current && error.status !== 401) setLoadError(error);
      },
    );
    return () => {
      current = false;
    };
  }, [attempt]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);

  // A change can take away the button that was pressed (Turn off, Remove):
  // then the section's heading takes the focus, not the page's.
  useEffect(() => {
    if (!refocus.current) return;
    refocus.current = false;
    if (document.activeElement === document.body || document.activeElement === null) heading.current?.focus();
  }, [status]);

  /** After a change: say what it did, show new recovery codes once, and ask again what is on. */
  const changed = useCallback(
    (message: string, recoveryCodes: string[] = []) => {
      setOpen(null);
      setSaid(message);
      refocus.current = true;
      if (recoveryCodes.length > 0) setCodes(recoveryCodes);
      reload();
    },
    [reload],
  );

  const on = status !== null && hasFactor(status);
  return (
    <section className="section" aria-labelledby="mfa-heading">
      <h2 id="mfa-heading" ref={heading} tabIndex={-1}>
        Two-step verification
      </h2>
      {status !== null ? <Banner status={status} /> : null}
      {status === null ? (
        loadError ? (
          <>
            <ErrorAlert message={loadError.message} />
            <div className="actions">
              <Button onClick={reload}>Try again</Button>
            </div>
          </>
        ) : (
          <p className="muted">Loading…</p>
        )
      ) : (
        <>
          <p className="mfa-state">
            <span>Two-step verification is {on ? "on" : "off"}.</span>
            {status.required ? <span className="badge badge-admin">Required for ADMIN accounts</span> : null}
          </p>
          <p className="muted">
            {on
              ? "Logging in asks for your password and then a code from your app, a passkey or a recovery code."
              : "Add an authenticator app or a passkey: logging in then asks for it after your password."}
          </p>
          <StatusMessage className="notice" message={said} />
          {loadError ? <ErrorAlert message={loadError.message} /> : null}
          <AuthenticatorApp
            status={status}
            onChanged={changed}
            onReload={reload}
            onTurnOff={() => setOpen({ kind: "totp-off" })}
          />
          <Passkeys
            status={status}
            onChanged={changed}
            onRename={(passkey) => setOpen({ kind: "rename", passkey })}
            onRemove={(passkey) => setOpen({ kind: "remove-passkey", passkey })}
          />
          {on ? (
            <div className="subsection">
              <h3>Recovery codes</h3>
              <p>Recovery codes left: {status.recoveryCodesLeft}</p>
              <p className="muted">
                Each one works once, in place of a code from your app or a passkey, should you lose them.
              </p>
              <div className="actions">
                <Button onClick={() => setOpen({ kind: "new-codes" })}>New recovery codes</Button>
              </div>
            </div>
          ) : null}
          {open ? <OpenDialog open={open} status={status} onChanged={changed} onCancel={() => setOpen(null)} /> : null}
          {codes ? <RecoveryCodesDialog codes={codes} onDone={() => setCodes(null)} /> : null}
        </>
      )}
    </section>
  );
}

/**
 * Why the gateway sent an ADMIN here, or that this session has not proved
 * the factor the account has (changing factors asks for it).
 */
function Banner({ status }: { status: MfaStatus }) {
  const forAdmin = sentForFactor();
  if (!hasFactor(status)) {
    return forAdmin ? (
      <p className="banner" role="status">
        {ADMIN_NEEDS_FACTOR}
      </p>
    ) : null;
  }
  if (!sessionProvedFactor(status)) {
    return (
      <p className="banner" role="status">
        {forAdmin
          ? "An ADMIN account needs a second factor, and this session has not used yours yet."
          : "This session has not used your second factor yet; changing your factors asks for it."}{" "}
        <Link href={stepUpLink(forAdmin ? "/dashboard/" : "/account")}>Confirm it's you</Link>
      </p>
    );
  }
  return forAdmin ? (
    <p className="banner banner-done" role="status">
      Your account has a second factor: you can use the back-office and ADMIN tools.
    </p>
  ) : null;
}

type Changed = (message: string, recoveryCodes?: string[]) => void;

const APP_FIELDS = ["code"] as const;

function AuthenticatorApp({
  status,
  onChanged,
  onReload,
  onTurnOff,
}: {
  status: MfaStatus;
  onChanged: Changed;
  onReload: () => void;
  onTurnOff: () => void;
}) {
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [code, setCode] = useState("");
  const area = useRef<HTMLDivElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(area, APP_FIELDS);
  const qrRef = useRef<HTMLImageElement>(null);

  // The QR code replaces the button pressed: put the focus on it.
  useEffect(() => {
    if (enrolment) qrRef.current?.focus();
  }, [enrolment]);

  function begin() {
    void submit(async () => {
      try {
        setEnrolment(await beginTotp());
        setCode("");
      } catch (caught) {
        // Turned on meanwhile (another tab): show what is on now.
        if (caught instanceof ApiError && caught.status === 409) onReload();
        throw caught;
      }
    });
  }

  function turnOn(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      const added = await confirmTotp({ code: code.trim() });
      setEnrolment(null);
      setCode("");
      onChanged("The authenticator app is on.", added.recoveryCodes);
    });
  }

  return (
    <div className="subsection" ref={area}>
      <h3>Authenticator app</h3>
      <ErrorAlert ref={alertRef} message={alertMessage} />
      {status.totp ? (
        <>
          <p>On: logging in asks for the 6-digit code your app shows.</p>
          <div className="actions">
            <Button variant="danger" onClick={onTurnOff}>
              Turn off
            </Button>
          </div>
        </>
      ) : enrolment ? (
        <form noValidate onSubmit={turnOn} className="totp-setup">
          <p>Scan this QR code with an authenticator app on your phone.</p>
          <img
            ref={qrRef}
            tabIndex={-1}
            className="qr"
            alt="QR code for your authenticator app"
            src={svgDataUrl(enrolment.qrSvg)}
            width={200}
            height={200}
          />
          <p>Or type this key</p>
          <p>
            <code className="totp-secret">{enrolment.secret}</code>
          </p>
          <Field
            id="totp-code"
            label="Code from the app"
            hint="The 6 digits the app shows for natsauth, to check it is set up right."
            type="text"
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            {...bind("code", code, setCode)}
          />
          <div className="actions">
            <Button type="submit" variant="primary" busy={busy}>
              Turn on
            </Button>
            <Button busy={busy} onClick={() => setEnrolment(null)}>
              Cancel
            </Button>
          </div>
        </form>
      ) : (
        <>
          <p className="muted">
            An app on your phone (such as Aegis, Google Authenticator or 1Password) shows a new code every 30
            seconds.
          </p>
          <div className="actions">
            <Button busy={busy} onClick={begin}>
              Set up an authenticator app
            </Button>
          </div>
        </>
      )}
    </div>
  );
}

const PASSKEY_FIELDS = ["name"] as const;

function Passkeys({
  status,
  onChanged,
  onRename,
  onRemove,
}: {
  status: MfaStatus;
  onChanged: Changed;
  onRename: (passkey: PasskeyInfo) => void;
  onRemove: (passkey: PasskeyInfo) => void;
}) {
  const [name, setName] = useState("");
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, PASSKEY_FIELDS);

  function add(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      const wanted = name.trim();
      // Checked before the browser asks for the passkey, not after.
      if (wanted === "") {
        throw new ApiError(400, "Name the passkey.", { name: "Give it a name, such as the device it is on." });
      }
      const credential = await createPasskey(await passkeyCreationOptions());
      const added = await registerPasskey({ name: wanted, credential });
      setName("");
      onChanged(`Added the passkey ${added.passkey?.name ?? wanted}.`, added.recoveryCodes);
    });
  }

  return (
    <div className="subsection">
      <h3 id="passkeys-heading">Passkeys</h3>
      <p className="muted">A passkey confirms it is you with this device's screen lock or a security key.</p>
      {status.passkeys.length === 0 ? (
        <p className="muted">No passkeys yet.</p>
      ) : (
        <ul className="passkeys" aria-labelledby="passkeys-heading">
          {status.passkeys.map((passkey) => (
            <li key={passkey.id} className="passkey">
              <span className="passkey-name">{passkey.name}</span>
              <dl className="session-facts">
                <div>
                  <dt>Added</dt>
                  <dd>
                    <time dateTime={passkey.createdAt}>{formatTime(passkey.createdAt)}</time>
                  </dd>
                </div>
                <div>
                  <dt>Last used</dt>
                  <dd>
                    {passkey.lastUsedAt ? (
                      <time dateTime={passkey.lastUsedAt}>{formatTime(passkey.lastUsedAt)}</time>
                    ) : (
                      "Never"
                    )}
                  </dd>
                </div>
              </dl>
              <div className="actions passkey-actions">
                <Button aria-label={`Rename ${passkey.name}`} onClick={() => onRename(passkey)}>
                  Rename
                </Button>
                <Button variant="danger" aria-label={`Remove ${passkey.name}`} onClick={() => onRemove(passkey)}>
                  Remove
                </Button>
              </div>
            </li>
          ))}
        </ul>
      )}
      <form ref={form} noValidate onSubmit={add}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field
          id="passkey-name"
          label="Passkey name"
          hint="To tell your passkeys apart, such as “Laptop” or “Security key”."
          autoComplete="off"
          maxLength={64}
          required
          {...bind("name", name, setName)}
        />
        <div className="actions">
          <Button type="submit" busy={busy}>
            Add a passkey
          </Button>
        </div>
      </form>
    </div>
  );
}

/** The dialog a button of the section opened. */
function OpenDialog({
  open,
  status,
  onChanged,
  onCancel,
}: {
  open: Open;
  status: MfaStatus;
  onChanged: Changed;
  onCancel: () => void;
}) {
  switch (open.kind) {
    case "totp-off":
      return (
        <ProofDialog
          title="Turn off the authenticator app?"
          confirmLabel="Turn off app"
          askPassword
          status={status}
          onCancel={onCancel}
          onProof={async (proof, currentPassword) => {
            await removeTotp({ ...proof, currentPassword });
            onChanged("The authenticator app is off.");
          }}
        >
          <p>Logging in will no longer ask for its codes. Confirm with your password and a second factor.</p>
        </ProofDialog>
      );
    case "remove-passkey":
      return (
        <ProofDialog
          title="Remove this passkey?"
          confirmLabel="Remove"
          askPassword
          status={status}
          onCancel={onCancel}
          onProof={async (proof, currentPassword) => {
            await removePasskey(open.passkey.id, { ...proof, currentPassword });
            onChanged(`Removed the passkey ${open.passkey.name}.`);
          }}
        >
          <p>
            <strong>{open.passkey.name}</strong> will no longer log you in. Confirm with your password and a second
            factor.
          </p>
        </ProofDialog>
      );
    case "new-codes":
      return (
        <ProofDialog
          title="Make new recovery codes?"
          confirmLabel="Get new codes"
          askPassword={false}
          status={status}
          onCancel={onCancel}
          onProof={async (proof) => {
            const made = await newRecoveryCodes(proof);
            onChanged("New recovery codes made: the old ones no longer work.", made.recoveryCodes);
          }}
        >
          <p>Your current recovery codes stop working. Confirm with a second factor.</p>
        </ProofDialog>
      );
    case "rename":
      return <RenameDialog passkey={open.passkey} onChanged={onChanged} onCancel={onCancel} />;
  }
}

const PROOF_FIELDS = ["currentPassword", "code"] as const;

/**
 * A change that asks for a second factor (and, to remove one, the
 * password): a code, or "Use a passkey".
 */
function ProofDialog({
  title,
  confirmLabel,
  askPassword,
  status,
  onProof,
  onCancel,
  children,
}: {
  title: string;
  confirmLabel: string;
  askPassword: boolean;
  status: MfaStatus;
  onProof: (proof: FactorProof, currentPassword: string) => Promise<void>;
  onCancel: () => void;
  children: ReactNode;
}) {
  const [currentPassword, setCurrentPassword] = useState("");
  const [code, setCode] = useState("");
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, PROOF_FIELDS);
  const app = status.totp;
  const recoveryCodes = status.recoveryCodesLeft > 0;
  const withCode = app || recoveryCodes;
  const withPasskey = status.passkeys.length > 0;

  /** Checked before the browser asks for a passkey, not after. */
  function passwordGiven() {
    if (askPassword && currentPassword === "") {
      throw new ApiError(400, "Enter your current password.", { currentPassword: "Enter your current password." });
    }
  }

  function withCodeProof(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      passwordGiven();
      await onProof({ code: code.trim() }, currentPassword);
    });
  }

  function withPasskeyProof() {
    void submit(async () => {
      passwordGiven();
      const passkey = await getPasskey(await stepUpPasskeyOptions());
      await onProof({ passkey }, currentPassword);
    });
  }

  return (
    <Dialog title={title} onCancel={onCancel} busy={busy}>
      <form ref={form} noValidate onSubmit={withCodeProof}>
        <div className="dialog-body">{children}</div>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        {askPassword ? (
          <PasswordField
            id="proof-password"
            label="Current password"
            autoComplete="current-password"
            {...bind("currentPassword", currentPassword, setCurrentPassword)}
          />
        ) : null}
        {withCode ? (
          <Field
            id="proof-code"
            label="Code or recovery code"
            hint={codeHint(app, recoveryCodes)}
            {...CODE_INPUT}
            {...bind("code", code, setCode)}
          />
        ) : null}
        <div className="actions">
          {withCode ? (
            <Button type="submit" variant={askPassword ? "danger" : "primary"} busy={busy}>
              {confirmLabel}
            </Button>
          ) : null}
          {withPasskey ? (
            <Button busy={busy} onClick={withPasskeyProof}>
              Use a passkey
            </Button>
          ) : null}
          <Button busy={busy} onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

const RENAME_FIELDS = ["name"] as const;

function RenameDialog({
  passkey,
  onChanged,
  onCancel,
}: {
  passkey: PasskeyInfo;
  onChanged: Changed;
  onCancel: () => void;
}) {
  const [name, setName] = useState(passkey.name);
  const form = useRef<HTMLFormElement>(null);
  const { busy, submit, alertRef, alertMessage, bind } = useSubmit(form, RENAME_FIELDS);

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    void submit(async () => {
      const saved = await renamePasskey(passkey.id, { name: name.trim() });
      onChanged(`Renamed the passkey to ${saved.name}.`);
    });
  }

  return (
    <Dialog title="Rename passkey" onCancel={onCancel} busy={busy}>
      <form ref={form} noValidate onSubmit={onSubmit}>
        <ErrorAlert ref={alertRef} message={alertMessage} />
        <Field
          id="rename-passkey"
          label="New name"
          autoComplete="off"
          maxLength={64}
          required
          {...bind("name", name, setName)}
        />
        <div className="actions">
          <Button type="submit" variant="primary" busy={busy}>
            Save name
          </Button>
          <Button busy={busy} onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

/** New recovery codes, shown this once: the server keeps only their hashes. */
function RecoveryCodesDialog({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <Dialog title="Save these recovery codes" onCancel={onDone}>
      <div className="dialog-body">
        <p>
          Each code logs you in once, in place of your app or passkey, should you lose them. This is the only time
          they are shown: print them or keep them in a password manager.
        </p>
        <ol className="recovery-codes">
          {codes.map((code) => (
            <li key={code}>
              <code>{code}</code>
            </li>
          ))}
        </ol>
      </div>
      <div className="actions">
        <Button variant="primary" data-autofocus onClick={onDone}>
          Done
        </Button>
      </div>
    </Dialog>
  );
}
