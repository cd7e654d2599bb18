import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: forks keep native modules (better-sqlite3) and workers isolated.
    pool: "forks",
    maxWorkers: 2,
  },
});
