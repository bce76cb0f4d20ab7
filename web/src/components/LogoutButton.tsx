import { useState } from "react";
import { logOut } from "../api";
import { toApiError } from "../forms";
import { goTo } from "../navigation";
import { Button } from "./Button";

/** Ends the browser session, then shows the login page. */
export function LogoutButton({ variant = "secondary" }: { variant?: "secondary" | "link" }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function logOutNow() {
    setBusy(true);
    setError(null);
    try {
      await logOut();
      goTo("/login");
    } catch (caught) {
      const failure = toApiError(caught);
      if (failure.status === 401) {
        goTo("/login"); // No session left to end.
        return;
      }
      setError(failure.message);
      setBusy(false);
    }
  }

  return (
    <span className="logout">
      <Button variant={variant} busy={busy} onClick={() => void logOutNow()}>
        Log out
      </Button>
      {error ? (
        <span role="alert" className="inline-alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}
