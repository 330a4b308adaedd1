import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", "testing/index": "src/testing/index.ts" },
  format: ["esm"],
  dts: true,
  clean: true,
  target: "node20",
  sourcemap: false,
  external: ["@visorlab/x86-core", "@visorlab/x86-core/testing"],
});
