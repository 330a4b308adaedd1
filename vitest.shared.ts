import { defineConfig } from "vitest/config";

/**
 * The vitest settings every package shares: a JSON report per package that
 * `scripts/test-all.mjs` sums into the tree-wide `N passed, M failed` line.
 */
export const sharedTestConfig = defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    coverage: { provider: "v8", include: ["src/**"], reporter: ["text-summary", "html"] },
  },
});
