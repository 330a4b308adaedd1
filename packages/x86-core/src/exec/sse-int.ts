import type { Cpu } from "../cpu";
import { type Insn, MANDATORY } from "../decode/insn";
import { VECTOR } from "../faults";
import { loadSrc128, sseCheck, TMP } from "./sse-common";
import type { OpcodeTable } from "./table";

/**
 * SSE2 packed-integer instructions on XMM registers (SDM vol. 2; 66-prefixed
 * 0F 60–7F and D1–FE; the MMX forms without 66 are not implemented and raise
 * #UD), the bitwise logic of both domains (PAND…PXOR, ANDPS…XORPD), and the
 * shuffles and unpacks (PSHUFD/LW/HW, SHUFPS/PD, UNPCKL/HPS/PD).
 *
 * Lanes are handled inside the 32-bit words of `cpu.xmm`; the source operand
 * is first staged in `cpu.sseTmp` (so source = destination needs no care),
 * 128-bit memory operands must be 16-byte aligned (#GP(0)).
 */

const { NONE, P66, PF3, PF2 } = MANDATORY;

type LaneFn = (a: number, b: number) => number;

const s8 = (v: number) => (v << 24) >> 24;
const s16 = (v: number) => (v << 16) >> 16;
const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** xmm(reg) ← fn(xmm(reg), xmm/m128) on unsigned lanes of `bits`. */
function packed(bits: 8 | 16 | 32, fn: LaneFn) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const s = loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    for (let i = 0; i < 4; i++) {
      const a = x[d + i]!;
      const b = s[i]!;
      let r: number;
      if (bits === 32) r = fn(a, b);
      else if (bits === 16) r = (fn(a & 0xffff, b & 0xffff) & 0xffff) | ((fn(a >>> 16, b >>> 16) & 0xffff) << 16);
      else {
        r = 0;
        for (let sh = 0; sh < 32; sh += 8) r |= (fn((a >>> sh) & 0xff, (b >>> sh) & 0xff) & 0xff) << sh;
      }
      x[d + i] = r;
    }
  };
}

/** Bitwise logic on the whole register (PAND POR PXOR PANDN and the PS/PD forms). */
function logic(kind: "and" | "andn" | "or" | "xor") {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const s = loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    for (let i = 0; i < 4; i++) {
      const a = x[d + i]!;
      const b = s[i]!;
      x[d + i] = kind === "and" ? a & b : kind === "andn" ? ~a & b : kind === "or" ? a | b : a ^ b;
    }
  };
}

/** 66 0F 74: PCMPEQB (the string functions' workhorse, so written out). */
function pcmpeqb(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const s = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  for (let i = 0; i < 4; i++) {
    const v = x[d + i]! ^ s[i]!;
    x[d + i] =
      ((v & 0xff) === 0 ? 0xff : 0) |
      ((v & 0xff00) === 0 ? 0xff00 : 0) |
      ((v & 0xff0000) === 0 ? 0xff0000 : 0) |
      ((v & 0xff000000) === 0 ? 0xff000000 : 0);
  }
}

/** 66 0F D4 / FB: PADDQ / PSUBQ. */
function addSubQ(sub: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const s = loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    for (let i = 0; i < 4; i += 2) {
      const lo = sub ? x[d + i]! - s[i]! : x[d + i]! + s[i]!;
      const carry = sub ? (lo < 0 ? -1 : 0) : lo >= 4294967296 ? 1 : 0;
      x[d + i + 1] = sub ? x[d + i + 1]! - s[i + 1]! + carry : x[d + i + 1]! + s[i + 1]! + carry;
      x[d + i] = lo;
    }
  };
}

/** The unsigned 64-bit product of two dwords into `out[i]` (low), `out[i + 1]` (high). */
function mulU32(a: number, b: number, out: Uint32Array, i: number): void {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const mid = al * bh + ah * bl;
  const lo = al * bl + (mid % 65536) * 65536;
  out[i + 1] = ah * bh + Math.floor(mid / 65536) + Math.floor(lo / 4294967296);
  out[i] = lo;
}

