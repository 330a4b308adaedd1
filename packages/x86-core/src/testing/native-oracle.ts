/**
 * A native-CPU oracle for differential tests: runs small x86-64 code snippets
 * on the host processor (x86-64 Linux + gcc) and reports the state they end in.
 *
 * The C harness `native/harness.c` is compiled on first use with `gcc -O2` and
 * cached in `<package>/.native-cache/`, keyed by a hash of its source. One call
 * of {@link runNative} is one process run for the whole batch.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { X86CoreError } from "../errors";

/** One snippet to run natively. */
export interface NativeCase {
  /** Instruction bytes to run (at most 64); the harness appends its own epilogue. */
  code: Uint8Array;
  /** The 16 GPRs: rax rcx rdx rbx rsp rbp rsi rdi r8..r15. rsp is ignored (see {@link NATIVE_INITIAL_RSP}). */
  regs: bigint[];
  /** Initial arithmetic flags and DF; only the bits of {@link NATIVE_RFLAGS_MASK} are taken. */
  rflags: bigint;
  /** Optional xmm0..xmm15 as 128-bit values (low 64 | high 64 << 64); zeros when absent. */
  xmm?: bigint[];
  /** Optional MXCSR, default 0x1F80. */
  mxcsr?: number;
  /** Optional scratch buffer (at most 4096 bytes) at {@link NATIVE_MEMORY_ADDRESS}; needs `memReg`. */
  memory?: Uint8Array;
  /** GPR index that receives the scratch buffer's address (overrides `regs[memReg]`; not 4). */
  memReg?: number;
}

/** What stopped a case early. `TIMEOUT` and `SIGSYS` go beyond the classic fault signals (see {@link runNative}). */
export type NativeSignal = "SIGFPE" | "SIGSEGV" | "SIGILL" | "SIGBUS" | "SIGTRAP" | "SIGSYS" | "TIMEOUT";

/** The state a case ended in. */
export interface NativeResult {
  /** The 16 GPRs at the end (regs[4] is the final rsp on the private stack). */
  regs: bigint[];
  /** Raw RFLAGS as the processor had them (includes the reserved bit 1 and IF; mask for comparisons). */
  rflags: bigint;
  /** xmm0..xmm15 as 128-bit values. */
  xmm: bigint[];
  mxcsr: number;
  /** The scratch buffer after the run, when the case had one (same length as the input buffer). */
  memory?: Uint8Array;
  /** null when the code ran to its end; otherwise what stopped it. State is then the state at the fault. */
  signal: null | NativeSignal;
  /** rip at the fault (the faulting instruction for faults; after it for traps such as int3/syscall). */
  faultRip?: bigint;
  /** The faulting data address the kernel reported (SIGSEGV/SIGBUS; 0 for #GP). */
  faultAddress?: bigint;
}

/** Options for {@link runNative}. */
export interface RunNativeOptions {
  /** A case still running after this long is stopped and reported as `TIMEOUT` (default 1000 ms). */
  caseTimeoutMs?: number;
}

/** Where the case's code is placed (a 4 KiB page, the rest filled with int3). */
export const NATIVE_CODE_ADDRESS = 0x1000_0000n;
/** The private stack is [NATIVE_STACK_BASE, NATIVE_STACK_TOP), zeroed before each case. */
export const NATIVE_STACK_BASE = 0x1001_c000n;
export const NATIVE_STACK_TOP = 0x1002_0000n;
/** rsp when a case starts (1 KiB below the stack top, 16-byte aligned). */
export const NATIVE_INITIAL_RSP = 0x1001_fc00n;
/** The scratch buffer's address (a 4 KiB page, zeroed then filled per case; the next page is unmapped). */
export const NATIVE_MEMORY_ADDRESS = 0x1003_0000n;
export const NATIVE_MEMORY_SIZE = 4096;
export const NATIVE_CODE_MAX = 64;
/** The input RFLAGS bits a case may set: CF PF AF ZF SF DF OF. */
export const NATIVE_RFLAGS_MASK = 0xcd5n;

