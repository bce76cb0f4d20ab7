import { Link } from "../components/Link";
import { Page } from "../components/Page";

/** A logged-in user who is not an ADMIN, on a back-office page. */
export function ForbiddenPage() {
  return (
    <Page title="Forbidden">
      <p>This page is for administrators.</p>
      <p>
        <Link href="/account">Go to your account</Link>
      </p>
    </Page>
  );
}
