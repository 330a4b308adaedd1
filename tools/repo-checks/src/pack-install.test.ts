import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
  "@visorlab/x86-core": {
    dir: "packages/x86-core",
    probe:
      "(() => { const mem = new m.PhysicalMemory({ ramSize: 1 << 20 }); mem.writeBytes(0x1000, Uint8Array.of(0xb8, 7, 0, 0, 0, 0xf4)); const cpu = new m.Cpu(mem); cpu.rip = 0x1000; return cpu.run({ maxInstructions: 10 }).reason === 'halt' && cpu.getReg64(0) === 7n; })()",
  },
  "@visorlab/vmx": {
    dir: "packages/vmx",
    probe: "m.defaultVmxProfile().revisionId > 0 && m.exitReasonName(18) !== undefined",
  },
  "@visorlab/ept": {
    dir: "packages/ept",
    probe: "typeof m.attachEpt === 'function' && typeof m.walkEpt === 'function'",
  },
  "@visorlab/smp": { dir: "packages/smp", probe: "new m.Machine({ cpus: 2, ramSize: 1 << 22 }).cpus.length === 2" },
  "@visorlab/bitvisor-core": {
    dir: "packages/bitvisor-core",
    probe: "new m.VmmcallRegistry().register('drvhook', m.drvhook) === 1",
  },
  "@visorlab/guest-linux": {
    dir: "packages/guest-linux",
    probe: "m.NR.finit_module === 313 && m.NR.init_module === 175",
  },
  "@visorlab/call-vmm": {
    dir: "packages/call-vmm",
    probe: "m.isCallable({ vmmcallNumber: 4, vmmcallType: 1 }) && !m.isCallable({ vmmcallNumber: 0, vmmcallType: 1 })",
  },
  "@visorlab/runner": { dir: "apps/runner", probe: "m.main(['list'], () => {}) === 0" },
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

  it("runs the bundled visorlab command from a folder with no node_modules", () => {
    const dir = join(scratch, "bare");
    mkdirSync(dir);
    copyFileSync(join(root, "apps/runner/dist/visorlab.mjs"), join(dir, "visorlab.mjs"));
    const help = execFileSync(process.execPath, ["visorlab.mjs", "--help"], { cwd: dir, encoding: "utf8" });
    expect(help).toContain("visorlab run <scenario>");
    const list = execFileSync(process.execPath, ["visorlab.mjs", "list"], { cwd: dir, encoding: "utf8" });
    expect(list).toContain("drvhook");
  });
});
