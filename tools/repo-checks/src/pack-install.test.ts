import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// Publishing cannot be done from here; this proves what `changeset publish`
// would ship: each package packs (workspace: ranges rewritten), the tarballs
// install with plain npm into an empty project outside the workspace, and each
// entry point imports and works.
const root = resolve(__dirname, "../../..");
const scratch = mkdtempSync(join(tmpdir(), "visorlab-pack-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Per package: a module to import and an expression over it that must hold. */
const PROBES: Record<string, { dir: string; probe: string }> = {
  "@visorlab/x86-core": { dir: "packages/x86-core", probe: "new m.X86CoreError('STATE', 'x').code === 'STATE'" },
  "@visorlab/vmx": { dir: "packages/vmx", probe: "new m.VmxError('STATE', 'x').code === 'STATE'" },
  "@visorlab/ept": { dir: "packages/ept", probe: "new m.EptError('STATE', 'x').code === 'STATE'" },
  "@visorlab/smp": { dir: "packages/smp", probe: "new m.SmpError('STATE', 'x').code === 'STATE'" },
  "@visorlab/bitvisor-core": {
    dir: "packages/bitvisor-core",
    probe: "new m.BitvisorCoreError('STATE', 'x').code === 'STATE'",
  },
  "@visorlab/guest-linux": {
    dir: "packages/guest-linux",
    probe: "new m.GuestLinuxError('STATE', 'x').code === 'STATE'",
  },
  "@visorlab/call-vmm": { dir: "packages/call-vmm", probe: "new m.CallVmmError('NO_VMM', 'x').code === 'NO_VMM'" },
  "@visorlab/runner": { dir: "apps/runner", probe: "typeof m.main === 'function'" },
};

describe("npm pack + install in an empty project", () => {
  it("installs every package from its tarball and imports its entry point", () => {
    const tarballs = join(scratch, "tarballs");
    mkdirSync(tarballs);
    for (const { dir } of Object.values(PROBES)) {
      execFileSync(
        process.execPath,
        [join(root, "node_modules/pnpm/bin/pnpm.cjs"), "pack", "--pack-destination", tarballs],
        {
          cwd: join(root, dir),
          stdio: "pipe",
        },
      );
    }
    const files = readdirSync(tarballs).filter((f) => f.endsWith(".tgz"));
    expect(files).toHaveLength(Object.keys(PROBES).length);

    const app = join(scratch, "app");
    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "empty-app", version: "1.0.0", private: true, type: "module" }),
    );
    execFileSync(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error", ...files.map((f) => join(tarballs, f))],
      {
        cwd: app,
        stdio: "pipe",
      },
    );
    const script = Object.entries(PROBES)
      .map(
        ([name, { probe }]) =>
          `{ const m = await import(${JSON.stringify(name)}); if (!(${probe})) throw new Error(${JSON.stringify(`probe failed: ${name}`)}); console.log("ok " + ${JSON.stringify(name)}); }`,
      )
      .join("\n");
    writeFileSync(join(app, "probe.mjs"), script);
    const out = execFileSync(process.execPath, ["probe.mjs"], { cwd: app, encoding: "utf8" });
    expect(out.trim().split("\n")).toEqual(Object.keys(PROBES).map((n) => `ok ${n}`));
  });
});
