import { describe, expect, it } from "vitest";
import { base64, base64url, fromBase64url, svgDataUrl } from "./base64";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("base64url", () => {
  it("uses - and _ and drops the padding", () => {
    expect(base64(bytes(0xfb, 0xff))).toBe("+/8=");
    expect(base64url(bytes(0xfb, 0xff))).toBe("-_8");
    expect(base64url(bytes())).toBe("");
    expect(base64url(new TextEncoder().encode("hello"))).toBe("aGVsbG8");
  });

  it("encodes only the bytes a view covers", () => {
    const buffer = bytes(1, 2, 3, 4, 5).buffer;
    expect(base64url(new Uint8Array(buffer, 1, 2))).toBe(base64url(bytes(2, 3)));
    expect(base64url(new DataView(buffer, 3))).toBe(base64url(bytes(4, 5)));
    expect(base64url(buffer)).toBe(base64url(bytes(1, 2, 3, 4, 5)));
  });

  it("encodes large buffers", () => {
    const large = new Uint8Array(40_000).map((_, i) => i % 256);
    expect(new Uint8Array(fromBase64url(base64url(large)))).toEqual(large);
  });
});

describe("fromBase64url", () => {
  it("reads unpadded, padded and standard base64", () => {
    for (const text of ["-_8", "-_8=", "+/8=", "+/8"]) {
      expect(new Uint8Array(fromBase64url(text))).toEqual(bytes(0xfb, 0xff));
    }
    expect(new Uint8Array(fromBase64url(""))).toEqual(bytes());
  });

  it("refuses what is not base64", () => {
    for (const text of ["a", "ab$c", "ab c", "a=b"]) {
      expect(() => fromBase64url(text), text).toThrow(SyntaxError);
    }
  });
});

describe("svgDataUrl", () => {
  it("encodes the document as UTF-8", () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><title>Café ✓</title></svg>';
    const url = svgDataUrl(svg);
    expect(url.startsWith("data:image/svg+xml;base64,")).toBe(true);
    const decoded = new TextDecoder().decode(fromBase64url(url.slice("data:image/svg+xml;base64,".length)));
    expect(decoded).toBe(svg);
  });
});
