import { type ReactNode, useCallback, useEffect, useState } from "react";
import { type SessionInfo, getSession } from "../api";
import type { ApiError } from "../api/client";
import { toApiError } from "../forms";
import { Button } from "./Button";
import { Loading, Page } from "./Page";
import { ForbiddenPage } from "../pages/Forbidden";

type State = { kind: "loading" } | { kind: "ready"; session: SessionInfo } | { kind: "failed"; error: ApiError };

interface RequireSessionProps {
  /** Only an ADMIN sees the page; anyone else sees "Forbidden". */
  admin?: boolean;
  children: (session: SessionInfo) => ReactNode;
}

/**
 * Asks who is logged in (GET /api/session) before showing a page. Without a
 * session the api module has already sent the browser to the login page.
 */
export function RequireSession({ admin = false, children }: RequireSessionProps) {
  const [state, setState] = useState<State>({ kind: "loading" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    getSession().then(
      (session) => {
        if (current) setState({ kind: "ready", session });
      },
      (caught: unknown) => {
        const error = toApiError(caught);
        // 401: on the way to the login page; keep showing "Loading…".
        if (current && error.status !== 401) setState({ kind: "failed", error });
      },
    );
    return () => {
      current = false;
    };
  }, [attempt]);

  const retry = useCallback(() => {
    setState({ kind: "loading" });
    setAttempt((n) => n + 1);
  }, []);

  switch (state.kind) {
    case "loading":
      return <Loading />;
    case "failed":
      return (
        <Page title="Something went wrong">
          <p role="alert" className="alert">
            {state.error.message}
          </p>
          <div className="actions">
            <Button variant="primary" onClick={retry}>
              Try again
            </Button>
          </div>
        </Page>
      );
    case "ready":
      if (admin && state.session.user.role !== "ADMIN") return <ForbiddenPage />;
      return <>{children(state.session)}</>;
  }
}
