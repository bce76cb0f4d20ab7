// The token of a mail's link (`/reset?token=…`, `/verify?token=…`): read
// once into the page's state, then taken out of the address bar, so it is
// not kept in the history, shown over a shoulder, or sent as a Referer. The
// page spends it only when the person submits (a POST); opening the link
// spends nothing, so a mail scanner that fetches it does no harm.
import { useEffect, useState } from "react";
import { navigate } from "./router";

/** The link's token, or null when the address has none. */
export function useLinkToken(): string | null {
  const [token] = useState(() => {
    const value = new URLSearchParams(window.location.search).get("token");
    return value === null || value.trim() === "" ? null : value;
  });
  useEffect(() => {
    const url = new URL(window.location.href);
    if (!url.searchParams.has("token")) return;
    url.searchParams.delete("token");
    navigate(url.pathname + url.search + url.hash, { replace: true });
  }, []);
  return token;
}
