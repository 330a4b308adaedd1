import { nodeResolve } from "@rollup/plugin-node-resolve";

/** One self-contained executable: `node dist/visorlab.mjs` needs no node_modules. */
export default {
  input: "dist/cli.js",
  output: { file: "dist/visorlab.mjs", format: "es", banner: "#!/usr/bin/env node", inlineDynamicImports: true },
  plugins: [nodeResolve({ extensions: [".js", ".mjs"], preferBuiltins: true })],
  external: [/^node:/],
};
