import { statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { X86CoreError } from "../errors";
import {
  ensureNativeOracle,
  NATIVE_CODE_ADDRESS,
  NATIVE_INITIAL_RSP,
  NATIVE_MEMORY_ADDRESS,
  type NativeCase,
  type NativeResult,
  nativeOracleAvailable,
  runNative,
} from "./index";

// No skipping: on a host without gcc (or not x86-64 Linux) these tests must fail.

const CF = 0x1n;
const PF = 0x4n;
const AF = 0x10n;
const ZF = 0x40n;
const SF = 0x80n;
const DF = 0x400n;
const OF = 0x800n;
const ARITH = CF | PF | AF | ZF | SF | OF;
const M64 = (1n << 64n) - 1n;
const RAX = 0;
const RCX = 1;
const RDX = 2;
const RBX = 3;
const RSP = 4;
const RDI = 7;

const bytes = (...b: number[]) => Uint8Array.from(b);
const zeros = (): bigint[] => new Array<bigint>(16).fill(0n);
function regsWith(values: Record<number, bigint>): bigint[] {
  const r = zeros();
  for (const [k, v] of Object.entries(values)) r[Number(k)] = v;
  return r;
}
function one(c: NativeCase): NativeResult {
  const [r] = runNative([c]);
  if (!r) throw new Error("no result");
  return r;
}

describe("native oracle: host", () => {
  it("is available on this host (CI installs gcc)", () => {
    expect(nativeOracleAvailable()).toBe(true);
  });

  it("caches the compiled harness under .native-cache, keyed by the source hash", () => {
    const path = ensureNativeOracle();
    expect(path).toMatch(/[/\\]\.native-cache[/\\]harness-[0-9a-f]{16}$/);
    const before = statSync(path).mtimeMs;
    runNative([{ code: bytes(0x90), regs: zeros(), rflags: 0n }]);
    expect(ensureNativeOracle()).toBe(path);
    expect(statSync(path).mtimeMs).toBe(before);
  });
});

describe("native oracle: integer instructions and flags", () => {
  it("add rax, rbx: unsigned carry out of bit 63", () => {
    const r = one({ code: bytes(0x48, 0x01, 0xd8), regs: regsWith({ [RAX]: M64, [RBX]: 1n }), rflags: 0n });
    expect(r.signal).toBeNull();
    expect(r.regs[RAX]).toBe(0n);
    expect(r.regs[RBX]).toBe(1n);
    // 0xFF..FF + 1 = 0: carry, zero, even parity of 0x00, carry out of bit 3, no signed overflow.
    expect(r.rflags & ARITH).toBe(CF | ZF | PF | AF);
  });

  it("add rax, rbx: signed overflow", () => {
    const r = one({
      code: bytes(0x48, 0x01, 0xd8),
      regs: regsWith({ [RAX]: 0x7fff_ffff_ffff_ffffn, [RBX]: 1n }),
      rflags: CF | ZF, // stale input flags are overwritten
    });
    expect(r.regs[RAX]).toBe(0x8000_0000_0000_0000n);
    expect(r.rflags & ARITH).toBe(OF | SF | PF | AF);
  });

  it("add rax, rbx: no flags set, odd parity", () => {
    const r = one({ code: bytes(0x48, 0x01, 0xd8), regs: regsWith({ [RAX]: 0x20n, [RBX]: 0x21n }), rflags: ARITH });
    expect(r.regs[RAX]).toBe(0x41n); // 0b0100_0001: two bits set -> PF=1
    expect(r.rflags & ARITH).toBe(PF);
  });

  it("takes only CF PF AF ZF SF DF OF from the input rflags and keeps the host's system flags", () => {
    const r = one({ code: bytes(0x90), regs: zeros(), rflags: M64 });
    expect(r.signal).toBeNull(); // TF was not taken over
    expect(r.rflags & 0xcd5n).toBe(0xcd5n);
    expect(r.rflags & 0x2n).toBe(0x2n); // reserved bit 1
    expect(r.rflags & 0x200n).toBe(0x200n); // IF, as in user mode
    expect(r.rflags & 0x100n).toBe(0n); // TF
    const cleared = one({ code: bytes(0x90), regs: zeros(), rflags: 0n });
    expect(cleared.rflags & 0xcd5n).toBe(0n);
  });

  it("passes every GPR through and reports the private stack's rsp", () => {
    const regs = Array.from({ length: 16 }, (_, i) => 0x1111_1111_1111_1111n * BigInt(i));
    const r = one({ code: new Uint8Array(0), regs, rflags: 0n });
    const expected = regs.slice();
    expected[RSP] = NATIVE_INITIAL_RSP;
    expect(r.regs).toEqual(expected);
  });

  it("push rax; pop rbx runs on the private stack", () => {
    const r = one({ code: bytes(0x50, 0x5b), regs: regsWith({ [RAX]: 0xdead_beef_cafe_f00dn }), rflags: 0n });
    expect(r.signal).toBeNull();
    expect(r.regs[RBX]).toBe(0xdead_beef_cafe_f00dn);
    expect(r.regs[RSP]).toBe(NATIVE_INITIAL_RSP);
    const pushed = one({ code: bytes(0x50), regs: regsWith({ [RAX]: 5n }), rflags: 0n });
    expect(pushed.regs[RSP]).toBe(NATIVE_INITIAL_RSP - 8n);
  });

  it("zeroes the stack between cases", () => {
    const [a, b] = runNative([
      { code: bytes(0x50), regs: regsWith({ [RAX]: 77n }), rflags: 0n }, // push rax
      { code: bytes(0x48, 0x8b, 0x5c, 0x24, 0xf8), regs: zeros(), rflags: 0n }, // mov rbx, [rsp-8]
    ]);
    expect(a?.signal).toBeNull();
    expect(b?.regs[RBX]).toBe(0n);
  });
});

describe("native oracle: faults", () => {
  it("div rcx with rcx = 0 reports SIGFPE with the state at the fault", () => {
    const r = one({ code: bytes(0x48, 0xf7, 0xf1), regs: regsWith({ [RAX]: 10n, [RDX]: 3n, [RCX]: 0n }), rflags: 0n });
    expect(r.signal).toBe("SIGFPE");
    expect(r.faultRip).toBe(NATIVE_CODE_ADDRESS);
    expect(r.regs[RAX]).toBe(10n);
    expect(r.regs[RDX]).toBe(3n);
    expect(r.regs[RSP]).toBe(NATIVE_INITIAL_RSP);
  });

  it("ud2 reports SIGILL", () => {
    const r = one({ code: bytes(0x90, 0x0f, 0x0b), regs: zeros(), rflags: 0n });
    expect(r.signal).toBe("SIGILL");
    expect(r.faultRip).toBe(NATIVE_CODE_ADDRESS + 1n);
  });

  it("int3 reports SIGTRAP after the breakpoint", () => {
    const r = one({ code: bytes(0xcc), regs: zeros(), rflags: 0n });
    expect(r.signal).toBe("SIGTRAP");
    expect(r.faultRip).toBe(NATIVE_CODE_ADDRESS + 1n);
  });

  it("a fault does not stop the batch, and later cases are unaffected", () => {
    const ok: NativeCase = { code: bytes(0x48, 0x01, 0xd8), regs: regsWith({ [RAX]: 2n, [RBX]: 3n }), rflags: 0n };
    const results = runNative([
      ok,
      { code: bytes(0x0f, 0x0b), regs: zeros(), rflags: 0n },
      ok,
      { code: bytes(0x48, 0xf7, 0xf1), regs: zeros(), rflags: 0n },
      ok,
      { code: bytes(0x48, 0x31, 0xe4, 0x50), regs: zeros(), rflags: 0n }, // xor rsp, rsp; push rax
      ok,
      // pushfq; or qword [rsp], 0x100 (TF); popfq; nop
      { code: bytes(0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90), regs: zeros(), rflags: 0n },
      ok,
      // mov fs, eax with the user data selector: the harness must restore the host's fs (TLS)
      { code: bytes(0x8e, 0xe0), regs: regsWith({ [RAX]: 0x2bn }), rflags: 0n },
      ok,
    ]);
    expect(results.map((r) => r.signal)).toEqual([
      null,
      "SIGILL",
      null,
      "SIGFPE",
      null,
      "SIGSEGV",
      null,
      "SIGTRAP",
      null,
      null,
      null,
    ]);
    for (const i of [0, 2, 4, 6, 8, 10]) {
      expect(results[i]?.regs[RAX]).toBe(5n);
      expect(results[i]!.rflags & 0x100n).toBe(0n);
    }
    expect(results[5]?.faultAddress).toBe(M64 - 7n); // push with rsp = 0
  });

  it("traps system calls made by a case (SIGSYS) instead of executing them", () => {
    // exit_group(0): if it reached the kernel, the harness would die without output.
    const results = runNative([
      { code: bytes(0x0f, 0x05), regs: regsWith({ [RAX]: 231n }), rflags: 0n },
      { code: bytes(0xcd, 0x80), regs: regsWith({ [RAX]: 1n }), rflags: 0n },
      { code: bytes(0x48, 0xff, 0xc0), regs: zeros(), rflags: 0n },
    ]);
    expect(results.map((r) => r.signal)).toEqual(["SIGSYS", "SIGSYS", null]);
    expect(results[0]?.faultRip).toBe(NATIVE_CODE_ADDRESS + 2n);
    expect(results[2]?.regs[RAX]).toBe(1n);
  });

  it("stops an endless loop as TIMEOUT", () => {
    const results = runNative(
      [
        { code: bytes(0xeb, 0xfe), regs: zeros(), rflags: 0n },
        { code: bytes(0x48, 0xff, 0xc0), regs: zeros(), rflags: 0n },
      ],
      { caseTimeoutMs: 100 },
    );
    expect(results[0]?.signal).toBe("TIMEOUT");
    expect(results[0]?.faultRip).toBe(NATIVE_CODE_ADDRESS);
    expect(results[1]?.signal).toBeNull();
    expect(results[1]?.regs[RAX]).toBe(1n);
  });
});

describe("native oracle: memory and SSE", () => {
  it("mov [rdi], rax with memReg = 7 returns the written buffer", () => {
    const memory = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    const r = one({
      code: bytes(0x48, 0x89, 0x07),
      regs: regsWith({ [RAX]: 0x0807_0605_0403_0201n, [RDI]: 0x1234n }),
      rflags: 0n,
      memory,
      memReg: RDI,
    });
    expect(r.signal).toBeNull();
    expect(r.regs[RDI]).toBe(NATIVE_MEMORY_ADDRESS);
    expect(Array.from(r.memory ?? [])).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    ]);
    expect(Array.from(memory.subarray(0, 2))).toEqual([0xa0, 0xa1]); // input untouched
  });

  it("reads the input buffer and faults past its page", () => {
    const memory = new Uint8Array(4096);
    memory[4088] = 0x42;
    const [load, past] = runNative([
      { code: bytes(0x48, 0x8b, 0x83, 0xf8, 0x0f, 0x00, 0x00), regs: zeros(), rflags: 0n, memory, memReg: RBX },
      { code: bytes(0x48, 0x8b, 0x83, 0x00, 0x10, 0x00, 0x00), regs: zeros(), rflags: 0n, memory, memReg: RBX },
    ]);
    expect(load?.regs[RAX]).toBe(0x42n);
    expect(past?.signal).toBe("SIGSEGV");
    expect(past?.faultAddress).toBe(NATIVE_MEMORY_ADDRESS + 4096n);
    expect(past?.memory?.length).toBe(4096);
  });

  it("paddd xmm0, xmm1 adds four dword lanes with wraparound", () => {
    const xmm = new Array<bigint>(16).fill(0n).map((_, i) => BigInt(i) << 100n);
    xmm[0] = 0x0000_0001_ffff_ffff_7fff_ffff_0000_0005n;
    xmm[1] = 0x0000_0002_0000_0001_0000_0001_0000_0007n;
    const r = one({ code: bytes(0x66, 0x0f, 0xfe, 0xc1), regs: zeros(), rflags: 0n, xmm });
    expect(r.signal).toBeNull();
    expect(r.xmm[0]).toBe(0x0000_0003_0000_0000_8000_0000_0000_000cn);
    expect(r.xmm.slice(1)).toEqual(xmm.slice(1));
    expect(r.mxcsr).toBe(0x1f80);
  });

  it("reports MXCSR sticky flags and unmasked SSE exceptions", () => {
    const one32 = 0x3f80_0000n; // 1.0f
    const xmm = zeros();
    xmm[0] = one32;
    // divss xmm0, xmm1 with xmm1 = 0
    const code = bytes(0xf3, 0x0f, 0x5e, 0xc1);
    const [masked, unmasked] = runNative([
      { code, regs: zeros(), rflags: 0n, xmm },
      { code, regs: zeros(), rflags: 0n, xmm, mxcsr: 0x1f80 & ~0x200 },
    ]);
    expect(masked?.signal).toBeNull();
    expect(masked?.mxcsr).toBe(0x1f84); // ZE
    expect(masked?.xmm[0]).toBe(0x7f80_0000n); // +inf
    expect(unmasked?.signal).toBe("SIGFPE");
    expect(unmasked?.xmm[0]).toBe(one32);
  });

  it("loads xmm as zeros when a case gives none", () => {
    const [dirty, clean] = runNative([
      { code: bytes(0x66, 0x48, 0x0f, 0x6e, 0xc0), regs: regsWith({ [RAX]: 9n }), rflags: 0n }, // movq xmm0, rax
      { code: new Uint8Array(0), regs: zeros(), rflags: 0n },
    ]);
    expect(dirty?.xmm[0]).toBe(9n);
    expect(clean?.xmm).toEqual(zeros());
  });
});

