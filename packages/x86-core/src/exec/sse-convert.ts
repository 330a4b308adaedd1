import type { Cpu } from "../cpu";
import { type Insn, MANDATORY } from "../decode/insn";
import { readRm, setReg } from "./operands";
import { loadSrc32, loadSrc64, loadSrc128, raiseSimdFlags, sseCheck, TMP } from "./sse-common";
import {
  BINARY32,
  BINARY64,
  denormalIn,
  type FloatFormat,
  f32From,
  f32To,
  f64From,
  f64To,
  fromInteger,
  isDenormal,
  isNaN32,
  isNaN64,
  isSNaN32,
  isSNaN64,
  MXCSR,
  narrow,
  roundToIntegral,
} from "./sse-softfloat";
import type { OpcodeTable } from "./table";

/**
 * SSE/SSE2 conversions (SDM vol. 2): CVTSI2SS/SD, CVT(T)SS2SI, CVT(T)SD2SI,
 * CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS, CVTDQ2PS, CVT(T)PS2DQ, CVTDQ2PD,
 * CVT(T)PD2DQ, rounding per MXCSR.RC (or truncating) with exact flags. NaN,
 * infinite and out-of-range values give the integer indefinite with IE.
 *
 * Not implemented (#UD): the MMX-register forms (CVTPI2PS, CVTPS2PI, …).
 */

const { NONE, P66, PF3, PF2 } = MANDATORY;

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
    const lo = readRm(cpu, insn, wide ? 8 : 4);
    const hi = wide ? cpu.hi : 0;
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
export function registerSseConvert(t: OpcodeTable): void {
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
