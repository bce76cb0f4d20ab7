import { useCallback, useEffect, useState } from "react";
import type { ApiError } from "../api/client";
import { toApiError } from "../forms";

/** What a page's load is: under way, done, or failed (and retryable). */
export type Load<T> = { kind: "loading" } | { kind: "ready"; value: T } | { kind: "failed"; error: ApiError };

/**
 * Runs `load` once on mount and again on `retry()`. A 401 leaves the state
 * at "loading": the api module is already sending the browser to the login
 * page. An answer that arrives after unmounting or a newer try is dropped.
 */
export function useLoad<T>(load: () => Promise<T>): [Load<T>, () => void] {
  const [state, setState] = useState<Load<T>>({ kind: "loading" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    load().then(
      (value) => {
        if (current) setState({ kind: "ready", value });
      },
      (caught: unknown) => {
        const error = toApiError(caught);
        if (current && error.status !== 401) setState({ kind: "failed", error });
      },
    );
    return () => {
      current = false;
    };
    // `load` is a module function of the api; a new try is `attempt`.
  }, [attempt]);

  const retry = useCallback(() => {
    setState({ kind: "loading" });
    setAttempt((n) => n + 1);
  }, []);

  return [state, retry];
}
