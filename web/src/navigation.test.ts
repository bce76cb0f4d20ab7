import { describe, expect, it } from "vitest";
import { sameOriginPath } from "./navigation";

// The gateway's lists (gateway/src/session/next.rs): what a login page may
// be sent back to, and every redirect trick it refuses.
const ACCEPTED = [
  "/account",
  "/dashboard/",
  "/dashboard/posts?limit=5&cursor=abc",
  "/dashboard/users#top",
  "/a/b.c/d..e/...",
  "/search?q=a%2Bb",
  "/caf%C3%A9",
  "/proxy/grafana/d/abc?orgId=1&from=now-6h",
];

const REFUSED = [
  "",
  "account",
  "evil.example/account",
  "@evil.example",
  ".evil.example",
  "https://evil.example/",
  "http://evil.example",
  "HTTPS://evil.example",
  "//evil.example",
  "///evil.example",
  "////evil.example/",
  "//evil.example@127.0.0.1/",
  "//127.0.0.1@evil.example/",
  "javascript:alert(1)",
  "JaVaScRiPt:alert(1)",
  " javascript:alert(1)",
  "/javascript:alert(1)//",
  "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
  "/\\evil.example",
  "\\/evil.example",
  "\\\\evil.example",
  "/\\/evil.example/",
  "/https:/\\evil.example/",
  "/ /evil.example",
  "/ \\evil.example",
  "/\t/evil.example",
  "/\t\\evil.example",
  "/\u000b/evil.example",
  "/\n/evil.example",
  "/\r/evil.example",
  "/\t\t/\t\\evil.example",
  "/\u0000/evil.example",
  "/account\n",
  "/./\\evil.example",
  "/.//evil.example",
  "/..//evil.example",
  "/./../../\\evil.example",
  "/%2f%2fevil.example",
  "/%2F/evil.example",
  "/%5cevil.example",
  "/%5C%5Cevil.example",
  "/%09/evil.example",
  "/%0d%0a/evil.example",
  "/%00/evil.example",
  "/%2e%2e%2f%2fevil.example",
  "/%252f%252fevil.example",
  "/%25252f%25252fevil.example",
  "%2f%2fevil.example",
  "/%68%74%74%70%3a%2f%2fevil.example",
  "/%ff%fe",
  "/https://evil.example",
  "/http://evil.example/%2e%2e",
];

describe("sameOriginPath", () => {
  it("follows a path on this origin", () => {
    for (const next of ACCEPTED) expect(sameOriginPath(next), next).toBe(next);
  });

  it("refuses every redirect trick the gateway refuses", () => {
    for (const next of REFUSED) expect(sameOriginPath(next), JSON.stringify(next)).toBeNull();
  });

  it("refuses no next and one that is too long", () => {
    expect(sameOriginPath(null)).toBeNull();
    expect(sameOriginPath(`/${"a".repeat(2047)}`)).toBe(`/${"a".repeat(2047)}`);
    expect(sameOriginPath(`/${"a".repeat(2048)}`)).toBeNull();
  });
});
