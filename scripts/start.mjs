// `npm start`: installs the workspace, builds the runner and everything it
// needs, then runs the composed machine on its default scenario.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pnpm, root, turbo } from "./pnpm.mjs";

pnpm(["install", "--frozen-lockfile"]);
turbo(["run", "build", "--filter=@visorlab/runner...", "--output-logs=errors-only"]);
const r = spawnSync(process.execPath, [join(root, "apps/runner/dist/visorlab.mjs"), ...process.argv.slice(2)], {
  stdio: "inherit",
});
process.exit(r.status ?? 1);
