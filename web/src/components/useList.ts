// What a back-office list page shares: the page of rows for the cursor and
// `?limit=` of the URL, the pager, what the last action said (a status or an
// alert), and focus on the page label after a page change (the button
// pressed may be gone).
import { useCallback, useEffect, useRef, useState } from "react";
import { toApiError } from "../forms";
import { limitFrom } from "../format";
import { type ListPage, useListPage, usePager } from "../pager";
import { useLocation } from "../router";

export function useList<T>(
  load: (query: { cursor: string | null; limit: number | null }) => Promise<ListPage<T>>,
) {
  const { search } = useLocation();
  const limit = limitFrom(search);
  const pager = usePager();
  const list = useListPage(load, pager.cursor, limit);
  const [status, setStatus] = useState<string | null>(null);
  const [alert, setAlert] = useState<string | null>(null);
  const pagerLabel = useRef<HTMLParagraphElement>(null);
  const [pageChanged, setPageChanged] = useState(false);

  useEffect(() => {
    if (pageChanged && !list.loading) {
      pagerLabel.current?.focus();
      setPageChanged(false);
    }
  }, [pageChanged, list.loading]);

  /** Shows what an action did (and clears an earlier alert). */
  const say = useCallback((message: string) => {
    setAlert(null);
    setStatus(message);
  }, []);

  /** Shows why an action failed (and clears an earlier status). */
  const fail = useCallback((caught: unknown) => {
    setStatus(null);
    setAlert(toApiError(caught).message);
  }, []);

  function turnPage(move: () => void) {
    setStatus(null);
    setAlert(null);
    setPageChanged(true);
    move();
  }

  const { nextCursor } = list;
  return {
    ...list,
    /** 1 for the first page. */
    page: pager.page,
    say,
    fail,
    /** For `ListMessages`: the action's status, else its alert or the list's error. */
    messages: {
      status,
      alert: alert ?? list.error?.message ?? null,
      onRetry: list.error ? list.reload : null,
    },
    /** For `PagerControls`. */
    pagerControls: {
      ref: pagerLabel,
      page: pager.page,
      isFirst: pager.isFirst,
      hasNext: nextCursor !== null,
      busy: list.loading,
      onFirst: () => turnPage(pager.first),
      onPrevious: () => turnPage(pager.previous),
      onNext: () => {
        if (nextCursor !== null) turnPage(() => pager.next(nextCursor));
      },
    },
  };
}
