import { Link } from "../components/Link";
import { Page } from "../components/Page";

export function NotFoundPage() {
  return (
    <Page title="Not found">
      <p>There is no page at this address.</p>
      <p>
        <Link href="/account">Go to your account</Link> or <Link href="/login">log in</Link>.
      </p>
    </Page>
  );
}
