import type { User } from "./api";

const dateTime = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" });

/** An RFC 3339 time as "Jan 2, 2026, 3:04 PM" (the reader's time zone). */
export function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** "Ada Lovelace", or null when neither name is set. */
export function fullName(user: Pick<User, "firstname" | "lastname">): string | null {
  const name = [user.firstname, user.lastname].filter((part) => part && part.trim()).join(" ");
  return name === "" ? null : name;
}

/** `?limit=` from the page's address, passed on to the API; null for its default. */
export function limitFrom(search: URLSearchParams): number | null {
  const value = search.get("limit");
  if (value === null || !/^\d+$/.test(value)) return null;
  const limit = Number.parseInt(value, 10);
  return limit > 0 ? limit : null;
}
