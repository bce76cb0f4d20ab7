import { ApiError } from "./api/client";

/**
 * True when the server refused a mail link's token: one answer for a token
 * that is malformed, unknown, spent, expired or meant for something else
 * (400 naming the token, or naming no field), so the page cannot tell them
 * apart either. 410 is read the same way.
 */
export function isBadLink(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 410) return true;
  return error.status === 400 && (!error.hasFieldErrors || "token" in error.fieldErrors);
}
