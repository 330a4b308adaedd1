import type { Cpu } from "../cpu";
import { type Insn, MANDATORY } from "../decode/insn";
import { ARITH_FLAGS, RFLAGS } from "../flags";
import { ea, setReg } from "./operands";
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
  fromInteger,
  isDenormal,
  MXCSR,
  narrow,
  QNAN32,
  QNAN64_HI,
  roundToIntegral,
} from "./sse-softfloat";
import type { OpcodeTable } from "./table";

/**
 * SSE/SSE2 floating point (SDM vol. 2): ADD SUB MUL DIV SQRT MIN MAX in the
 * PS/PD/SS/SD forms, CMPPS/PD/SS/SD, COMISS/SD, UCOMISS/SD and the
 * conversions CVTSI2SS/SD, CVT(T)SS2SI, CVT(T)SD2SI, CVTSS2SD, CVTSD2SS,
 * CVTPS2PD, CVTPD2PS, CVTDQ2PS, CVT(T)PS2DQ, CVTDQ2PD, CVT(T)PD2DQ. NaN
 * operands follow SDM vol. 1, table 4-7 (the first source operand's NaN wins,
 * quieted); invalid operations produce the default NaN; all rounding modes,
 * DAZ/FTZ and the six exception flags are exact (sse-softfloat.ts). A handler
 * computes every lane into staging, then raises #XM if an unmasked exception
 * occurred (the destination is then left alone), then writes.
 *
 * Not implemented (#UD): RCPPS/SS and RSQRTPS/SS (their approximations are
 * model-specific tables) and the MMX-register conversions (CVTPI2PS …).
 */

const { NONE, P66, PF3, PF2 } = MANDATORY;
/** Lane kinds: packed single, packed double, scalar single, scalar double. */
const PS = 0;
const PD = 1;
const SS = 2;
const SD = 3;
const MIN = 5;
const MAX = 6;

function isNaN64(lo: number, hi: number): boolean {
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0;
}
function isSNaN64(lo: number, hi: number): boolean {
  return isNaN64(lo, hi) && (hi & 0x80000) === 0;
}
function isNaN32(b: number): boolean {
  return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
}
function isSNaN32(b: number): boolean {
  return isNaN32(b) && (b & 0x400000) === 0;
}

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

// ---------------------------------------------------------------- conversions

const TWO31 = 2 ** 31;
const TWO32 = 2 ** 32;
const TWO63 = 2 ** 63;

/**
 * Converts a value to a signed integer of `bits` (32 or 64): NaN, infinities
 * and out-of-range values give the integer indefinite (0x80000000…) with IE.
 * Returns the low half; the high half is written to `out[TMP.DST]`.
 */
function toInt(fmt: FloatFormat, x: number, bits: 32 | 64, truncate: boolean, mx: number, t: Uint32Array): number {
  t[TMP.DST] = bits === 64 ? 0x80000000 : 0;
  if (!Number.isFinite(x)) {
    t[TMP.FLAGS]! |= MXCSR.IE;
    return bits === 64 ? 0 : 0x80000000;
  }
  if ((mx & MXCSR.DAZ) !== 0 && isDenormal(fmt, x)) x = 0;
  const before = t[TMP.FLAGS]!;
  const r = roundToIntegral(x, truncate, mx, t);
  if (bits === 32 ? r < -TWO31 || r >= TWO31 : r < -TWO63 || r >= TWO63) {
    t[TMP.FLAGS] = before | MXCSR.IE;
    return bits === 64 ? 0 : 0x80000000;
  }
  const hi = Math.floor(r / TWO32);
  t[TMP.DST] = bits === 64 ? hi >>> 0 : 0;
  return (r - hi * TWO32) >>> 0;
}

