import { Link } from "./Link";
import { LogoutButton } from "./LogoutButton";

const LINKS = [
  { href: "/dashboard/", label: "Users" },
  { href: "/dashboard/posts", label: "Posts" },
  { href: "/account", label: "Account" },
] as const;

/** The back-office's top bar: where you are, where else to go, Log out. */
export function AdminHeader({ current, email }: { current: string; email: string }) {
  return (
    <header className="topbar">
      <span className="brand">
        natsauth <span className="brand-part">back-office</span>
      </span>
      <nav aria-label="Back-office" className="topnav">
        <ul>
          {LINKS.map((link) => (
            <li key={link.href}>
              <Link href={link.href} aria-current={link.href === current ? "page" : undefined}>
                {link.label}
              </Link>
            </li>
          ))}
        </ul>
        <span className="who">{email}</span>
        <LogoutButton variant="link" />
      </nav>
    </header>
  );
}