const IN_MAGIC = 0x494e4c56;
const OUT_MAGIC = 0x4f4e4c56;
const FORMAT_VERSION = 1;
const GCC_FLAGS = ["-O2"];
const M64 = (1n << 64n) - 1n;
const M128 = (1n << 128n) - 1n;
const SIGNALS: Record<number, NativeSignal> = {
  4: "SIGILL",
  5: "SIGTRAP",
  7: "SIGBUS",
  8: "SIGFPE",
  11: "SIGSEGV",
  31: "SIGSYS",
  255: "TIMEOUT",
};

let availability: boolean | undefined;
let binaryPath: string | undefined;

/** True when the host can run the oracle: x86-64 Linux with a working gcc. */
export function nativeOracleAvailable(): boolean {
  if (availability === undefined) {
    availability =
      process.platform === "linux" &&
      process.arch === "x64" &&
      spawnSync("gcc", ["--version"], { stdio: "ignore" }).status === 0;
  }
  return availability;
}

function harnessSource(): string {
  const candidates = [
    new URL("./native/harness.c", import.meta.url), // src/testing/native-oracle.ts
    new URL("../../src/testing/native/harness.c", import.meta.url), // dist/testing/index.js
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new X86CoreError("UNSUPPORTED", "native oracle: harness.c not found (needs the package sources)", {
    candidates: candidates.map((u) => u.href),
  });
}

function packageRoot(from: string): string {
  let dir = dirname(from);
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) return dirname(from);
    dir = up;
  }
  return dir;
}

/**
 * Compiles the harness if no cached binary matches its source and returns the
 * binary's path. Throws when the host cannot run the oracle.
 */
export function ensureNativeOracle(): string {
  if (binaryPath !== undefined && existsSync(binaryPath)) return binaryPath;
  if (!nativeOracleAvailable()) {
    throw new X86CoreError(
      "UNSUPPORTED",
      `native oracle needs x86-64 Linux with gcc (platform ${process.platform}, arch ${process.arch})`,
    );
  }
  const source = harnessSource();
  const text = readFileSync(source);
  const hash = createHash("sha256").update(text).update(GCC_FLAGS.join(" ")).digest("hex").slice(0, 16);
  const cacheDir = join(packageRoot(source), ".native-cache");
  const target = join(cacheDir, `harness-${hash}`);
  if (!existsSync(target)) {
    mkdirSync(cacheDir, { recursive: true });
    // Compile under a private name and rename: concurrent test workers may race here.
    const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const cc = spawnSync("gcc", [...GCC_FLAGS, "-o", tmp, source], { encoding: "utf8" });
    if (cc.status !== 0) {
      rmSync(tmp, { force: true });
      throw new X86CoreError("UNSUPPORTED", `native oracle: gcc failed\n${cc.stderr ?? ""}${cc.error ?? ""}`);
    }
    renameSync(tmp, target);
    // Drop binaries built from older sources of the harness.
    for (const name of readdirSync(cacheDir)) {
      if (/^harness-[0-9a-f]{16}$/.test(name) && join(cacheDir, name) !== target) {
        rmSync(join(cacheDir, name), { force: true });
      }
    }
  }
  binaryPath = target;
  return target;
}

function invalid(message: string, index: number): never {
  throw new X86CoreError("INVALID_ARGUMENT", `native case ${index}: ${message}`, { index });
}

function checkU64(v: bigint, what: string, index: number): bigint {
  if (typeof v !== "bigint" || v < 0n || v > M64) invalid(`${what} must be a bigint in [0, 2^64)`, index);
  return v;
}

function caseSize(c: NativeCase): number {
  const body = 152 + (c.xmm ? 256 : 0) + c.code.length + (c.memory ? c.memory.length : 0);
  return (body + 7) & ~7;
}

