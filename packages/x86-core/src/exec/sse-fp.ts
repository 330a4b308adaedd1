import type { Cpu } from "../cpu";
import { type Insn, MANDATORY } from "../decode/insn";
import { ARITH_FLAGS, RFLAGS } from "../flags";
import { loadSrc32, loadSrc64, loadSrc128, raiseSimdFlags, sseCheck, TMP } from "./sse-common";
import {
  arith,
  BINARY32,
  BINARY64,
  dazIn,
  denormalIn,
  type FloatFormat,
  FOP,
  f32From,
  f32To,
  f64From,
  f64To,
  isNaN32,
  isNaN64,
  isSNaN32,
  isSNaN64,
  MXCSR,
  QNAN32,
  QNAN64_HI,
} from "./sse-softfloat";
import type { OpcodeTable } from "./table";

/**
 * SSE/SSE2 floating point (SDM vol. 2): ADD SUB MUL DIV SQRT MIN MAX in the
 * PS/PD/SS/SD forms, CMPPS/PD/SS/SD, COMISS/SD and UCOMISS/SD, RCPPS/SS and
 * RSQRTPS/SS (the conversions are in sse-convert.ts). NaN
 * operands follow SDM vol. 1, table 4-7 (the first source operand's NaN wins,
 * quieted); invalid operations produce the default NaN; all rounding modes,
 * DAZ/FTZ and the six exception flags are exact (sse-softfloat.ts). A handler
 * computes every lane into staging, then raises #XM if an unmasked exception
 * occurred (the destination is then left alone), then writes.
 */

const { NONE, P66, PF3, PF2 } = MANDATORY;
/** Lane kinds: packed single, packed double, scalar single, scalar double. */
const PS = 0;
const PD = 1;
const SS = 2;
const SD = 3;
const MIN = 5;
const MAX = 6;

/** One binary64 lane of an arithmetic op: `a` (destination) op `b` (source) into `out`. */
function laneF64(
  op: number,
  a: Uint32Array,
  ai: number,
  b: Uint32Array,
  bi: number,
  out: Uint32Array,
  oi: number,
  mx: number,
): void {
  const fl = out;
  const alo = a[ai]!;
  const ahi = a[ai + 1]!;
  const blo = b[bi]!;
  const bhi = b[bi + 1]!;
  const bNaN = isNaN64(blo, bhi);
  if (op === FOP.SQRT) {
    if (bNaN) {
      if ((bhi & 0x80000) === 0) fl[TMP.FLAGS]! |= MXCSR.IE;
      out[oi] = blo;
      out[oi + 1] = bhi | 0x80000;
      return;
    }
    writeF64(arith(BINARY64, op, f64From(blo, bhi), 0, mx, fl), out, oi);
    return;
  }
  const aNaN = isNaN64(alo, ahi);
  if (op === MIN || op === MAX) {
    // Any NaN: invalid, and the source operand is returned as it is (SDM vol. 2, "MINSD").
    if (aNaN || bNaN) {
      fl[TMP.FLAGS]! |= MXCSR.IE;
      if (bNaN) {
        out[oi] = blo;
        out[oi + 1] = bhi;
      } else f64To(dazIn(BINARY64, f64From(blo, bhi), mx), out, oi);
      return;
    }
    const x = denormalIn(BINARY64, f64From(alo, ahi), mx, fl);
    const y = denormalIn(BINARY64, f64From(blo, bhi), mx, fl);
    f64To((op === MIN ? x < y : x > y) ? x : y, out, oi);
    return;
  }
  if (aNaN || bNaN) {
    if (isSNaN64(alo, ahi) || isSNaN64(blo, bhi)) fl[TMP.FLAGS]! |= MXCSR.IE;
    out[oi] = aNaN ? alo : blo;
    out[oi + 1] = (aNaN ? ahi : bhi) | 0x80000;
    return;
  }
  writeF64(arith(BINARY64, op, f64From(alo, ahi), f64From(blo, bhi), mx, fl), out, oi);
}

function writeF64(r: number, out: Uint32Array, oi: number): void {
  if (Number.isNaN(r)) {
    out[oi] = 0;
    out[oi + 1] = QNAN64_HI;
  } else f64To(r, out, oi);
}

/** One binary32 lane: like {@link laneF64}. */
function laneF32(op: number, av: number, bv: number, out: Uint32Array, oi: number, mx: number): void {
  const fl = out;
  const bNaN = isNaN32(bv);
  if (op === FOP.SQRT) {
    if (bNaN) {
      if (isSNaN32(bv)) fl[TMP.FLAGS]! |= MXCSR.IE;
      out[oi] = bv | 0x400000;
      return;
    }
    out[oi] = writeF32(arith(BINARY32, op, f32From(bv), 0, mx, fl));
    return;
  }
  const aNaN = isNaN32(av);
  if (op === MIN || op === MAX) {
    if (aNaN || bNaN) {
      fl[TMP.FLAGS]! |= MXCSR.IE;
      out[oi] = bNaN ? bv : f32To(dazIn(BINARY32, f32From(bv), mx));
      return;
    }
    const x = denormalIn(BINARY32, f32From(av), mx, fl);
    const y = denormalIn(BINARY32, f32From(bv), mx, fl);
    out[oi] = f32To((op === MIN ? x < y : x > y) ? x : y);
    return;
  }
  if (aNaN || bNaN) {
    if (isSNaN32(av) || isSNaN32(bv)) fl[TMP.FLAGS]! |= MXCSR.IE;
    out[oi] = (aNaN ? av : bv) | 0x400000;
    return;
  }
  out[oi] = writeF32(arith(BINARY32, op, f32From(av), f32From(bv), mx, fl));
}

