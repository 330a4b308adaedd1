/**
 * Freestanding C programs for x86-core, and the same C code as a host program:
 * compiled with gcc at test (or benchmark) time and cached in
 * `<package>/.native-cache/`, keyed by a hash of the sources and flags.
 *
 * The freestanding build is linked by `native/workload.ld` into a flat image
 * at {@link C_IMAGE_BASE} (entry first, `.bss` last and left to zero-filled
 * RAM); {@link readElfImage} takes its PT_LOAD segments out of the ELF file.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { threadId } from "node:worker_threads";
import { X86CoreError } from "../errors";
import type { PhysicalMemory } from "../phys-memory";
import { nativeOracleAvailable } from "./native-oracle";

/** Where `native/workload.ld` links freestanding programs. */
export const C_IMAGE_BASE = 0x40_0000;

/** Code generation flags shared by the freestanding and the hosted build. */
export const C_CODEGEN_FLAGS = [
  "-O2",
  "-fno-pic",
  "-fno-asynchronous-unwind-tables",
  "-mno-red-zone",
  "-fno-stack-protector",
  "-fcf-protection=none",
  "-fno-tree-loop-distribute-patterns",
] as const;

const FREESTANDING_FLAGS = [
  "-ffreestanding",
  "-nostdlib",
  "-static",
  "-Wl,--build-id=none",
  "-Wl,--no-warn-rwx-segments",
] as const;

/** One loadable segment of a linked program. */
export interface ImageSegment {
  /** Virtual (= physical, paging off) address. */
  address: number;
  /** The bytes from the file (`p_filesz`); the rest up to `memSize` is zero. */
  bytes: Uint8Array;
  memSize: number;
}

/** A linked freestanding program. */
export interface CImage {
  entry: number;
  segments: ImageSegment[];
  /** The ELF file it came from (for objdump when a test fails). */
  elfPath: string;
}

function nativeDir(): string {
  const candidates = [
    new URL("./native/", import.meta.url), // src/testing/c-program.ts
    new URL("../../src/testing/native/", import.meta.url), // dist/testing/index.js
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(join(path, "workload.ld"))) return path;
  }
  throw new X86CoreError("UNSUPPORTED", "C programs: src/testing/native not found (needs the package sources)");
}

function cacheDir(): string {
  let dir = nativeDir();
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  const d = join(dir, ".native-cache");
  mkdirSync(d, { recursive: true });
  return d;
}

/** Path of a source file under `src/testing/native/`. */
export function nativeSource(name: string): string {
  return join(nativeDir(), name);
}

function compile(kind: string, sources: readonly string[], flags: readonly string[], inputs: string[] = []): string {
  if (!nativeOracleAvailable())
    throw new X86CoreError("UNSUPPORTED", "compiling C programs needs x86-64 Linux with gcc");
  const paths = sources.map(nativeSource);
  const h = createHash("sha256").update(kind).update(flags.join(" "));
  for (const p of [...paths, ...inputs]) h.update(p.split("/").pop()!).update(readFileSync(p));
  const target = join(cacheDir(), `${kind}-${h.digest("hex").slice(0, 16)}`);
  if (existsSync(target)) return target;
  // Build under a private name and rename: parallel test workers may race here.
  const tmp = `${target}.tmp-${process.pid}-${threadId}`;
  const cc = spawnSync("gcc", [...flags, "-o", tmp, ...paths], { encoding: "utf8" });
  if (cc.status !== 0) {
    rmSync(tmp, { force: true });
    throw new X86CoreError("UNSUPPORTED", `gcc failed for ${kind}\n${cc.stderr ?? ""}${cc.error ?? ""}`);
  }
  renameSync(tmp, target);
  return target;
}

/**
 * Compiles and links `sources` (names under `src/testing/native/`) into a
 * freestanding image at {@link C_IMAGE_BASE}. `extraFlags` go after the
 * shared ones (e.g. `-mgeneral-regs-only`).
 */
export function buildFreestanding(sources: readonly string[], extraFlags: readonly string[] = []): CImage {
  const script = nativeSource("workload.ld");
  const flags = [...C_CODEGEN_FLAGS, ...FREESTANDING_FLAGS, ...extraFlags, "-T", script];
  const elfPath = compile("image", sources, flags, [script]);
  return { ...readElfImage(readFileSync(elfPath)), elfPath };
}

/** Compiles `sources` into a host program with the same code generation flags; returns its path. */
export function buildHosted(sources: readonly string[], extraFlags: readonly string[] = []): string {
  return compile("host", sources, [...C_CODEGEN_FLAGS, "-no-pie", ...extraFlags]);
}

/**
 * The entry point and PT_LOAD segments of a 64-bit little-endian ELF
 * executable. Throws `X86CoreError` (INVALID_ARGUMENT) for anything else.
 */
export function readElfImage(elf: Uint8Array): { entry: number; segments: ImageSegment[] } {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const isElf64 =
    elf.length >= 64 &&
    v.getUint32(0, false) === 0x7f454c46 &&
    elf[4] === 2 &&
    elf[5] === 1 &&
    v.getUint16(18, true) === 62;
  if (!isElf64) throw new X86CoreError("INVALID_ARGUMENT", "not a little-endian x86-64 ELF64 file");
  const entry = Number(v.getBigUint64(0x18, true));
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  const segments: ImageSegment[] = [];
  for (let k = 0; k < phnum; k++) {
    const p = phoff + k * phentsize;
    if (v.getUint32(p, true) !== 1) continue; // PT_LOAD
    const offset = Number(v.getBigUint64(p + 8, true));
    const address = Number(v.getBigUint64(p + 16, true));
    const fileSize = Number(v.getBigUint64(p + 32, true));
    const memSize = Number(v.getBigUint64(p + 40, true));
    segments.push({ address, bytes: elf.slice(offset, offset + fileSize), memSize });
  }
  return { entry, segments };
}

/** Copies an image's segments into physical memory (the `.bss` tails are zeroed). */
export function loadImage(mem: PhysicalMemory, image: { segments: readonly ImageSegment[] }): void {
  for (const s of image.segments) {
    mem.writeBytes(s.address, s.bytes);
    if (s.memSize > s.bytes.length)
      mem.writeBytes(s.address + s.bytes.length, new Uint8Array(s.memSize - s.bytes.length));
  }
}

/** Runs a hosted program and returns its standard output lines. */
export function runHosted(path: string, args: readonly string[]): string[] {
  const r = spawnSync(path, args, { encoding: "utf8" });
  if (r.status !== 0) throw new X86CoreError("STATE", `${path} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim().split("\n");
}