describe("native oracle: input validation", () => {
  const base: NativeCase = { code: bytes(0x90), regs: zeros(), rflags: 0n };
  it.each([
    ["code over 64 bytes", { ...base, code: new Uint8Array(65) }],
    ["15 registers", { ...base, regs: zeros().slice(1) }],
    ["negative register", { ...base, regs: regsWith({ 3: -1n }) }],
    ["memory without memReg", { ...base, memory: new Uint8Array(8) }],
    ["memReg = rsp", { ...base, memory: new Uint8Array(8), memReg: 4 }],
    ["memory over 4096 bytes", { ...base, memory: new Uint8Array(4097), memReg: 7 }],
    ["mxcsr reserved bits", { ...base, mxcsr: 0x10000 }],
    ["xmm over 128 bits", { ...base, xmm: [1n << 128n, ...zeros().slice(1)] }],
  ] as [string, NativeCase][])("rejects %s", (_name, c) => {
    expect(() => runNative([c])).toThrow(X86CoreError);
  });
});

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

type Op = "add" | "sub" | "xor";
const OPCODES: Record<Op, [number, number]> = { add: [0x00, 0x01], sub: [0x28, 0x29], xor: [0x30, 0x31] };
const SPECIAL = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn];

function parity(v: bigint): boolean {
  let x = Number(v & 0xffn);
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return (x & 1) === 0;
}

