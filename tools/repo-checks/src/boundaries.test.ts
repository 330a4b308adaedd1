import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM script without type declarations
import { checkBoundaries } from "./check-boundaries.mjs";

const root = resolve(__dirname, "../../..");
const scratch = mkdtempSync(join(tmpdir(), "visorlab-boundaries-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function copyTree(): string {
  const dir = mkdtempSync(join(scratch, "tree-"));
  for (const top of ["packages", "apps"]) {
    cpSync(join(root, top), join(dir, top), {
      recursive: true,
      filter: (src) => !/node_modules|[/\\]dist[/\\]?|[/\\]build[/\\]?/.test(src.slice(root.length)),
    });
  }
  return dir;
}

describe("layer rule", () => {
  it("holds for the repository as it is", () => {
    expect(checkBoundaries(root)).toEqual([]);
  });

  it("catches a planted upward import (x86-core importing vmx)", () => {
    const dir = copyTree();
    writeFileSync(
      join(dir, "packages/x86-core/src/planted.ts"),
      'import { VmxError } from "@visorlab/vmx";\nexport const x = VmxError;\n',
    );
    const v = checkBoundaries(dir);
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ file: "packages/x86-core/src/planted.ts", line: 1, from: "x86-core", to: "vmx" });
  });

  it("catches the guest side importing the host side through a relative path", () => {
    const dir = copyTree();
    writeFileSync(join(dir, "packages/call-vmm/src/planted.ts"), 'export * from "../../ept/src/index";\n');
    const v = checkBoundaries(dir);
    expect(v).toHaveLength(1);
    expect(v[0]).toMatchObject({ from: "call-vmm", to: "ept", reason: "the guest side imports the host side" });
  });

  it("catches an upward workspace dependency in package.json", () => {
    const dir = copyTree();
    const file = join(dir, "packages/ept/package.json");
    const pkg = JSON.parse(readFileSync(file, "utf8"));
    pkg.dependencies["@visorlab/bitvisor-core"] = "workspace:^";
    writeFileSync(file, JSON.stringify(pkg));
    const v = checkBoundaries(dir);
    expect(v).toEqual([
      expect.objectContaining({ file: "packages/ept/package.json", from: "ept", to: "bitvisor-core" }),
    ]);
  });
});
