// Runs the pinned pnpm without needing it installed globally: the root
// devDependency once `node_modules` exists, `npx pnpm@<pinned>` before that.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pinned = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager;

/** Runs pnpm with `args` in the repository root; returns the exit status. */
export function pnpm(args, opts = {}) {
  const local = join(root, "node_modules", "pnpm", "bin", "pnpm.cjs");
  return existsSync(local)
    ? spawnChecked(process.execPath, [local, ...args], opts)
    : spawnChecked("npx", ["-y", pinned, ...args], opts);
}

/** Runs turbo (installed by `pnpm install`) with `args`; returns the exit status. */
export function turbo(args, opts = {}) {
  return spawnChecked(join(root, "node_modules", ".bin", "turbo"), args, opts);
}

function spawnChecked(cmd, argv, { allowFailure = false } = {}) {
  // turbo spawns `pnpm` from each package folder, so the PATH entry must be absolute.
  const bin = join(root, "node_modules", ".bin");
  const env = {
    ...process.env,
    PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`,
    TURBO_TELEMETRY_DISABLED: "1",
    DO_NOT_TRACK: "1",
  };
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", env });
  const status = r.status ?? 1;
  if (status !== 0 && !allowFailure) {
    console.error(`${cmd} ${argv.join(" ")} failed with status ${status}`);
    process.exit(status);
  }
  return status;
}
