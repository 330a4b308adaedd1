/**
 * Sparse RAM: a 4 GiB PhysicalMemory costs host memory only for the pages
 * touched. Measured in a child Node process (its own heap, `--expose-gc`) so
 * the test runner's allocations do not blur the numbers: the package sources
 * are transpiled to JavaScript with TypeScript's `transpileModule` first.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SRC = dirname(fileURLToPath(import.meta.url));
let outDir = "";

/** Transpiles every non-test module of src/ to ESM JavaScript with explicit `.js` specifiers. */
function transpileSources(from: string, to: string): void {
  for (const name of readdirSync(from)) {
    const path = join(from, name);
    if (statSync(path).isDirectory()) {
      transpileSources(path, join(to, name));
      continue;
    }
    if (!name.endsWith(".ts") || name.endsWith(".test.ts")) continue;
    const { outputText } = ts.transpileModule(readFileSync(path, "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    });
    const js = outputText.replace(/(from\s+|import\s*\(\s*)"(\.{1,2}\/[^"]+)"/g, (m, lead: string, spec: string) => {
      const file = join(dirname(path), spec);
      if (statSync(`${file}.ts`, { throwIfNoEntry: false }) !== undefined) return `${lead}"${spec}.js"`;
      if (statSync(join(file, "index.ts"), { throwIfNoEntry: false }) !== undefined) return `${lead}"${spec}/index.js"`;
      return m; // already a file name (./x.js)
    });
    mkdirSync(to, { recursive: true });
    writeFileSync(join(to, name.replace(/\.ts$/, ".js")), js);
  }
}

function runChild(script: string): Record<string, number> {
  const file = join(outDir, `child-${Math.abs(hash(script))}.mjs`);
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ["--expose-gc", file], { encoding: "utf8", cwd: outDir });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), "x86core-mem-"));
  transpileSources(SRC, outDir);
  writeFileSync(join(outDir, "package.json"), JSON.stringify({ type: "module" }));
});

afterAll(() => {
  if (outDir !== "") rmSync(outDir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

describe("sparse physical memory", () => {
  it("a 4 GiB address space with 64 MiB touched grows RSS by less than 150 MiB", () => {
    const r = runChild(`
      import { PhysicalMemory } from "./phys-memory.js";
      const settle = () => { for (let i = 0; i < 4; i++) globalThis.gc(); };
      settle();
      const before = process.memoryUsage().rss;
      const mem = new PhysicalMemory({ ramSize: 4 * 1024 ** 3 });
      // 64 MiB = 16384 pages, spread over the whole 4 GiB (every 64th page), one write each.
      const pages = 16384, stride = (4 * 1024 ** 3) / pages;
      for (let k = 0; k < pages; k++) mem.write(k * stride + (k % 4093), 4, k);
      // Reads of untouched RAM allocate nothing.
      let zeros = 0;
      for (let k = 0; k < 100000; k++) if (mem.read(((k * 2654435761) % 1048576) * 4096 + 2048, 1) === 0) zeros++;
      let ok = 0;
      for (let k = 0; k < pages; k++) if (mem.read(k * stride + (k % 4093), 4) === k) ok++;
      settle();
      const after = process.memoryUsage().rss;
      console.log(JSON.stringify({ growth: after - before, touched: mem.touchedPages, ok, zeros }));
    `);
    console.log(`sparse RAM: ${(r.growth! / MiB).toFixed(1)} MiB RSS growth for ${r.touched} touched pages`);
    expect(r.touched).toBe(16384);
    expect(r.ok).toBe(16384);
    expect(r.zeros).toBeGreaterThan(99_000);
    expect(r.growth).toBeGreaterThan(60 * MiB); // the pages are really there …
    expect(r.growth).toBeLessThan(150 * MiB); // … and cost little more than their 64 MiB
  });

  it("a processor storing to 64 MiB of a 4 GiB machine through its MMU stays under 150 MiB too", () => {
    const r = runChild(`
      import { PhysicalMemory } from "./phys-memory.js";
      import { Cpu } from "./cpu.js";
      const settle = () => { for (let i = 0; i < 4; i++) globalThis.gc(); };
      settle();
      const before = process.memoryUsage().rss;
      const mem = new PhysicalMemory({ ramSize: 4 * 1024 ** 3 });
      const cpu = new Cpu(mem);
      // Flat mode (paging off): architectural 8-byte stores, one per touched page.
      const pages = 16384, stride = (4 * 1024 ** 3) / pages;
      for (let k = 0; k < pages; k++) cpu.write64(k * stride + 8 * (k % 500), k, ~k >>> 0);
      let ok = 0;
      for (let k = 0; k < pages; k++) if (cpu.read64(k * stride + 8 * (k % 500)) === k && cpu.hi === (~k >>> 0)) ok++;
      settle();
      const after = process.memoryUsage().rss;
      console.log(JSON.stringify({ growth: after - before, touched: mem.touchedPages, ok }));
    `);
    console.log(`sparse RAM via the MMU: ${(r.growth! / MiB).toFixed(1)} MiB RSS growth`);
    expect(r.touched).toBe(16384);
    expect(r.ok).toBe(16384);
    expect(r.growth).toBeLessThan(150 * MiB);
  });
});
