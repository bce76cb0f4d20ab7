import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The gateway serves `dist/`: `index.html` for every page and the hashed
// files under `/assets/`. `npm run dev` proxies the API to a gateway running
// on its default address.
export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
  },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
    },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