/** F2/F3 0F 2C/2D: CVT(T)SD2SI and CVT(T)SS2SI r32/r64, xmm/m. */
function cvtToSi(double: boolean, truncate: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = double ? loadSrc64(cpu, insn) : loadSrc32(cpu, insn);
    t[TMP.FLAGS] = 0;
    const x = double ? f64From(t[0]!, t[1]!) : f32From(t[0]!);
    const bits = (insn.rex & 8) !== 0 ? 64 : 32;
    const lo = toInt(double ? BINARY64 : BINARY32, x, bits, truncate, cpu.mxcsr, t);
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    setReg(cpu, insn.reg, bits === 64 ? 8 : 4, lo, t[TMP.DST]!, insn.rex);
  };
}

/** F2/F3 0F 2A: CVTSI2SD / CVTSI2SS xmm, r/m32 or r/m64 (REX.W). */
function cvtFromSi(double: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const wide = (insn.rex & 8) !== 0;
    let lo: number;
    let hi = 0;
    if (insn.mod === 3) {
      lo = cpu.gpr[2 * insn.rm]!;
      if (wide) hi = cpu.gpr[2 * insn.rm + 1]!;
    } else {
      const lin = ea(cpu, insn);
      lo = wide ? cpu.read64(lin) : cpu.read32(lin);
      if (wide) hi = cpu.hi;
    }
    const t = cpu.sseTmp;
    t[TMP.FLAGS] = 0;
    let v: number | bigint;
    if (!wide) v = lo | 0;
    else if ((hi | 0) >= -0x200000 && (hi | 0) < 0x200000) v = (hi | 0) * TWO32 + lo;
    else v = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
    const r = fromInteger(double ? BINARY64 : BINARY32, v, cpu.mxcsr, t);
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    const d = 4 * insn.reg;
    if (double) f64To(r, cpu.xmm, d);
    else cpu.xmm[d] = f32To(r);
  };
}

/** A binary32 NaN widened to binary64 (quieted, payload kept). */
function widenNaN(b: number, out: Uint32Array, i: number): void {
  out[i] = (b & 7) << 29;
  out[i + 1] = (b & 0x80000000) | 0x7ff80000 | ((b & 0x3fffff) >>> 3);
}

/** A binary64 NaN narrowed to binary32 (quieted, top of the payload kept). */
function narrowNaN(lo: number, hi: number): number {
  return ((hi & 0x80000000) | 0x7fc00000 | ((hi & 0xfffff) << 3) | (lo >>> 29)) >>> 0;
}

/** binary32 → binary64 into `out[i..i+1]` (exact; SNaN → IE, denormal → DE or zero under DAZ). */
function f32ToF64(b: number, out: Uint32Array, i: number, mx: number, t: Uint32Array): void {
  if (isNaN32(b)) {
    if (isSNaN32(b)) t[TMP.FLAGS]! |= MXCSR.IE;
    widenNaN(b, out, i);
    return;
  }
  f64To(denormalIn(BINARY32, f32From(b), mx, t), out, i);
}

/** binary64 → binary32 (rounded; SNaN → IE, denormal → DE, OE/UE/PE). */
function f64ToF32(lo: number, hi: number, mx: number, t: Uint32Array): number {
  if (isNaN64(lo, hi)) {
    if (isSNaN64(lo, hi)) t[TMP.FLAGS]! |= MXCSR.IE;
    return narrowNaN(lo, hi);
  }
  return f32To(narrow(BINARY32, denormalIn(BINARY64, f64From(lo, hi), mx, t), mx, t));
}

/** F3 0F 5A CVTSS2SD / F2 0F 5A CVTSD2SS (low lane; the rest of the destination is kept). */
function cvtScalar(toDouble: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = toDouble ? loadSrc32(cpu, insn) : loadSrc64(cpu, insn);
    t[TMP.FLAGS] = 0;
    const mx = cpu.mxcsr;
    if (toDouble) f32ToF64(t[0]!, t, TMP.RES, mx, t);
    else t[TMP.RES] = f64ToF32(t[0]!, t[1]!, mx, t);
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    const d = 4 * insn.reg;
    cpu.xmm[d] = t[TMP.RES]!;
    if (toDouble) cpu.xmm[d + 1] = t[TMP.RES + 1]!;
  };
}

