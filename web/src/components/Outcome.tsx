import { type ReactNode, useEffect, useRef } from "react";

/**
 * How a one-shot form ended (a link's password set, an address verified),
 * shown in place of the form. It takes the focus when it appears, since the
 * button pressed is gone, so a screen reader reads it at once.
 */
export function Outcome({ kind, children }: { kind: "success" | "failure"; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <div
      ref={ref}
      tabIndex={-1}
      role={kind === "success" ? "status" : "alert"}
      className={kind === "success" ? "outcome outcome-success" : "outcome alert"}
    >
      {children}
    </div>
  );
}