function encode(cases: readonly NativeCase[], timeoutMs: number): Buffer {
  let total = 16;
  cases.forEach((c, i) => {
    if (!(c.code instanceof Uint8Array) || c.code.length > NATIVE_CODE_MAX) {
      invalid(`code must be a Uint8Array of at most ${NATIVE_CODE_MAX} bytes`, i);
    }
    if (!Array.isArray(c.regs) || c.regs.length !== 16) invalid("regs must hold 16 GPRs", i);
    if (c.xmm !== undefined && (!Array.isArray(c.xmm) || c.xmm.length !== 16)) invalid("xmm must hold 16 values", i);
    if (c.memory !== undefined) {
      if (!(c.memory instanceof Uint8Array) || c.memory.length > NATIVE_MEMORY_SIZE) {
        invalid(`memory must be a Uint8Array of at most ${NATIVE_MEMORY_SIZE} bytes`, i);
      }
      const r = c.memReg;
      if (r === undefined || !Number.isInteger(r) || r < 0 || r > 15 || r === 4) {
        invalid("memory needs memReg, a GPR index 0..15 other than 4 (rsp)", i);
      }
    } else if (c.memReg !== undefined) {
      invalid("memReg given without memory", i);
    }
    const mx = c.mxcsr ?? 0x1f80;
    if (!Number.isInteger(mx) || mx < 0 || mx > 0xffff) invalid("mxcsr must be an integer in [0, 0xFFFF]", i);
    total += caseSize(c);
  });

  const buf = Buffer.alloc(total);
  buf.writeUInt32LE(IN_MAGIC, 0);
  buf.writeUInt32LE(FORMAT_VERSION, 4);
  buf.writeUInt32LE(cases.length, 8);
  buf.writeUInt32LE(timeoutMs, 12);
  let pos = 16;
  cases.forEach((c, i) => {
    const start = pos;
    buf[pos] = c.code.length;
    buf[pos + 1] = (c.xmm ? 1 : 0) | (c.memory ? 2 : 0);
    buf[pos + 2] = c.memory ? (c.memReg ?? 0) : 0;
    buf.writeUInt16LE(c.memory ? c.memory.length : 0, pos + 4);
    buf.writeUInt32LE(c.mxcsr ?? 0x1f80, pos + 8);
    buf.writeBigUInt64LE(checkU64(c.rflags, "rflags", i) & NATIVE_RFLAGS_MASK, pos + 16);
    pos += 24;
    for (let r = 0; r < 16; r++) {
      buf.writeBigUInt64LE(checkU64(c.regs[r]!, `regs[${r}]`, i), pos);
      pos += 8;
    }
    if (c.xmm) {
      for (let r = 0; r < 16; r++) {
        const v = c.xmm[r]!;
        if (typeof v !== "bigint" || v < 0n || v > M128) invalid(`xmm[${r}] must be a bigint in [0, 2^128)`, i);
        buf.writeBigUInt64LE(v & M64, pos);
        buf.writeBigUInt64LE(v >> 64n, pos + 8);
        pos += 16;
      }
    }
    buf.set(c.code, pos);
    pos += c.code.length;
    if (c.memory) {
      buf.set(c.memory, pos);
      pos += c.memory.length;
    }
    pos = start + caseSize(c);
  });
  return buf;
}

