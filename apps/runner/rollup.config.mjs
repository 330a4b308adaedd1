import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import commonjs from "@rollup/plugin-commonjs";
import { nodeResolve } from "@rollup/plugin-node-resolve";


/**
 * iced-x86's Node build reads its .wasm file next to itself at load time;
 * the bundle must run with no node_modules, so the bytes are inlined (base64)
 * in place of that read.
 */
function inlineIcedWasm() {
  return {
    name: "inline-iced-wasm",
    transform(code, id) {
      if (!/iced-x86[\\/]iced_x86\.js$/.test(id)) return null;
      const wasmPath = join(dirname(id), "iced_x86_bg.wasm");
      const b64 = readFileSync(wasmPath).toString("base64");
      const pattern = /require\(['"]path['"]\)\.join\(__dirname, ['"]iced_x86_bg\.wasm['"]\)/;
      if (!pattern.test(code)) this.error("iced-x86 no longer loads its wasm the way this plugin expects");
      const out = code
        .replace(pattern, '"iced_x86_bg.wasm"')
        .replace(/require\(['"]fs['"]\)\.readFileSync\(path\)/, `Buffer.from(${JSON.stringify(b64)}, "base64")`);
      if (out.includes("readFileSync(path)")) this.error("could not inline iced-x86's wasm");
      return { code: out, map: null };
    },
  };
}

/** One self-contained executable: `node dist/visorlab.mjs` needs no node_modules. */
export default {
  input: "dist/cli.js",
  output: { file: "dist/visorlab.mjs", format: "es", banner: "#!/usr/bin/env node", inlineDynamicImports: true },
  plugins: [
    inlineIcedWasm(),
    nodeResolve({ extensions: [".js", ".mjs", ".cjs"], preferBuiltins: true }),
    commonjs(),
  ],
  external: [/^node:/, "fs", "path", "util", "child_process", "os", "crypto"],
  onwarn(w, warn) {
    if (w.code === "CIRCULAR_DEPENDENCY" || w.code === "THIS_IS_UNDEFINED") return;
    warn(w);
  },
};
