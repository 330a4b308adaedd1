#!/usr/bin/env node
// The layer rule of ARCHITECTURE.md: a package may import only the layers
// below it, and the guest side never imports the host side. Checks every
// import specifier in each package's sources and every workspace dependency
// in its package.json. Run as a script it prints the violations and exits 1.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** What each workspace package may depend on (by folder name). */
export const ALLOWED = {
  "x86-core": [],
  vmx: ["x86-core"],
  ept: ["vmx", "x86-core"],
  smp: ["ept", "vmx", "x86-core"],
  "bitvisor-core": ["smp", "ept", "vmx", "x86-core"],
  "guest-linux": ["x86-core"],
  "call-vmm": ["guest-linux", "x86-core"],
  runner: ["bitvisor-core", "smp", "ept", "vmx", "x86-core", "guest-linux", "call-vmm"],
};

/** The host-side layers: a guest-side package importing one of these is a violation twice over. */
export const HOST_SIDE = ["vmx", "ept", "smp", "bitvisor-core"];
/** The guest-side layers. */
export const GUEST_SIDE = ["guest-linux", "call-vmm"];

const LAYER_DIRS = { runner: "apps/runner" };
const dirOf = (name) => LAYER_DIRS[name] ?? `packages/${name}`;

function* sourceFiles(dir) {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* sourceFiles(p);
    else if (/\.(ts|tsx|mts|cts|js|mjs|cjs)$/.test(e)) yield p;
  }
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"']+)["']/g;

/**
 * Returns every violation of the layer rule under `root`, as
 * `{ file, line, from, to, reason }` records (empty when the tree is clean).
 */
export function checkBoundaries(root) {
  const violations = [];
  const layers = Object.keys(ALLOWED);
  const absDirs = Object.fromEntries(layers.map((l) => [l, resolve(root, dirOf(l))]));
  const layerOfPath = (p) => layers.find((l) => p === absDirs[l] || p.startsWith(absDirs[l] + sep));
  const judge = (from, to) => {
    if (to === from || ALLOWED[from].includes(to)) return undefined;
    if (GUEST_SIDE.includes(from) && HOST_SIDE.includes(to)) return "the guest side imports the host side";
    return layers.indexOf(to) >= 0 ? `${from} may not import ${to} (not a layer below it)` : undefined;
  };
  for (const from of layers) {
    const pkgFile = join(absDirs[from], "package.json");
    if (existsSync(pkgFile)) {
      const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
      for (const field of ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"]) {
        for (const dep of Object.keys(pkg[field] ?? {})) {
          const m = /^@visorlab\/(.+)$/.exec(dep);
          const reason = m && m[1] in ALLOWED ? judge(from, m[1]) : undefined;
          if (reason) violations.push({ file: relative(root, pkgFile), line: 0, from, to: m[1], reason });
        }
      }
    }
    for (const file of sourceFiles(join(absDirs[from], "src"))) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(SPECIFIER)) {
        const spec = m[1];
        let to;
        const scoped = /^@visorlab\/([^/]+)/.exec(spec);
        if (scoped) to = scoped[1];
        else if (spec.startsWith(".")) to = layerOfPath(resolve(file, "..", spec));
        if (!to || !(to in ALLOWED)) continue;
        const reason = judge(from, to);
        if (reason) {
          const line = text.slice(0, m.index).split("\n").length;
          violations.push({ file: relative(root, file), line, from, to, reason });
        }
      }
    }
  }
  return violations;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(fileURLToPath(import.meta.url), "../../../..");
  const v = checkBoundaries(root);
  for (const x of v) console.error(`${x.file}:${x.line}: ${x.reason}`);
  console.log(v.length === 0 ? "layer rule: no violations" : `layer rule: ${v.length} violation(s)`);
  process.exit(v.length === 0 ? 0 : 1);
}