function decode(out: Buffer, cases: readonly NativeCase[]): NativeResult[] {
  if (out.length < 48 || out.readUInt32LE(0) !== OUT_MAGIC || out.readUInt32LE(4) !== FORMAT_VERSION) {
    throw new X86CoreError("STATE", "native oracle: malformed output header", { length: out.length });
  }
  if (out.readUInt32LE(8) !== cases.length) {
    throw new X86CoreError("STATE", "native oracle: output case count mismatch");
  }
  if (
    out.readBigUInt64LE(16) !== NATIVE_CODE_ADDRESS ||
    out.readBigUInt64LE(24) !== NATIVE_INITIAL_RSP ||
    out.readBigUInt64LE(32) !== NATIVE_MEMORY_ADDRESS
  ) {
    throw new X86CoreError("STATE", "native oracle: harness layout differs from the constants");
  }
  const results: NativeResult[] = new Array(cases.length);
  let pos = 48;
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    const memLen = c.memory ? c.memory.length : 0;
    const hasXmm = (out[pos + 1]! & 1) !== 0;
    const need = 168 + (hasXmm ? 256 : 0) + ((memLen + 7) & ~7);
    if (pos + need > out.length) throw new X86CoreError("STATE", "native oracle: truncated output", { index: i });
    const status = out[pos]!;
    const signal = status === 0 ? null : SIGNALS[status];
    if (signal === undefined) throw new X86CoreError("STATE", `native oracle: unknown status ${status}`, { index: i });
    const regs: bigint[] = new Array(16);
    for (let r = 0; r < 16; r++) regs[r] = out.readBigUInt64LE(pos + 40 + r * 8);
    let q = pos + 168;
    let xmm: bigint[];
    if (hasXmm) {
      xmm = new Array(16);
      for (let r = 0; r < 16; r++) {
        xmm[r] = out.readBigUInt64LE(q + r * 16) | (out.readBigUInt64LE(q + r * 16 + 8) << 64n);
      }
      q += 256;
    } else {
      xmm = c.xmm ? c.xmm.slice() : new Array<bigint>(16).fill(0n);
    }
    const result: NativeResult = {
      regs,
      rflags: out.readBigUInt64LE(pos + 8),
      xmm,
      mxcsr: out.readUInt32LE(pos + 4),
      signal,
    };
    if (c.memory) result.memory = new Uint8Array(out.subarray(q, q + memLen));
    if (signal !== null) {
      result.faultRip = out.readBigUInt64LE(pos + 16);
      result.faultAddress = out.readBigUInt64LE(pos + 24);
    }
    results[i] = result;
    pos += need;
  }
  if (pos !== out.length) throw new X86CoreError("STATE", "native oracle: trailing output bytes");
  return results;
}

/**
 * Runs every case on the host processor, in one harness process, and returns
 * their final states in order. Throws `X86CoreError` (`UNSUPPORTED`) when the
 * host cannot run the oracle, `INVALID_ARGUMENT` for a malformed case, `STATE`
 * when the harness itself fails.
 *
 * A case that faults is reported with `signal` set and the state at the fault;
 * the batch goes on. Beyond the fault signals, a system call made by the case
 * is trapped by a seccomp filter and reported as `SIGSYS` (it never reaches the
 * kernel), and a case that runs past `caseTimeoutMs` is stopped as `TIMEOUT`.
 */
export function runNative(cases: readonly NativeCase[], options: RunNativeOptions = {}): NativeResult[] {
  const timeoutMs = options.caseTimeoutMs ?? 1000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new X86CoreError("INVALID_ARGUMENT", "caseTimeoutMs must be an integer in [1, 600000]");
  }
  const binary = ensureNativeOracle();
  if (cases.length === 0) return [];
  const input = encode(cases, timeoutMs);
  let maxOut = 48;
  for (const c of cases) maxOut += 168 + 256 + (((c.memory ? c.memory.length : 0) + 7) & ~7);
  const run = spawnSync(binary, [], { input, maxBuffer: maxOut + (1 << 20), stdio: ["pipe", "pipe", "pipe"] });
  if (run.error) throw new X86CoreError("STATE", `native oracle: ${run.error.message}`);
  if (run.status !== 0) {
    throw new X86CoreError(
      "STATE",
      `native oracle harness failed (status ${run.status}, signal ${run.signal}): ${run.stderr.toString()}`,
    );
  }
  return decode(run.stdout, cases);
}
