import type { ReactNode } from "react";
import { type SessionInfo, getSession } from "../api";
import { Button } from "./Button";
import { Loading, Page } from "./Page";
import { ForbiddenPage } from "../pages/Forbidden";
import { useLoad } from "./useLoad";

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
  const [state, retry] = useLoad(getSession);

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
      if (admin && state.value.user.role !== "ADMIN") return <ForbiddenPage />;
      return <>{children(state.value)}</>;
  }
}