/** 0F 5A CVTPS2PD (source m64) / 66 0F 5A CVTPD2PS (source m128, upper half zeroed). */
function cvtPacked(toDouble: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = toDouble ? loadSrc64(cpu, insn) : loadSrc128(cpu, insn, true);
    t[TMP.FLAGS] = 0;
    const mx = cpu.mxcsr;
    if (toDouble) {
      f32ToF64(t[0]!, t, TMP.RES, mx, t);
      f32ToF64(t[1]!, t, TMP.RES + 2, mx, t);
    } else {
      t[TMP.RES] = f64ToF32(t[0]!, t[1]!, mx, t);
      t[TMP.RES + 1] = f64ToF32(t[2]!, t[3]!, mx, t);
      t[TMP.RES + 2] = 0;
      t[TMP.RES + 3] = 0;
    }
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    cpu.xmm.set(t.subarray(TMP.RES, TMP.RES + 4), 4 * insn.reg);
  };
}

/** 0F 5B CVTDQ2PS, F3 0F E6 CVTDQ2PD (source m64). */
function cvtFromDq(double: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = double ? loadSrc64(cpu, insn) : loadSrc128(cpu, insn, true);
    t[TMP.FLAGS] = 0;
    const mx = cpu.mxcsr;
    if (double) {
      f64To(t[0]! | 0, t, TMP.RES);
      f64To(t[1]! | 0, t, TMP.RES + 2);
    } else for (let l = 0; l < 4; l++) t[TMP.RES + l] = f32To(fromInteger(BINARY32, t[l]! | 0, mx, t));
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    cpu.xmm.set(t.subarray(TMP.RES, TMP.RES + 4), 4 * insn.reg);
  };
}

/** 66/F3 0F 5B CVTPS2DQ / CVTTPS2DQ, F2/66 0F E6 CVTPD2DQ / CVTTPD2DQ (upper half zeroed). */
function cvtToDq(double: boolean, truncate: boolean) {
  return (cpu: Cpu, insn: Insn) => {
    sseCheck(cpu);
    const t = loadSrc128(cpu, insn, true);
    t[TMP.FLAGS] = 0;
    const mx = cpu.mxcsr;
    if (double) {
      const lo = toInt(BINARY64, f64From(t[0]!, t[1]!), 32, truncate, mx, t);
      const hi = toInt(BINARY64, f64From(t[2]!, t[3]!), 32, truncate, mx, t);
      t[TMP.RES] = lo;
      t[TMP.RES + 1] = hi;
      t[TMP.RES + 2] = 0;
      t[TMP.RES + 3] = 0;
    } else for (let l = 0; l < 4; l++) t[TMP.RES + l] = toInt(BINARY32, f32From(t[l]!), 32, truncate, mx, t);
    raiseSimdFlags(cpu, t[TMP.FLAGS]!);
    cpu.xmm.set(t.subarray(TMP.RES, TMP.RES + 4), 4 * insn.reg);
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
  t.sse(0x12a, PF2, cvtFromSi(true));
  t.sse(0x12a, PF3, cvtFromSi(false));
  t.sse(0x12c, PF2, cvtToSi(true, true));
  t.sse(0x12d, PF2, cvtToSi(true, false));
  t.sse(0x12c, PF3, cvtToSi(false, true));
  t.sse(0x12d, PF3, cvtToSi(false, false));
  t.sse(0x15a, PF3, cvtScalar(true));
  t.sse(0x15a, PF2, cvtScalar(false));
  t.sse(0x15a, NONE, cvtPacked(true));
  t.sse(0x15a, P66, cvtPacked(false));
  t.sse(0x15b, NONE, cvtFromDq(false));
  t.sse(0x1e6, PF3, cvtFromDq(true));
  t.sse(0x15b, P66, cvtToDq(false, false));
  t.sse(0x15b, PF3, cvtToDq(false, true));
  t.sse(0x1e6, PF2, cvtToDq(true, false));
  t.sse(0x1e6, P66, cvtToDq(true, true));
}
