import { type FactorProof, type MfaStatus, getMfaStatus, stepUp, stepUpPasskeyOptions } from "../api";
import { Button } from "../components/Button";
import { Link } from "../components/Link";
import { Loading, Page } from "../components/Page";
import { RequireSession } from "../components/RequireSession";
import { SecondFactorForm } from "../components/SecondFactorForm";
import { useLoad } from "../components/useLoad";
import { NAVIGATING } from "../forms";
import { goTo, sameOriginPath } from "../navigation";
import { useLocation } from "../router";

export const NO_FACTOR_LINK = "/account?mfa=required";

/** Whether the account has any factor to prove. */
export function hasFactor(status: MfaStatus): boolean {
  return status.totp || status.passkeys.length > 0;
}

/**
 * `/mfa?next=…`: the gateway sends a signed-in person here when what they
 * opened (a tool behind the proxy, most often) wants a second factor this
 * session has not proved, or proved too long ago. Proving it updates the
 * session, then the browser loads `next` afresh: a tool is another
 * application, not a page of this app.
 */
export function StepUpPage() {
  return <RequireSession>{() => <StepUp />}</RequireSession>;
}

function StepUp() {
  const { search } = useLocation();
  const target = sameOriginPath(search.get("next")) ?? "/account";
  const [state, retry] = useLoad(getMfaStatus);

  async function prove(proof: FactorProof): Promise<typeof NAVIGATING> {
    await stepUp(proof);
    goTo(target);
    return NAVIGATING;
  }

  if (state.kind === "loading") return <Loading />;
  return (
    <Page title="Confirm it's you">
      {state.kind === "failed" ? (
        <>
          <p role="alert" className="alert">
            {state.error.message}
          </p>
          <div className="actions">
            <Button variant="primary" onClick={retry}>
              Try again
            </Button>
          </div>
        </>
      ) : hasFactor(state.value) ? (
        <>
          <p className="muted">What you opened asks for your second factor again before it lets you in.</p>
          <SecondFactorForm
            id="step-up"
            app={state.value.totp}
            recoveryCodes={state.value.recoveryCodesLeft > 0}
            passkey={state.value.passkeys.length > 0}
            passkeyOptions={stepUpPasskeyOptions}
            onProof={prove}
          />
        </>
      ) : (
        <>
          <p>
            What you opened asks for a second factor, and your account has none yet. Set up an authenticator app
            or a passkey, then open it again.
          </p>
          <p>
            <Link href={NO_FACTOR_LINK} className="button button-primary">
              Set up two-step verification
            </Link>
          </p>
        </>
      )}
      <p className="card-footer">
        <Link href="/account">Back to your account</Link>
      </p>
    </Page>
  );
}
