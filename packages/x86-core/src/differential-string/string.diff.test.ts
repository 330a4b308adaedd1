import { describe, expect, it } from "vitest";
import { compareResults, EmulatorMirror, prng } from "../differential-sse/mirror";
import { NATIVE_MEMORY_ADDRESS, type NativeCase, runNative } from "../testing/native-oracle";

/**
 * String instructions against the host CPU: MOVS CMPS STOS LODS SCAS in all
 * sizes, with and without REP/REPE/REPNE, both directions, 32-bit address
 * size (garbage in the upper halves), a GS-based source, counts that run into
 * the unmapped pages around the scratch buffer (a #PF midway: the registers
 * must show exactly the finished iterations), non-canonical addresses, and
 * INS/OUTS at CPL 3 (#GP). The emulator runs each case in a machine laid out
 * like the host's (see mirror.ts).
 */

const OPS = [0xa4, 0xa6, 0xaa, 0xac, 0xae] as const; // MOVS CMPS STOS LODS SCAS (byte forms; +1 = word/dword/qword)
const WRGSBASE_R15 = [0xf3, 0x49, 0x0f, 0xae, 0xdf];
const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const SCRATCH = NATIVE_MEMORY_ADDRESS;

interface Built {
  native: NativeCase;
  emuCode: Uint8Array;
  gsBase?: bigint;
  rep: boolean;
  label: string;
}

function build(rnd: () => number): Built {
  const u64 = () => (BigInt(rnd()) << 32n) | BigInt(rnd());
  const pick = <T>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const io = rnd() % 100 === 0;
  const op = io ? pick([0x6c, 0x6d, 0x6e, 0x6f]) : pick(OPS) + (rnd() % 5 === 0 ? 0 : 1);
  const wide = (op & 1) === 1;
  const size = !wide ? 1 : pick([2, 4, 8]);
  const asize32 = rnd() % 4 === 0;
  const rep = pick([0, 0, 0xf3, 0xf3, 0xf3, 0xf2, 0xf2]);
  const useGs =
    !io && (op === 0xa4 || op === 0xa5 || op === 0xa6 || op === 0xa7 || op === 0xac || op === 0xad) && rnd() % 6 === 0;
  const regs = Array.from({ length: 16 }, u64);
  regs[4] = 0n;
  const offS = rnd() % 4096;
  const offD = rnd() % 8 === 0 ? offS + (rnd() % 17) - 8 : rnd() % 4096; // overlapping copies now and then
  const hiGarbage = (v: bigint) => (asize32 ? (u64() & 0xffff_ffff_0000_0000n) | v : v);
  let gsBase: bigint | undefined;
  if (useGs) {
    const x = BigInt(rnd() % (1 << 20));
    gsBase = SCRATCH - x;
    regs[15] = gsBase;
    regs[6] = hiGarbage(x + BigInt(offS));
  } else regs[6] = hiGarbage(SCRATCH + BigInt(offS));
  regs[7] = hiGarbage(SCRATCH + BigInt(Math.max(0, Math.min(4095, offD))));
  if (rnd() % 200 === 0) regs[pick([6, 7])] = 0x0000_8000_0000_0000n + BigInt(rnd()); // non-canonical
  const k = rnd() % 10;
  let count: bigint;
  if (k < 3) count = BigInt(rnd() % 17);
  else if (k < 6) count = BigInt(rnd() % 300);
  else if (k < 8) count = BigInt(rnd() % 5000);
  else if (k < 9) count = BigInt(rnd() % 3);
  else count = u64() | 1n; // huge: runs into an unmapped page (or, with 67, only the low half counts)
  regs[1] = asize32 && k < 9 ? hiGarbage(count) : count;
  // Memory with long equal runs so REPE/REPNE stop at interesting places.
  const memory = new Uint8Array(4096);
  const style = rnd() % 3;
  for (let i = 0; i < 4096; i++) memory[i] = style === 0 ? rnd() & 0xff : style === 1 ? rnd() & 1 : 0;
  if (style === 2) for (let n = rnd() % 8; n > 0; n--) memory[rnd() % 4096] = rnd() & 3;
  if (op === 0xa6 || op === 0xa7) {
    // Make the destination equal the source for a while.
    const len = rnd() % 600;
    for (let i = 0; i < len; i++) {
      const s = offS + i;
      const d = offD + i;
      if (s >= 0 && s < 4096 && d >= 0 && d < 4096) memory[d] = memory[s]!;
    }
  }
  if ((op === 0xae || op === 0xaf) && style !== 0) regs[0] = (u64() & ~0xffffn) | BigInt(rnd() & 1);
  if (io) regs[2] = BigInt(rnd() & 0xffff);

  const insn: number[] = [];
  if (asize32) insn.push(0x67);
  if (rep !== 0) insn.push(rep);
  if (useGs) insn.push(0x65);
  if (size === 2) insn.push(0x66);
  if (size === 8) insn.push(0x48);
  insn.push(op);
  const code = useGs ? [...WRGSBASE_R15, ...insn] : insn;
  const emuCode = useGs ? [...NOP5, ...insn] : insn;
  const native: NativeCase = {
    code: Uint8Array.from(code),
    regs,
    rflags: BigInt(rnd()) & 0xcd5n,
    memory,
    memReg: 14,
  };
  const built: Built = {
    native,
    emuCode: Uint8Array.from(emuCode),
    rep: rep !== 0,
    label: `${Buffer.from(Uint8Array.from(insn)).toString("hex")} rcx=${regs[1]!.toString(16)} rsi=${regs[6]!.toString(16)} rdi=${regs[7]!.toString(16)} df=${(native.rflags >> 10n) & 1n}`,
  };
  if (gsBase !== undefined) built.gsBase = gsBase;
  return built;
}

describe("string instructions against the host CPU", () => {
  it("agree on 24,000 random cases (registers, flags, memory, faults)", () => {
    const rnd = prng(0x57_21_6e_67);
    const N = 24_000;
    const cases = Array.from({ length: N }, () => build(rnd));
    const native = runNative(
      cases.map((c) => c.native),
      { caseTimeoutMs: 5000 },
    );
    const mirror = new EmulatorMirror();
    const perAccess = new EmulatorMirror({ perAccess: true });
    const failures: string[] = [];
    let faults = 0;
    let repeated = 0;
    for (let i = 0; i < N; i++) {
      const c = cases[i]!;
      const opts: { code: Uint8Array; gsBase?: bigint } = { code: c.emuCode };
      if (c.gsBase !== undefined) opts.gsBase = c.gsBase;
      const n = native[i]!;
      if (n.signal !== null) faults++;
      if (c.rep) repeated++;
      // Every fourth case also runs with the bulk fast paths off.
      for (const m of i % 4 === 0 ? [mirror, perAccess] : [mirror]) {
        const diff = compareResults(n, m.run(c.native, opts));
        if (diff.length > 0 && failures.length < 12)
          failures.push(`case ${i}${m === perAccess ? " (per access)" : ""} ${c.label}: ${diff.join("; ")}`);
      }
    }
    console.log(
      `string differential: ${N} cases compared with the host (${repeated} with REP prefixes, ${faults} ending in a fault; ` +
        `${N / 4} also with the bulk paths off)`,
    );
    expect(failures).toEqual([]);
    expect(faults).toBeGreaterThan(1000);
  });
});