/** 66 0F F4: PMULUDQ — dwords 0 and 2 multiplied into two qwords. */
function pmuludq(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const s = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  mulU32(x[d]!, s[0]!, x, d);
  mulU32(x[d + 2]!, s[2]!, x, d + 2);
}

/** 66 0F F5: PMADDWD — pairs of signed word products summed into dwords. */
function pmaddwd(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const s = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  for (let i = 0; i < 4; i++) {
    const a = x[d + i]!;
    const b = s[i]!;
    x[d + i] = s16(a) * s16(b) + (a >> 16) * (b >> 16);
  }
}

/** 66 0F F6: PSADBW — sums of absolute byte differences per qword. */
function psadbw(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const s = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  for (let q = 0; q < 4; q += 2) {
    let sum = 0;
    for (let i = q; i < q + 2; i++)
      for (let sh = 0; sh < 32; sh += 8) sum += Math.abs(((x[d + i]! >>> sh) & 0xff) - ((s[i]! >>> sh) & 0xff));
    x[d + q] = sum;
    x[d + q + 1] = 0;
  }
}

// ---------------------------------------------------------------- shifts

const SHIFT = { LEFT: 0, RIGHT: 1, ARITH: 2 } as const;

/** Shifts every `bits`-wide lane of xmm `r` by `count` (a count ≥ the width clears, or fills with the sign). */
function shiftLanes(x: Uint32Array, r: number, bits: 16 | 32 | 64, kind: number, count: number): void {
  const d = 4 * r;
  if (bits === 64) {
    for (let i = d; i < d + 4; i += 2) {
      const lo = x[i]!;
      const hi = x[i + 1]!;
      if (count > 63) {
        x[i] = 0;
        x[i + 1] = 0;
      } else if (kind === SHIFT.LEFT) {
        if (count >= 32) {
          x[i + 1] = lo << (count - 32);
          x[i] = 0;
        } else if (count > 0) {
          x[i + 1] = (hi << count) | (lo >>> (32 - count));
          x[i] = lo << count;
        }
      } else if (count >= 32) {
        x[i] = hi >>> (count - 32);
        x[i + 1] = 0;
      } else if (count > 0) {
        x[i] = (lo >>> count) | (hi << (32 - count));
        x[i + 1] = hi >>> count;
      }
    }
    return;
  }
  for (let i = d; i < d + 4; i++) {
    const v = x[i]!;
    if (bits === 32) {
      if (kind === SHIFT.ARITH) x[i] = v >> Math.min(count, 31);
      else if (count > 31) x[i] = 0;
      else x[i] = kind === SHIFT.LEFT ? v << count : v >>> count;
    } else {
      let lo = v & 0xffff;
      let hi = v >>> 16;
      if (kind === SHIFT.ARITH) {
        const c = Math.min(count, 15);
        lo = s16(lo) >> c;
        hi = s16(hi) >> c;
      } else if (count > 15) {
        lo = 0;
        hi = 0;
      } else if (kind === SHIFT.LEFT) {
        lo <<= count;
        hi <<= count;
      } else {
        lo >>>= count;
        hi >>>= count;
      }
      x[i] = (lo & 0xffff) | ((hi & 0xffff) << 16);
    }
  }
}

/** Shift by the low qword of xmm/m128 (66 0F D1–D3, E1–E2, F1–F3). */
function shiftByXmm(bits: 16 | 32 | 64, kind: number) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const s = loadSrc128(cpu, insn, true);
    const count = s[1] !== 0 ? 0xffff : Math.min(s[0]!, 0xffff);
    shiftLanes(cpu.xmm, insn.reg, bits, kind, count);
  };
}

/** Shift by imm8 (66 0F 71/72/73 groups; register operand only). */
function shiftByImm(bits: 16 | 32 | 64, kind: number) {
  return (cpu: Cpu, insn: Insn) => {
    if (insn.mod !== 3) cpu.fault(VECTOR.UD);
    sseCheck(cpu);
    shiftLanes(cpu.xmm, insn.rm, bits, kind, insn.imm & 0xff);
  };
}

