import type { Tool } from "../api";
import { Link } from "./Link";
import { LogoutButton } from "./LogoutButton";

const LINKS = [
  { href: "/dashboard/", label: "Users" },
  { href: "/dashboard/posts", label: "Posts" },
  { href: "/account", label: "Account" },
] as const;

/**
 * The back-office's top bar: where you are, where else to go (the app's
 * pages, then the internal tools the gateway puts behind the login), Log out.
 */
export function AdminHeader({ current, email, tools }: { current: string; email: string; tools: Tool[] }) {
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
          {tools.map((tool) => (
            // A tool is another application: a full page load, not the app's router.
            <li key={tool.href}>
              <a href={tool.href} className="tool">
                {tool.name}
              </a>
            </li>
          ))}
        </ul>
        <span className="who">{email}</span>
        <LogoutButton variant="link" />
      </nav>
    </header>
  );
}
