// Full-page navigations: after login and logout, and when a session is gone.
// Kept in one place so unit tests can watch them (jsdom cannot navigate).

/** Loads `url` as a new page (the server decides what it shows). */
export function goTo(url: string): void {
  window.location.assign(url);
}

/** The login page, asking to come back to `path` (path and query) afterwards. */
export function loginUrl(path: string): string {
  return `/login?next=${encodeURIComponent(path)}`;
}

/** The current page's path and query, as `next` wants it. */
export function currentPath(): string {
  return window.location.pathname + window.location.search;
}
