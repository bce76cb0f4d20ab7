// Cursor paging as a stack: the cursors of the pages walked through, so
// "Previous page" and "First page" can go back (the API only goes forward).
import { useCallback, useEffect, useState } from "react";
import type { ApiError } from "./api/client";
import { toApiError } from "./forms";

export interface Pager {
  /** cursors[0] is the first page (null); the last entry is the current page. */
  readonly cursors: readonly (string | null)[];
}

export const firstPager: Pager = { cursors: [null] };

export function currentCursor(pager: Pager): string | null {
  return pager.cursors[pager.cursors.length - 1] ?? null;
}

/** 1 for the first page. */
export function pageNumber(pager: Pager): number {
  return pager.cursors.length;
}

export function isFirstPage(pager: Pager): boolean {
  return pager.cursors.length <= 1;
}

/** Moves to the page that starts at `nextCursor` (the current reply's). */
export function nextPage(pager: Pager, nextCursor: string): Pager {
  return { cursors: [...pager.cursors, nextCursor] };
}

export function previousPage(pager: Pager): Pager {
  return isFirstPage(pager) ? pager : { cursors: pager.cursors.slice(0, -1) };
}

export function firstPage(): Pager {
  return firstPager;
}

/** The pager as React state. */
export function usePager() {
  const [pager, setPager] = useState<Pager>(firstPager);
  return {
    pager,
    cursor: currentCursor(pager),
    page: pageNumber(pager),
    isFirst: isFirstPage(pager),
    next: useCallback((cursor: string) => setPager((p) => nextPage(p, cursor)), []),
    previous: useCallback(() => setPager(previousPage), []),
    first: useCallback(() => setPager(firstPage), []),
  };
}

export interface ListPage<T> {
  items: T[];
  /** Null (or absent) on the last page. */
  nextCursor?: string | null;
}

/**
 * One page of a list, loaded again whenever the cursor or limit changes.
 * `setItems` lets a page change a row (or drop one) without reloading.
 */
export function useListPage<T>(
  load: (query: { cursor: string | null; limit: number | null }) => Promise<ListPage<T>>,
  cursor: string | null,
  limit: number | null,
) {
  const [page, setPage] = useState<{ items: T[]; nextCursor: string | null } | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setLoading(true);
    setError(null);
    load({ cursor, limit }).then(
      (reply) => {
        if (!current) return;
        setPage({ items: reply.items, nextCursor: reply.nextCursor ?? null });
        setLoading(false);
      },
      (caught: unknown) => {
        if (!current) return;
        setError(toApiError(caught));
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
  }, [load, cursor, limit, attempt]);

  const setItems = useCallback((update: (items: T[]) => T[]) => {
    setPage((p) => (p ? { ...p, items: update(p.items) } : p));
  }, []);

  return {
    items: page?.items ?? null,
    nextCursor: page?.nextCursor ?? null,
    loading,
    error,
    setItems,
    reload: useCallback(() => setAttempt((n) => n + 1), []),
  };
}