/** 66 0F 73 /7 PSLLDQ and /3 PSRLDQ: whole-register byte shifts. */
function byteShift(left: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    if (insn.mod !== 3) cpu.fault(VECTOR.UD);
    sseCheck(cpu);
    const n = Math.min(insn.imm & 0xff, 16);
    const t = cpu.sseTmp;
    const x = cpu.xmm;
    const d = 4 * insn.rm;
    t.set(x.subarray(d, d + 4), TMP.DST);
    for (let k = 0; k < 16; k++) {
      const from = left ? k - n : k + n;
      const b = from >= 0 && from < 16 ? getByte(t, TMP.DST, from) : 0;
      setByte(x, d, k, b);
    }
  };
}

function getByte(a: Uint32Array, off: number, k: number): number {
  return (a[off + (k >> 2)]! >>> ((k & 3) << 3)) & 0xff;
}

function setByte(a: Uint32Array, off: number, k: number, v: number): void {
  const i = off + (k >> 2);
  const sh = (k & 3) << 3;
  a[i] = (a[i]! & ~(0xff << sh)) | (v << sh);
}

// ---------------------------------------------------------------- unpack, pack, shuffle

/**
 * PUNPCKL/H BW WD DQ QDQ and UNPCKL/H PS PD: interleaves the low (or high)
 * halves of destination and source, lanes of `laneBytes`.
 */
function unpack(laneBytes: 1 | 2 | 4 | 8, high: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    t.set(x.subarray(d, d + 4), TMP.DST);
    const base = high ? 8 : 0;
    for (let j = 0; j < 16; j += laneBytes) {
      // Result lane n takes lane base + n/2 of the destination (n even) or the source (n odd).
      const lane = j / laneBytes;
      const srcOff = lane & 1 ? TMP.SRC : TMP.DST;
      const start = base + (lane >> 1) * laneBytes;
      for (let k = 0; k < laneBytes; k++) setByte(x, d, j + k, getByte(t, srcOff, start + k));
    }
  };
}

/** PACKSSWB / PACKUSWB / PACKSSDW: saturating narrowing of destination then source into one register. */
function pack(kind: "sswb" | "uswb" | "ssdw") {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    t.set(x.subarray(d, d + 4), TMP.DST);
    if (kind === "ssdw") {
      for (let j = 0; j < 8; j++) {
        const v = t[(j < 4 ? TMP.DST : TMP.SRC) + (j & 3)]! | 0;
        const w = clamp(v, -32768, 32767) & 0xffff;
        const i = d + (j >> 1);
        x[i] = j & 1 ? (x[i]! & 0xffff) | (w << 16) : (x[i]! & 0xffff0000) | w;
      }
      return;
    }
    for (let j = 0; j < 16; j++) {
      const off = j < 8 ? TMP.DST : TMP.SRC;
      const k = j & 7;
      const w = s16((t[off + (k >> 1)]! >>> ((k & 1) << 4)) & 0xffff);
      setByte(x, d, j, (kind === "sswb" ? clamp(w, -128, 127) : clamp(w, 0, 255)) & 0xff);
    }
  };
}

/** 66 0F 70: PSHUFD xmm, xmm/m128, imm8. */
function pshufd(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const t = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  const imm = insn.imm;
  for (let i = 0; i < 4; i++) x[d + i] = t[(imm >> (2 * i)) & 3]!;
}

/** F2 0F 70 PSHUFLW / F3 0F 70 PSHUFHW: shuffles the words of one qword, copies the other. */
function pshufw(high: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    const q = high ? 2 : 0;
    const imm = insn.imm;
    x[d + 2 - q] = t[2 - q]!;
    x[d + 3 - q] = t[3 - q]!;
    x[d + q] = wordOf(t, q, imm & 3) | (wordOf(t, q, (imm >> 2) & 3) << 16);
    x[d + q + 1] = wordOf(t, q, (imm >> 4) & 3) | (wordOf(t, q, (imm >> 6) & 3) << 16);
  };
}

