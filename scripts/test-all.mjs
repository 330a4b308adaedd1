// `npm test`: installs the workspace, then lints, type-checks, builds and
// tests every package through turbo, and ends with one summary line for the
// whole tree: `<N> passed, <M> failed[, <K> skipped]`.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pnpm, root, turbo } from "./pnpm.mjs";

pnpm(["install", "--frozen-lockfile"]);

const dirs = ["packages", "apps", "tools"].flatMap((top) =>
  existsSync(join(root, top)) ? readdirSync(join(root, top)).map((d) => join(root, top, d)) : [],
);
for (const d of dirs) rmSync(join(d, "test-results.json"), { force: true });

const status = turbo(["run", "lint", "typecheck", "build", "test", "--continue"], {
  allowFailure: true,
});

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const d of dirs) {
  if (!existsSync(join(d, "package.json"))) continue;
  const pkg = JSON.parse(readFileSync(join(d, "package.json"), "utf8"));
  if (!pkg.scripts?.test) continue;
  const file = join(d, "test-results.json");
  if (!existsSync(file)) {
    missing.push(pkg.name);
    continue;
  }
  const r = JSON.parse(readFileSync(file, "utf8"));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
}
if (missing.length > 0) console.log(`no test report from: ${missing.join(", ")}`);
console.log("");
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
process.exit(status !== 0 || failed > 0 || missing.length > 0 ? 1 : 0);
