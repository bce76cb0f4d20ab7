import type { ButtonHTMLAttributes, MouseEvent } from "react";

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  /** A request of this button runs: it does nothing until the answer. */
  busy?: boolean;
  variant?: "primary" | "secondary" | "danger" | "link";
};

/**
 * A button that is disabled while its request runs. It uses aria-disabled,
 * not `disabled`, so a keyboard user's focus stays on it (a disabled button
 * drops focus to the page) and screen readers still announce it as dimmed.
 */
export function Button({ busy = false, variant = "secondary", className, onClick, type = "button", ...rest }: ButtonProps) {
  function click(event: MouseEvent<HTMLButtonElement>) {
    if (busy) {
      event.preventDefault();
      return;
    }
    onClick?.(event);
  }
  const classes = ["button", `button-${variant}`, className].filter(Boolean).join(" ");
  return <button type={type} className={classes} aria-disabled={busy || undefined} onClick={click} {...rest} />;
}
