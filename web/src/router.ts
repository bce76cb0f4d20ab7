// A tiny router on the History API: the gateway answers index.html for every
// page, the app picks the view from location.pathname.
import { useSyncExternalStore } from "react";

const CHANGE = "natsauth:navigate";

/** Path without its trailing slash ("/" stays "/"). */
export function normalizePath(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

export type Params = Record<string, string>;

/**
 * Matches `path` against `pattern` ("/dashboard/posts", "/posts/:id"); a
 * trailing slash is ignored on both. Returns the `:name` segments, or null.
 */
export function matchPath(pattern: string, path: string): Params | null {
  const want = normalizePath(pattern).split("/");
  const have = normalizePath(path).split("/");
  if (want.length !== have.length) return null;
  const params: Params = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? "";
    const h = have[i] ?? "";
    if (w.startsWith(":")) {
      if (h === "") return null;
      try {
        params[w.slice(1)] = decodeURIComponent(h);
      } catch {
        return null;
      }
    } else if (w !== h) {
      return null;
    }
  }
  return params;
}

export interface Route<T> {
  path: string;
  view: T;
}

/** The first route whose pattern matches `path`, with its params. */
export function findRoute<T>(routes: readonly Route<T>[], path: string): { view: T; params: Params } | null {
  for (const route of routes) {
    const params = matchPath(route.path, path);
    if (params) return { view: route.view, params };
  }
  return null;
}

let navigations = 0;

/** True once the app has changed page without a reload. */
export function hasNavigated(): boolean {
  return navigations > 0;
}

/** Client-side navigation within the app (no reload). */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (!options.replace) navigations += 1;
  if (options.replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  window.dispatchEvent(new Event(CHANGE));
}

function onPopState() {
  navigations += 1;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onPopState);
  window.addEventListener("popstate", onChange);
  window.addEventListener(CHANGE, onChange);
  return () => {
    window.removeEventListener("popstate", onPopState);
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(CHANGE, onChange);
  };
}

const snapshot = () => window.location.pathname + window.location.search;

/** The current path and query; re-renders on every navigation. */
export function useLocation(): { pathname: string; search: URLSearchParams } {
  const current = useSyncExternalStore(subscribe, snapshot);
  const url = new URL(current, "http://app.invalid");
  return { pathname: url.pathname, search: url.searchParams };
}
