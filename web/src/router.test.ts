import { describe, expect, it } from "vitest";
import { findRoute, matchPath, normalizePath } from "./router";

describe("matchPath", () => {
  it("matches exact paths and ignores a trailing slash", () => {
    expect(matchPath("/login", "/login")).toEqual({});
    expect(matchPath("/dashboard/", "/dashboard/")).toEqual({});
    expect(matchPath("/dashboard/", "/dashboard")).toEqual({});
    expect(matchPath("/dashboard/posts", "/dashboard/posts/")).toEqual({});
    expect(matchPath("/", "/")).toEqual({});
  });

  it("does not match other paths", () => {
    expect(matchPath("/login", "/signup")).toBeNull();
    expect(matchPath("/dashboard/", "/dashboard/posts")).toBeNull();
    expect(matchPath("/dashboard/posts", "/dashboard")).toBeNull();
    expect(matchPath("/account", "/account/extra")).toBeNull();
    expect(matchPath("/", "/login")).toBeNull();
    expect(matchPath("/login", "/LOGIN")).toBeNull();
  });

  it("captures :params, decoded", () => {
    expect(matchPath("/posts/:id", "/posts/42")).toEqual({ id: "42" });
    expect(matchPath("/users/:email", "/users/a%40b.example")).toEqual({ email: "a@b.example" });
    expect(matchPath("/posts/:id", "/posts")).toBeNull();
    expect(matchPath("/posts/:id", "/posts/%E0%A4%A")).toBeNull();
  });
});

describe("findRoute", () => {
  const routes = [
    { path: "/login", view: "login" },
    { path: "/dashboard/", view: "users" },
    { path: "/dashboard/posts", view: "posts" },
  ];

  it("picks the route of the path", () => {
    expect(findRoute(routes, "/dashboard/")?.view).toBe("users");
    expect(findRoute(routes, "/dashboard/posts")?.view).toBe("posts");
    expect(findRoute(routes, "/login")?.view).toBe("login");
  });

  it("finds nothing for an unknown path", () => {
    expect(findRoute(routes, "/nowhere")).toBeNull();
  });
});

describe("normalizePath", () => {
  it("drops trailing slashes but keeps the root", () => {
    expect(normalizePath("/a/b//")).toBe("/a/b");
    expect(normalizePath("/")).toBe("/");
    expect(normalizePath("")).toBe("/");
  });
});
