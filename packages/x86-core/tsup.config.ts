import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", "asm/index": "src/asm/index.ts", "testing/index": "src/testing/index.ts" },
  format: ["esm"],
  dts: true,
  clean: true,
  target: "node20",
  sourcemap: false,
  external: ["iced-x86"],
});