/** Word `k` (0–3) of the qword at dword `q` of `t`. */
function wordOf(t: Uint32Array, q: number, k: number): number {
  return (t[q + (k >> 1)]! >>> ((k & 1) << 4)) & 0xffff;
}

/** 0F C6: SHUFPS — two dwords from the destination, two from the source. */
function shufps(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const t = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  t.set(x.subarray(d, d + 4), TMP.DST);
  const imm = insn.imm;
  x[d] = t[TMP.DST + (imm & 3)]!;
  x[d + 1] = t[TMP.DST + ((imm >> 2) & 3)]!;
  x[d + 2] = t[(imm >> 4) & 3]!;
  x[d + 3] = t[(imm >> 6) & 3]!;
}

/** 66 0F C6: SHUFPD — one qword from the destination, one from the source. */
function shufpd(cpu: Cpu, insn: Insn): void {
  sseCheck(cpu);
  const t = loadSrc128(cpu, insn, true);
  const x = cpu.xmm;
  const d = 4 * insn.reg;
  t.set(x.subarray(d, d + 4), TMP.DST);
  const lo = TMP.DST + 2 * (insn.imm & 1);
  const hi = 2 * ((insn.imm >> 1) & 1);
  x[d] = t[lo]!;
  x[d + 1] = t[lo + 1]!;
  x[d + 2] = t[hi]!;
  x[d + 3] = t[hi + 1]!;
}

