/**
 * IEEE 754 binary32/binary64 arithmetic with every MXCSR rounding mode and
 * exact exception flags, as SSE/SSE2 instructions need them (SDM vol. 1,
 * 4.8–4.9 and 11.5).
 *
 * Values travel as JS doubles (every binary32 and binary64 value is one); NaN
 * operands are dealt with by the callers, which see the bits. Results that
 * are correctly rounded to nearest and comfortably normal come from the host's
 * double arithmetic, with exactness (PE) decided by error-free transformations
 * (TwoSum, Dekker's product). Everything else — directed rounding, results
 * near overflow or underflow, flush-to-zero — goes through an exact BigInt
 * path: the exact result as `m · 2^e` (plus a sticky bit), rounded once with an
 * unbounded exponent to detect tininess *after rounding*, as Intel processors
 * do (SDM vol. 1, 4.9.1.5), then rounded again to the subnormal grid.
 *
 * Flags are OR-ed into `fl[FLAG_SLOT]` in MXCSR bit positions, so the caller
 * can decide about #XM before it writes any destination.
 */

/** MXCSR bits (SDM vol. 1, 10.2.3). */
export const MXCSR = {
  IE: 1,
  DE: 2,
  ZE: 4,
  OE: 8,
  UE: 16,
  PE: 32,
  DAZ: 64,
  IM: 128,
  DM: 256,
  ZM: 512,
  OM: 1024,
  UM: 2048,
  PM: 4096,
  RC: 0x6000,
  FZ: 0x8000,
} as const;

/** Rounding control values (MXCSR bits 14:13). */
export const RC = { NEAREST: 0, DOWN: 1, UP: 2, ZERO: 3 } as const;

/** Index of the flag accumulator in the scratch array passed as `fl`. */
export const FLAG_SLOT = 15;

/** Arithmetic operations of {@link arith}. */
export const FOP = { ADD: 0, SUB: 1, MUL: 2, DIV: 3, SQRT: 4 } as const;

/** A binary floating-point format. */
export interface FloatFormat {
  /** Significand bits including the hidden one. */
  readonly p: number;
  readonly emin: number;
  readonly emax: number;
  readonly bias: number;
  /** Smallest normal magnitude. */
  readonly minNormal: number;
  /** Largest finite magnitude. */
  readonly max: number;
}

/** binary64. */
export const BINARY64: FloatFormat = {
  p: 53,
  emin: -1022,
  emax: 1023,
  bias: 1023,
  minNormal: 2 ** -1022,
  max: (2 - 2 ** -52) * 2 ** 1023,
};
/** binary32. */
export const BINARY32: FloatFormat = {
  p: 24,
  emin: -126,
  emax: 127,
  bias: 127,
  minNormal: 2 ** -126,
  max: (2 - 2 ** -23) * 2 ** 127,
};

// Bit-cast scratch: pure conversions, nothing survives a call.
const CAST_F64 = new Float64Array(1);
const CAST_U32 = new Uint32Array(CAST_F64.buffer);
const CAST_F32 = new Float32Array(1);
const CAST_U32F = new Uint32Array(CAST_F32.buffer);

/** The double with bits `hi:lo`. */
export function f64From(lo: number, hi: number): number {
  CAST_U32[0] = lo;
  CAST_U32[1] = hi;
  return CAST_F64[0]!;
}

/** Writes the bits of double `x` to `out[i]` (low) and `out[i + 1]` (high). */
export function f64To(x: number, out: Uint32Array, i: number): void {
  CAST_F64[0] = x;
  out[i] = CAST_U32[0]!;
  out[i + 1] = CAST_U32[1]!;
}

/** The binary32 value with bits `b` (as a double). */
export function f32From(b: number): number {
  CAST_U32F[0] = b;
  return CAST_F32[0]!;
}

/** The binary32 bits of `x` (which must be representable, or NaN/infinite). */
export function f32To(x: number): number {
  CAST_F32[0] = x;
  return CAST_U32F[0]!;
}