function writeF32(r: number): number {
  return Number.isNaN(r) ? QNAN32 : f32To(r);
}

/** Loads the source of a `kind` instruction into `cpu.sseTmp[0..3]` (m128 aligned, m64/m32 not). */
function loadFpSource(cpu: Cpu, insn: Insn, kind: number): Uint32Array {
  return kind === SD ? loadSrc64(cpu, insn) : kind === SS ? loadSrc32(cpu, insn) : loadSrc128(cpu, insn, true);
}

/** ADD SUB MUL DIV SQRT MIN MAX in one of the four forms. */
function arithmetic(op: number, kind: number) {
  const double = kind === PD || kind === SD;
  const lanes = kind === PS ? 4 : kind === PD ? 2 : 1;
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadFpSource(cpu, insn, kind);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    const mx = cpu.mxcsr;
    t[TMP.FLAGS] = 0;
    for (let l = 0; l < lanes; l++) {
      if (double) laneF64(op, x, d + 2 * l, t, 2 * l, t, TMP.RES + 2 * l, mx);
      else laneF32(op, x[d + l]!, t[l]!, t, TMP.RES + l, mx);
    }
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    const n = double ? 2 * lanes : lanes;
    for (let i = 0; i < n; i++) x[d + i] = t[TMP.RES + i]!;
  };
}

// ---------------------------------------------------------------- compares

/** Compares two non-NaN-checked operands: 0 unordered, 1 less, 2 equal, 3 greater (values after DAZ). */
function order(fmt: FloatFormat, a: number, b: number, mx: number, fl: Uint32Array): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return 0;
  const x = denormalIn(fmt, a, mx, fl);
  const y = denormalIn(fmt, b, mx, fl);
  return x < y ? 1 : x === y ? 2 : 3;
}

/**
 * 0F C2: CMPPS/PD/SS/SD with predicate imm8[2:0] (EQ LT LE UNORD NEQ NLT NLE
 * ORD): all ones when true. IE for an SNaN, or any NaN with LT/LE/NLT/NLE.
 */
function cmp(kind: number) {
  const double = kind === PD || kind === SD;
  const lanes = kind === PS ? 4 : kind === PD ? 2 : 1;
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadFpSource(cpu, insn, kind);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    const mx = cpu.mxcsr;
    const pred = insn.imm & 7;
    const signaling = pred === 1 || pred === 2 || pred === 5 || pred === 6;
    t[TMP.FLAGS] = 0;
    for (let l = 0; l < lanes; l++) {
      let a: number;
      let b: number;
      let snan: boolean;
      if (double) {
        const i = 2 * l;
        a = f64From(x[d + i]!, x[d + i + 1]!);
        b = f64From(t[i]!, t[i + 1]!);
        snan = isSNaN64(x[d + i]!, x[d + i + 1]!) || isSNaN64(t[i]!, t[i + 1]!);
      } else {
        a = f32From(x[d + l]!);
        b = f32From(t[l]!);
        snan = isSNaN32(x[d + l]!) || isSNaN32(t[l]!);
      }
      const o = order(double ? BINARY64 : BINARY32, a, b, mx, t);
      if (snan || (o === 0 && signaling)) t[TMP.FLAGS]! |= MXCSR.IE;
      let r: boolean;
      switch (pred) {
        case 0:
          r = o === 2;
          break;
        case 1:
          r = o === 1;
          break;
        case 2:
          r = o === 1 || o === 2;
          break;
        case 3:
          r = o === 0;
          break;
        case 4:
          r = o !== 2;
          break;
        case 5:
          r = o !== 1;
          break;
        case 6:
          r = o === 0 || o === 3;
          break;
        default:
          r = o !== 0;
      }
      const v = r ? 0xffffffff : 0;
      if (double) {
        t[TMP.RES + 2 * l] = v;
        t[TMP.RES + 2 * l + 1] = v;
      } else t[TMP.RES + l] = v;
    }
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    const n = double ? 2 * lanes : lanes;
    for (let i = 0; i < n; i++) x[d + i] = t[TMP.RES + i]!;
  };
}