/** Registers the family. */
export function registerSseInt(t: OpcodeTable): void {
  const p = (op: number, h: (cpu: Cpu, insn: Insn) => void) => t.sse(op, P66, h);
  // Logic, integer and floating-point domains.
  for (const [op, kind] of [
    [0x1db, "and"],
    [0x1df, "andn"],
    [0x1eb, "or"],
    [0x1ef, "xor"],
  ] as const)
    p(op, logic(kind));
  for (const [op, kind] of [
    [0x154, "and"],
    [0x155, "andn"],
    [0x156, "or"],
    [0x157, "xor"],
  ] as const) {
    t.sse(op, NONE, logic(kind));
    t.sse(op, P66, logic(kind));
  }
  // Lane by lane: add/subtract (wrapping, signed and unsigned saturation), multiply, average, min/max.
  const lanes: [number, 8 | 16 | 32, LaneFn][] = [
    [0x1fc, 8, (a, b) => a + b],
    [0x1fd, 16, (a, b) => a + b],
    [0x1fe, 32, (a, b) => a + b],
    [0x1f8, 8, (a, b) => a - b],
    [0x1f9, 16, (a, b) => a - b],
    [0x1fa, 32, (a, b) => a - b],
    [0x1ec, 8, (a, b) => clamp(s8(a) + s8(b), -128, 127)],
    [0x1ed, 16, (a, b) => clamp(s16(a) + s16(b), -32768, 32767)],
    [0x1e8, 8, (a, b) => clamp(s8(a) - s8(b), -128, 127)],
    [0x1e9, 16, (a, b) => clamp(s16(a) - s16(b), -32768, 32767)],
    [0x1dc, 8, (a, b) => Math.min(a + b, 0xff)],
    [0x1dd, 16, (a, b) => Math.min(a + b, 0xffff)],
    [0x1d8, 8, (a, b) => Math.max(a - b, 0)],
    [0x1d9, 16, (a, b) => Math.max(a - b, 0)],
    [0x1d5, 16, (a, b) => Math.imul(a, b)],
    [0x1e5, 16, (a, b) => (s16(a) * s16(b)) >> 16],
    [0x1e4, 16, (a, b) => (a * b) >>> 16],
    [0x1e0, 8, (a, b) => (a + b + 1) >>> 1],
    [0x1e3, 16, (a, b) => (a + b + 1) >>> 1],
    [0x1da, 8, (a, b) => Math.min(a, b)],
    [0x1de, 8, (a, b) => Math.max(a, b)],
    [0x1ea, 16, (a, b) => (s16(a) < s16(b) ? a : b)],
    [0x1ee, 16, (a, b) => (s16(a) > s16(b) ? a : b)],
  ];
  for (const [op, bits, fn] of lanes) p(op, packed(bits, fn));
  p(0x1d4, addSubQ(false));
  p(0x1fb, addSubQ(true));
  p(0x1f4, pmuludq);
  p(0x1f5, pmaddwd);
  p(0x1f6, psadbw);
  // Compares (PCMPEQB written out).
  p(0x174, pcmpeqb);
  const compares: [number, 8 | 16 | 32, LaneFn][] = [
    [0x175, 16, (a, b) => (a === b ? 0xffff : 0)],
    [0x176, 32, (a, b) => (a === b ? 0xffffffff : 0)],
    [0x164, 8, (a, b) => (s8(a) > s8(b) ? 0xff : 0)],
    [0x165, 16, (a, b) => (s16(a) > s16(b) ? 0xffff : 0)],
    [0x166, 32, (a, b) => ((a | 0) > (b | 0) ? 0xffffffff : 0)],
  ];
  for (const [op, bits, fn] of compares) p(op, packed(bits, fn));
  // Shifts.
  p(0x1d1, shiftByXmm(16, SHIFT.RIGHT));
  p(0x1d2, shiftByXmm(32, SHIFT.RIGHT));
  p(0x1d3, shiftByXmm(64, SHIFT.RIGHT));
  p(0x1e1, shiftByXmm(16, SHIFT.ARITH));
  p(0x1e2, shiftByXmm(32, SHIFT.ARITH));
  p(0x1f1, shiftByXmm(16, SHIFT.LEFT));
  p(0x1f2, shiftByXmm(32, SHIFT.LEFT));
  p(0x1f3, shiftByXmm(64, SHIFT.LEFT));
  t.sseGroup(0x171, P66, 2, shiftByImm(16, SHIFT.RIGHT));
  t.sseGroup(0x171, P66, 4, shiftByImm(16, SHIFT.ARITH));
  t.sseGroup(0x171, P66, 6, shiftByImm(16, SHIFT.LEFT));
  t.sseGroup(0x172, P66, 2, shiftByImm(32, SHIFT.RIGHT));
  t.sseGroup(0x172, P66, 4, shiftByImm(32, SHIFT.ARITH));
  t.sseGroup(0x172, P66, 6, shiftByImm(32, SHIFT.LEFT));
  t.sseGroup(0x173, P66, 2, shiftByImm(64, SHIFT.RIGHT));
  t.sseGroup(0x173, P66, 3, byteShift(false));
  t.sseGroup(0x173, P66, 6, shiftByImm(64, SHIFT.LEFT));
  t.sseGroup(0x173, P66, 7, byteShift(true));
  // Unpack, pack, shuffle.
  p(0x160, unpack(1, false));
  p(0x161, unpack(2, false));
  p(0x162, unpack(4, false));
  p(0x16c, unpack(8, false));
  p(0x168, unpack(1, true));
  p(0x169, unpack(2, true));
  p(0x16a, unpack(4, true));
  p(0x16d, unpack(8, true));
  t.sse(0x114, NONE, unpack(4, false));
  t.sse(0x115, NONE, unpack(4, true));
  t.sse(0x114, P66, unpack(8, false));
  t.sse(0x115, P66, unpack(8, true));
  p(0x163, pack("sswb"));
  p(0x167, pack("uswb"));
  p(0x16b, pack("ssdw"));
  p(0x170, pshufd);
  t.sse(0x170, PF2, pshufw(false));
  t.sse(0x170, PF3, pshufw(true));
  t.sse(0x1c6, NONE, shufps);
  t.sse(0x1c6, P66, shufpd);
}