/** Whether binary64 bits `hi:lo` are a NaN. */
export function isNaN64(lo: number, hi: number): boolean {
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0;
}
/** Whether binary64 bits `hi:lo` are a signalling NaN (quiet bit 51 clear). */
export function isSNaN64(lo: number, hi: number): boolean {
  return isNaN64(lo, hi) && (hi & 0x80000) === 0;
}
/** Whether binary32 bits are a NaN. */
export function isNaN32(b: number): boolean {
  return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
}
/** Whether binary32 bits are a signalling NaN (quiet bit 22 clear). */
export function isSNaN32(b: number): boolean {
  return isNaN32(b) && (b & 0x400000) === 0;
}

/** The default NaN ("QNaN floating-point indefinite") of binary64, high half. */
export const QNAN64_HI = 0xfff80000;
/** The default NaN of binary32. */
export const QNAN32 = 0xffc00000;

const TWO_M1021 = 2 ** -1021;
const TWO_1022 = 2 ** 1022;
const TWO_M480 = 2 ** -480;
const TWO_480 = 2 ** 480;
const TWO_M125 = 2 ** -125;
const TWO_127 = 2 ** 127;
const SPLITTER = 134217729; // 2^27 + 1

/** The rounding error of `p = a · b` (exact when both lie in [2^-480, 2^480]). */
function productError(a: number, b: number, p: number): number {
  let c = SPLITTER * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLITTER * b;
  const bh = c - (c - b);
  const bl = b - bh;
  return ah * bh - p + ah * bl + al * bh + al * bl;
}

function inRange(x: number): boolean {
  const m = Math.abs(x);
  return m >= TWO_M480 && m <= TWO_480;
}

/**
 * The sign of (exact result − `d`) for the double `d` the host computed for
 * `a op b` (or √a), or NaN when the error-free transformation would not be exact.
 */
function residualSign(op: number, a: number, b: number, d: number): number {
  switch (op) {
    case FOP.ADD:
    case FOP.SUB: {
      const bb = op === FOP.ADD ? b : -b;
      if (Math.abs(a) >= TWO_1022 || Math.abs(bb) >= TWO_1022) return Number.NaN;
      const v = d - a;
      return Math.sign(a - (d - v) + (bb - v));
    }
    case FOP.MUL:
      if (!inRange(a) || !inRange(b)) return Number.NaN;
      return Math.sign(productError(a, b, d));
    case FOP.DIV: {
      if (!inRange(d) || !inRange(b)) return Number.NaN;
      const p = d * b;
      return Math.sign(a - p - productError(d, b, p)) * Math.sign(b);
    }
    default: {
      if (!inRange(d)) return Number.NaN;
      const p = d * d;
      return Math.sign(a - p - productError(d, d, p));
    }
  }
}

// ---------------------------------------------------------------- exact path

/** `|x| = m · 2^e` for a finite non-zero double. */
function decompose(x: number): { m: bigint; e: number } {
  CAST_F64[0] = x;
  const lo = CAST_U32[0]!;
  const hi = CAST_U32[1]!;
  const exp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (exp === 0) return { m, e: -1074 };
  m |= 1n << 52n;
  return { m, e: exp - 1075 };
}