/** `op dst, src` at `bits` wide (ModRM register form): the bytes and the reference result. */
function reference(op: Op, bits: number, dst: number, src: number, regs: bigint[], dfIn: bigint) {
  const code: number[] = [];
  if (bits === 16) code.push(0x66);
  const rex = (bits === 64 ? 8 : 0) | (src >= 8 ? 4 : 0) | (dst >= 8 ? 1 : 0);
  if (rex !== 0 || bits === 8) code.push(0x40 | rex);
  const [op8, opN] = OPCODES[op];
  code.push(bits === 8 ? op8 : opN, 0xc0 | ((src & 7) << 3) | (dst & 7));

  const n = BigInt(bits);
  const mask = (1n << n) - 1n;
  const a = regs[dst]! & mask;
  const b = regs[src]! & mask;
  let r: bigint;
  let flags = dfIn;
  if (op === "add") {
    r = (a + b) & mask;
    if (a + b > mask) flags |= CF;
    if ((((a ^ r) & (b ^ r)) >> (n - 1n)) & 1n) flags |= OF;
  } else if (op === "sub") {
    r = (a - b) & mask;
    if (a < b) flags |= CF;
    if ((((a ^ b) & (a ^ r)) >> (n - 1n)) & 1n) flags |= OF;
  } else {
    r = a ^ b;
  }
  if (op !== "xor" && ((a ^ b ^ r) & 0x10n) !== 0n) flags |= AF;
  if (r === 0n) flags |= ZF;
  if ((r >> (n - 1n)) & 1n) flags |= SF;
  if (parity(r)) flags |= PF;
  const out = regs.slice();
  out[RSP] = NATIVE_INITIAL_RSP;
  // 32-bit writes zero-extend; 8/16-bit writes keep the rest of the register.
  out[dst] = bits === 32 ? r : (regs[dst]! & ~mask & M64) | r;
  // AF is undefined after a logic op: compare it only for add/sub.
  const flagMask = op === "xor" ? 0xcd5n & ~AF : 0xcd5n;
  return { code: Uint8Array.from(code), regs: out, flags, flagMask };
}

