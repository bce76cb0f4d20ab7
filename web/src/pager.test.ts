import { act, renderHook } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import {
  currentCursor,
  firstPage,
  firstPager,
  isFirstPage,
  nextPage,
  pageNumber,
  previousPage,
  usePager,
} from "./pager";

describe("the pager's cursor stack", () => {
  it("starts on the first page, with no cursor", () => {
    expect(currentCursor(firstPager)).toBeNull();
    expect(pageNumber(firstPager)).toBe(1);
    expect(isFirstPage(firstPager)).toBe(true);
  });

  it("goes forward with each reply's nextCursor", () => {
    const second = nextPage(firstPager, "c2");
    const third = nextPage(second, "c3");
    expect(currentCursor(second)).toBe("c2");
    expect(currentCursor(third)).toBe("c3");
    expect(pageNumber(third)).toBe(3);
    expect(isFirstPage(third)).toBe(false);
    expect(firstPager.cursors).toEqual([null]); // Not changed in place.
  });

  it("goes back one page, and no further than the first", () => {
    const third = nextPage(nextPage(firstPager, "c2"), "c3");
    expect(currentCursor(previousPage(third))).toBe("c2");
    expect(currentCursor(previousPage(previousPage(third)))).toBeNull();
    expect(previousPage(firstPager)).toEqual(firstPager);
  });

  it("goes back to the start with 'First page'", () => {
    expect(firstPage()).toEqual({ cursors: [null] });
  });
});

describe("usePager", () => {
  it("keeps the stack as React state", () => {
    const { result } = renderHook(() => usePager());
    expect(result.current.cursor).toBeNull();
    act(() => result.current.next("c2"));
    act(() => result.current.next("c3"));
    expect(result.current.cursor).toBe("c3");
    expect(result.current.page).toBe(3);
    act(() => result.current.previous());
    expect(result.current.cursor).toBe("c2");
    act(() => result.current.first());
    expect(result.current.cursor).toBeNull();
    expect(result.current.isFirst).toBe(true);
  });
});