function bitLength(m: bigint): number {
  return m.toString(2).length;
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLength(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/** Drops `shift` low bits of `m` rounding per `rc`; `inexact` reports whether anything was lost. */
function roundShift(
  m: bigint,
  shift: number,
  sticky: boolean,
  rc: number,
  neg: boolean,
): { q: bigint; inexact: boolean } {
  if (shift <= 0) return { q: m << BigInt(-shift), inexact: sticky };
  const s = BigInt(shift);
  const q = m >> s;
  const rem = m & ((1n << s) - 1n);
  const inexact = rem !== 0n || sticky;
  if (!inexact) return { q, inexact };
  let up: boolean;
  switch (rc) {
    case RC.NEAREST: {
      const half = 1n << (s - 1n);
      up = rem > half || (rem === half && (sticky || (q & 1n) === 1n));
      break;
    }
    case RC.DOWN:
      up = neg;
      break;
    case RC.UP:
      up = !neg;
      break;
    default:
      up = false;
  }
  return { q: up ? q + 1n : q, inexact };
}

/**
 * Rounds `(-1)^neg · (m + sticky·ε) · 2^e` (m ≥ 1) to `fmt` under MXCSR `mx`:
 * overflow, tininess after rounding, flush-to-zero and the UE/OE/PE flags.
 * Returns the value as a double.
 */
export function roundExact(
  fmt: FloatFormat,
  neg: boolean,
  m: bigint,
  e: number,
  sticky: boolean,
  mx: number,
  fl: Uint32Array,
): number {
  const rc = (mx & MXCSR.RC) >>> 13;
  const p = fmt.p;
  const len = bitLength(m);
  let top = e + len - 1;
  const u = roundShift(m, len - p, sticky, rc, neg);
  let q = u.q;
  if (q >> BigInt(p) !== 0n) {
    q >>= 1n;
    top++;
  }
  const sign = neg ? -1 : 1;
  // Unmasked overflow and underflow report PE from the rounding with unbounded exponent (the
  // result a handler would get scaled); masked, from the delivered result (measured on Intel).
  if (top > fmt.emax) {
    fl[FLAG_SLOT]! |= (mx & MXCSR.OM) === 0 ? MXCSR.OE | (u.inexact ? MXCSR.PE : 0) : MXCSR.OE | MXCSR.PE;
    const toInf = rc === RC.NEAREST || (rc === RC.UP && !neg) || (rc === RC.DOWN && neg);
    return sign * (toInf ? Number.POSITIVE_INFINITY : fmt.max);
  }
  if (top >= fmt.emin) {
    if (u.inexact) fl[FLAG_SLOT]! |= MXCSR.PE;
    return sign * Number(q) * 2 ** (top - p + 1);
  }
  // Tiny: round to the subnormal grid.
  const quantum = fmt.emin - p + 1;
  const d = roundShift(m, quantum - e, sticky, rc, neg);
  if ((mx & MXCSR.FZ) !== 0 && (mx & MXCSR.UM) !== 0) {
    fl[FLAG_SLOT]! |= MXCSR.UE | MXCSR.PE;
    return neg ? -0 : 0;
  }
  // Unmasked, underflow is signalled for any tiny result; masked, only for a tiny inexact one.
  if ((mx & MXCSR.UM) === 0) fl[FLAG_SLOT]! |= MXCSR.UE | (u.inexact ? MXCSR.PE : 0);
  else if (d.inexact) fl[FLAG_SLOT]! |= MXCSR.UE | MXCSR.PE;
  // Scale in two steps: 2^quantum alone underflows for binary64.
  return sign * Number(d.q) * 2 ** (quantum + 60) * 2 ** -60;
}

/**
 * The exact result of `a op b` (or √a) for finite non-zero operands, rounded
 * by {@link roundExact}: the reference the fast paths of {@link arith} must
 * agree with (exported for tests).
 */
export function exactArith(fmt: FloatFormat, op: number, a: number, b: number, mx: number, fl: Uint32Array): number {
  const x = decompose(a);
  if (op === FOP.SQRT) {
    let s = Math.max(0, 2 * fmt.p + 6 - bitLength(x.m));
    if ((x.e - s) % 2 !== 0) s++;
    const n = x.m << BigInt(s);
    const r = isqrt(n);
    return roundExact(fmt, false, r, (x.e - s) / 2, r * r !== n, mx, fl);
  }
  const y = decompose(b);
  const negA = a < 0;
  let negB = b < 0;
  switch (op) {
    case FOP.ADD:
    case FOP.SUB: {
      if (op === FOP.SUB) negB = !negB;
      const e = Math.min(x.e, y.e);
      const va = (negA ? -x.m : x.m) << BigInt(x.e - e);
      const vb = (negB ? -y.m : y.m) << BigInt(y.e - e);
      const s = va + vb;
      if (s === 0n) return (mx & MXCSR.RC) >>> 13 === RC.DOWN ? -0 : 0;
      return roundExact(fmt, s < 0n, s < 0n ? -s : s, e, false, mx, fl);
    }
    case FOP.MUL:
      return roundExact(fmt, negA !== negB, x.m * y.m, x.e + y.e, false, mx, fl);
    default: {
      const k = Math.max(0, fmt.p + 3 - (bitLength(x.m) - bitLength(y.m)));
      const n = x.m << BigInt(k);
      const q = n / y.m;
      return roundExact(fmt, negA !== negB, q, x.e - y.e - k, q * y.m !== n, mx, fl);
    }
  }
}

// ---------------------------------------------------------------- operations

/** Whether a finite value is a denormal of `fmt`. */
export function isDenormal(fmt: FloatFormat, x: number): boolean {
  return x !== 0 && Math.abs(x) < fmt.minNormal;
}

/**
 * Replaces a denormal operand by a zero of its sign under MXCSR.DAZ, else
 * reports DE for it (SDM vol. 1, 10.2.3.4 and 4.9.1.2).
 */
export function denormalIn(fmt: FloatFormat, x: number, mx: number, fl: Uint32Array): number {
  if (x !== 0 && Math.abs(x) < fmt.minNormal) {
    if ((mx & MXCSR.DAZ) !== 0) return x < 0 ? -0 : 0;
    fl[FLAG_SLOT]! |= MXCSR.DE;
  }
  return x;
}

/**
 * The operand as the operation sees it: a denormal becomes a zero of its sign
 * under MXCSR.DAZ (SDM vol. 1, 10.2.3.4).
 */
export function dazIn(fmt: FloatFormat, x: number, mx: number): number {
  if ((mx & MXCSR.DAZ) !== 0 && x !== 0 && Math.abs(x) < fmt.minNormal) return x < 0 ? -0 : 0;
  return x;
}

/**
 * `a op b` (or √a for SQRT) on non-NaN operands in `fmt` under MXCSR `mx`.
 * Returns the value, or NaN for an invalid operation (the caller writes the
 * default NaN); IE/DE/ZE/OE/UE/PE go to `fl[FLAG_SLOT]`. An invalid operation
 * or a division by zero takes precedence over a denormal operand (DE is then
 * not reported, as measured on Intel processors; SDM vol. 1, 4.9.2).
 */
export function arith(fmt: FloatFormat, op: number, a: number, b: number, mx: number, fl: Uint32Array): number {
  a = dazIn(fmt, a, mx);
  if (op !== FOP.SQRT) b = dazIn(fmt, b, mx);
  const de = isDenormal(fmt, a) || (op !== FOP.SQRT && isDenormal(fmt, b)) ? MXCSR.DE : 0;
  let d: number;
  switch (op) {
    case FOP.ADD:
      d = a + b;
      break;
    case FOP.SUB:
      d = a - b;
      break;
    case FOP.MUL:
      d = a * b;
      break;
    case FOP.DIV:
      if (b === 0 && a !== 0 && Number.isFinite(a)) {
        fl[FLAG_SLOT]! |= MXCSR.ZE;
        return a < 0 !== Object.is(b, -0) ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
      }
      d = a / b;
      break;
    default:
      if (a < 0) {
        fl[FLAG_SLOT]! |= MXCSR.IE;
        return Number.NaN;
      }
      d = Math.sqrt(a);
  }
  if (Number.isNaN(d)) {
    fl[FLAG_SLOT]! |= MXCSR.IE;
    return Number.NaN;
  }
  fl[FLAG_SLOT]! |= de;
  // Exact special results: infinite or zero operands.
  if (!Number.isFinite(a) || (op !== FOP.SQRT && !Number.isFinite(b))) return d;
  if (a === 0 || (op !== FOP.SQRT && b === 0)) {
    if ((op === FOP.ADD || op === FOP.SUB) && d === 0 && a === 0 && b === 0) {
      // ±0 ± ±0: opposite signs give +0, or −0 when rounding down (IEEE 754, 6.3).
      const negA = Object.is(a, -0);
      const negB = Object.is(b, -0) !== (op === FOP.SUB);
      if (negA !== negB) return (mx & MXCSR.RC) >>> 13 === RC.DOWN ? -0 : 0;
    }
    // A denormal ± 0 is exact but tiny: underflow rules (FTZ, unmasked UE) still apply.
    if (isDenormal(fmt, d)) {
      const { m, e } = decompose(d);
      return roundExact(fmt, d < 0, m, e, false, mx, fl);
    }
    return d;
  }
  const rc = (mx & MXCSR.RC) >>> 13;
  if (rc === RC.NEAREST) {
    if (fmt === BINARY64) {
      const m = Math.abs(d);
      if (m >= TWO_M1021 && m < TWO_1022) {
        const s = residualSign(op, a, b, d);
        if (!Number.isNaN(s)) {
          if (s !== 0) fl[FLAG_SLOT]! |= MXCSR.PE;
          return d;
        }
      }
    } else {
      const r = Math.fround(d);
      const m = Math.abs(r);
      if (m >= TWO_M125 && m < TWO_127) {
        // binary64 has more than 2·24 + 2 bits, so rounding twice gives the right binary32 result.
        if (r !== d) {
          fl[FLAG_SLOT]! |= MXCSR.PE;
          return r;
        }
        const s = op === FOP.MUL ? 0 : residualSign(op, a, b, d);
        if (!Number.isNaN(s)) {
          if (s !== 0) fl[FLAG_SLOT]! |= MXCSR.PE;
          return r;
        }
      }
    }
  }
  return exactArith(fmt, op, a, b, mx, fl);
}

/**
 * Rounds a finite double (an exact binary64 value) to `fmt` (binary32 for
 * CVTSD2SS/CVTPD2PS), with overflow, underflow and precision flags.
 */
export function narrow(fmt: FloatFormat, x: number, mx: number, fl: Uint32Array): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const rc = (mx & MXCSR.RC) >>> 13;
  if (rc === RC.NEAREST) {
    const r = Math.fround(x);
    const m = Math.abs(r);
    if (m >= TWO_M125 && m < TWO_127) {
      if (r !== x) fl[FLAG_SLOT]! |= MXCSR.PE;
      return r;
    }
  }
  const { m, e } = decompose(x);
  return roundExact(fmt, x < 0, m, e, false, mx, fl);
}

/** Converts an integer (a safe-integer number or a bigint) to `fmt`, rounding per MXCSR.RC (PE when inexact). */
export function fromInteger(fmt: FloatFormat, v: number | bigint, mx: number, fl: Uint32Array): number {
  if (typeof v === "number" && Math.abs(v) < 2 ** fmt.p) return v;
  const b = BigInt(v);
  if (b === 0n) return 0;
  const neg = b < 0n;
  return roundExact(fmt, neg, neg ? -b : b, 0, false, mx, fl);
}

/**
 * Rounds a finite double to an integer: `truncate` for the CVTT* forms, else
 * per MXCSR.RC (round to nearest is ties-to-even). PE when it was not integral.
 */
export function roundToIntegral(x: number, truncate: boolean, mx: number, fl: Uint32Array): number {
  let r: number;
  const rc = truncate ? RC.ZERO : (mx & MXCSR.RC) >>> 13;
  switch (rc) {
    case RC.NEAREST: {
      const f = Math.floor(x);
      const diff = x - f;
      r = diff > 0.5 ? f + 1 : diff < 0.5 ? f : f % 2 === 0 ? f : f + 1;
      break;
    }
    case RC.DOWN:
      r = Math.floor(x);
      break;
    case RC.UP:
      r = Math.ceil(x);
      break;
    default:
      r = Math.trunc(x);
  }
  if (r !== x) fl[FLAG_SLOT]! |= MXCSR.PE;
  return r === 0 ? 0 : r;
}