describe("native oracle: 100,000 random add/sub/xor cases against a BigInt reference", () => {
  it("matches the reference on every case", () => {
    const rnd = prng(0x5eed_1234);
    const u64 = () => (BigInt(rnd()) << 32n) | BigInt(rnd());
    const operand = () => {
      const k = rnd() % 8;
      if (k === 0) return SPECIAL[rnd() % SPECIAL.length]!;
      if (k === 1) return M64 - SPECIAL[rnd() % SPECIAL.length]!;
      if (k === 2) return BigInt(rnd() & 0xff) * 0x0101_0101_0101_0101n;
      return u64();
    };
    const ops: Op[] = ["add", "sub", "xor"];
    const widths = [8, 16, 32, 64];
    const pickReg = () => {
      let r = rnd() % 16;
      while (r === RSP) r = rnd() % 16;
      return r;
    };

    const N = 100_000;
    const cases: NativeCase[] = new Array(N);
    const expected: ReturnType<typeof reference>[] = new Array(N);
    for (let i = 0; i < N; i++) {
      const regs = Array.from({ length: 16 }, operand);
      regs[RSP] = 0n;
      const rflags = BigInt(rnd()) & 0xcd5n;
      const op = ops[rnd() % ops.length]!;
      const bits = widths[rnd() % widths.length]!;
      const ref = reference(op, bits, pickReg(), pickReg(), regs, rflags & DF);
      cases[i] = { code: ref.code, regs, rflags };
      expected[i] = ref;
    }

    const t0 = performance.now();
    const results = runNative(cases);
    const ms = performance.now() - t0;

    let compared = 0;
    const mismatches: string[] = [];
    for (let i = 0; i < N; i++) {
      const r = results[i]!;
      const e = expected[i]!;
      const regsOk = r.regs.every((v, k) => v === e.regs[k]);
      const flagsOk = (r.rflags & e.flagMask) === (e.flags & e.flagMask);
      if (r.signal !== null || !regsOk || !flagsOk) {
        if (mismatches.length < 10) {
          mismatches.push(
            `case ${i} code ${Buffer.from(cases[i]!.code).toString("hex")}: signal ${r.signal}, ` +
              `flags ${r.rflags.toString(16)} want ${e.flags.toString(16)}/${e.flagMask.toString(16)}, ` +
              `regs ${r.regs.map((v) => v.toString(16)).join(",")} want ${e.regs.map((v) => v.toString(16)).join(",")}`,
          );
        }
      } else {
        compared++;
      }
    }
    console.log(
      `native oracle: compared ${compared}/${N} add/sub/xor cases against the BigInt reference; ` +
        `runNative took ${ms.toFixed(0)} ms (${Math.round(N / (ms / 1000))} cases/s)`,
    );
    expect(mismatches).toEqual([]);
    expect(compared).toBe(N);
  });
});