/**
 * 0F 2E/2F: UCOMISS/COMISS, 66: UCOMISD/COMISD — ZF PF CF = 111 unordered,
 * 000 greater, 001 less, 100 equal; OF SF AF cleared. COMIS raises IE for any
 * NaN, UCOMIS only for an SNaN.
 */
function comis(double: boolean, signaling: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = double ? loadSrc64(cpu, insn) : loadSrc32(cpu, insn);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    t[TMP.FLAGS] = 0;
    let a: number;
    let b: number;
    let snan: boolean;
    if (double) {
      a = f64From(x[d]!, x[d + 1]!);
      b = f64From(t[0]!, t[1]!);
      snan = isSNaN64(x[d]!, x[d + 1]!) || isSNaN64(t[0]!, t[1]!);
    } else {
      a = f32From(x[d]!);
      b = f32From(t[0]!);
      snan = isSNaN32(x[d]!) || isSNaN32(t[0]!);
    }
    const o = order(double ? BINARY64 : BINARY32, a, b, cpu.mxcsr, t);
    if (snan || (o === 0 && signaling)) t[TMP.FLAGS]! |= MXCSR.IE;
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    const f = o === 0 ? RFLAGS.ZF | RFLAGS.PF | RFLAGS.CF : o === 1 ? RFLAGS.CF : o === 2 ? RFLAGS.ZF : 0;
    cpu.rflags = (cpu.getRflags() & ~ARITH_FLAGS) | f;
  };
}

// ---------------------------------------------------------------- approximations

/**
 * One binary32 lane of RCP (1/x) or RSQRT (1/√x), bits in and out (SDM vol.
 * 2B, RCPPS and RSQRTPS). Architecturally these are approximations with
 * |relative error| ≤ 1.5 · 2^-12 that Intel reads from model-specific tables;
 * here they are the exact values rounded to binary32 (through binary64:
 * relative error below 2^-23), which meets the bound but differs from a real
 * processor's bits in the low dozen significand bits (RCPPS of 1.0 is
 * 0x3F7FF000 on Intel, 1.0 here; sse-approx-native.test.ts checks both
 * against the bound).
 * The operands the SDM defines exactly: ±0 and denormals (read as ±0) → ±∞;
 * RCP of ±∞ → ±0; RSQRT of +∞ → +0; RSQRT of anything negative below −0 →
 * the default NaN; a NaN → itself, quieted; an RCP result that would be tiny
 * (below 2^-126) → 0 of the operand's sign. MXCSR (rounding, DAZ/FTZ, flags)
 * plays no part and nothing is raised.
 */
function approximateLane(rsqrt: boolean, b: number): number {
  const sign = b & 0x80000000;
  const exp = (b >>> 23) & 0xff;
  if (exp === 0xff) {
    if (b & 0x7fffff) return (b | 0x400000) >>> 0;
    return rsqrt && sign ? QNAN32 : sign >>> 0;
  }
  if (exp === 0) return (sign | 0x7f800000) >>> 0;
  if (rsqrt && sign) return QNAN32;
  const x = f32From(b);
  const r = f32To(Math.fround(rsqrt ? 1 / Math.sqrt(x) : 1 / x));
  return ((r & 0x7f800000) === 0 ? sign : r) >>> 0;
}

/** 0F 53 / F3 0F 53: RCPPS / RCPSS; 0F 52 / F3 0F 52: RSQRTPS / RSQRTSS. The scalar forms keep lanes 1–3. */
function approximate(rsqrt: boolean, scalar: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = scalar ? loadSrc32(cpu, insn) : loadSrc128(cpu, insn, true);
    const x = cpu.xmm;
    const d = 4 * insn.reg;
    for (let l = 0; l < (scalar ? 1 : 4); l++) x[d + l] = approximateLane(rsqrt, t[l]!);
  };
}

/** Registers the family. */
export function registerSseFp(t: OpcodeTable): void {
  const forms = [
    [NONE, PS],
    [P66, PD],
    [PF3, SS],
    [PF2, SD],
  ] as const;
  for (const [m, kind] of forms) {
    t.sse(0x158, m, arithmetic(FOP.ADD, kind));
    t.sse(0x15c, m, arithmetic(FOP.SUB, kind));
    t.sse(0x159, m, arithmetic(FOP.MUL, kind));
    t.sse(0x15e, m, arithmetic(FOP.DIV, kind));
    t.sse(0x151, m, arithmetic(FOP.SQRT, kind));
    t.sse(0x15d, m, arithmetic(MIN, kind));
    t.sse(0x15f, m, arithmetic(MAX, kind));
    t.sse(0x1c2, m, cmp(kind));
  }
  t.sse(0x12e, NONE, comis(false, false));
  t.sse(0x12f, NONE, comis(false, true));
  t.sse(0x12e, P66, comis(true, false));
  t.sse(0x12f, P66, comis(true, true));
  t.sse(0x153, NONE, approximate(false, false));
  t.sse(0x153, PF3, approximate(false, true));
  t.sse(0x152, NONE, approximate(true, false));
  t.sse(0x152, PF3, approximate(true, true));
}
