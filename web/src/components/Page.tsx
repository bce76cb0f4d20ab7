import { type ReactNode, useEffect, useRef } from "react";
import { hasNavigated } from "../router";

interface PageProps {
  /** The page's heading, and its title in the browser tab. */
  title: string;
  /** "card": a centered box (log in, sign up, account); "wide": the back-office. */
  layout?: "card" | "wide";
  /** Above <main>: the back-office navigation. */
  header?: ReactNode;
  children: ReactNode;
}

/**
 * One page: its <title>, an optional header, and <main> with the heading.
 * After a navigation inside the app, focus goes to the heading, so a screen
 * reader starts reading the new page.
 */
export function Page({ title, layout = "card", header, children }: PageProps) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · natsauth`;
  }, [title]);
  useEffect(() => {
    if (hasNavigated()) heading.current?.focus();
  }, []);
  return (
    <>
      {header}
      <main className={`page page-${layout}`}>
        {layout === "card" ? (
          <div className="card">
            <h1 ref={heading} tabIndex={-1}>
              {title}
            </h1>
            {children}
          </div>
        ) : (
          <>
            <h1 ref={heading} tabIndex={-1}>
              {title}
            </h1>
            {children}
          </>
        )}
      </main>
    </>
  );
}

/** Shown while a page asks who is logged in. */
export function Loading() {
  return (
    <main className="page page-loading" aria-busy="true">
      <p role="status">Loading…</p>
    </main>
  );
}
