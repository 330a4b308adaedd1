import type { Cpu } from "../cpu";
import type { Handler, Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { ARITH_FLAGS, PARITY, RFLAGS } from "../flags";
import { writeFlags } from "./flag-results";
import { getReg, readRm, setReg } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Multiply and divide (SDM vol. 2, "MUL", "IMUL", "DIV", "IDIV"): F6/F7 /4–/7,
 * 0F AF, 69, 6B. 8-, 16- and 32-bit forms use plain numbers; 64-bit multiply
 * uses 32-bit halves, 64-bit divide falls back to BigInt only when the
 * dividend or divisor does not fit in 53 bits.
 *
 * Flags: MUL/IMUL set CF = OF = "the result does not fit"; SF, ZF, AF and PF
 * are undefined and set as Intel processors do (SF and PF from the low half,
 * ZF and AF clear). DIV/IDIV leave every flag unchanged (all undefined).
 */

const TWO32 = 4294967296;
const CF_OF = RFLAGS.CF | RFLAGS.OF;

/** Flags after a multiply: CF = OF = `overflow`, SF/PF from the low result (`top` is its high 32 bits). */
function mulFlags(cpu: Cpu, overflow: boolean, low: number, signBit: number): void {
  let f = overflow ? CF_OF : 0;
  if (signBit) f |= RFLAGS.SF;
  if (PARITY[low & 0xff]) f |= RFLAGS.PF;
  writeFlags(cpu, ARITH_FLAGS, f);
}

/** Exact unsigned 32×32 product: returns the high half; the low half is `Math.imul(a, b) >>> 0`. */
function mulHiU32(a: number, b: number, lo: number): number {
  // The double product is within 2^12 of the exact one, so rounding recovers the high half.
  return Math.round((a * b - lo) / TWO32);
}

/**
 * 64×64 → 128-bit product of halves into `out` (four 32-bit words, least
 * significant first); `signed` treats both operands as two's complement.
 */
function mul64(aLo: number, aHi: number, bLo: number, bHi: number, signed: boolean, out: Uint32Array): void {
  const l0 = Math.imul(aLo, bLo) >>> 0;
  const h0 = mulHiU32(aLo, bLo, l0);
  const l1 = Math.imul(aLo, bHi) >>> 0;
  const h1 = mulHiU32(aLo, bHi, l1);
  const l2 = Math.imul(aHi, bLo) >>> 0;
  const h2 = mulHiU32(aHi, bLo, l2);
  const l3 = Math.imul(aHi, bHi) >>> 0;
  const h3 = mulHiU32(aHi, bHi, l3);
  const s1 = h0 + l1 + l2;
  const s2 = h1 + h2 + l3 + Math.floor(s1 / TWO32);
  let w2 = s2 >>> 0;
  let w3 = (h3 + Math.floor(s2 / TWO32)) >>> 0;
  if (signed) {
    // (a − 2^64·sa)(b − 2^64·sb) = ab − 2^64(sa·b + sb·a) mod 2^128.
    if (aHi & 0x80000000) {
      const d = w2 - bLo;
      w2 = d >>> 0;
      w3 = (w3 - bHi - (d < 0 ? 1 : 0)) >>> 0;
    }
    if (bHi & 0x80000000) {
      const d = w2 - aLo;
      w2 = d >>> 0;
      w3 = (w3 - aHi - (d < 0 ? 1 : 0)) >>> 0;
    }
  }
  out[0] = l0;
  out[1] = s1 >>> 0;
  out[2] = w2;
  out[3] = w3;
}

function sext(v: number, size: number): number {
  return size === 1 ? (v << 24) >> 24 : size === 2 ? (v << 16) >> 16 : v | 0;
}

/** F6/F7 /4 (MUL) and /5 (IMUL): rDX:rAX (AX for bytes) = rAX · r/m. */
function mulAcc(signed: boolean, wide: Uint32Array): Handler {
  return (cpu, insn) => {
    const size = insn.osize;
    const g = cpu.gpr;
    const b = readRm(cpu, insn, size);
    if (size === 1) {
      const al = g[0]! & 0xff;
      const p = signed ? sext(al, 1) * sext(b, 1) : al * b;
      g[0] = (g[0]! & 0xffff0000) | (p & 0xffff);
      mulFlags(cpu, signed ? p !== sext(p & 0xff, 1) : p > 0xff, p, p & 0x80);
    } else if (size === 2) {
      const ax = g[0]! & 0xffff;
      const p = signed ? sext(ax, 2) * sext(b, 2) : ax * b;
      g[0] = (g[0]! & 0xffff0000) | (p & 0xffff);
      g[4] = (g[4]! & 0xffff0000) | ((p >>> 16) & 0xffff);
      mulFlags(cpu, signed ? p !== sext(p & 0xffff, 2) : p > 0xffff, p, p & 0x8000);
    } else if (size === 4) {
      const a = g[0]!;
      const lo = Math.imul(a, b) >>> 0;
      const hi = signed ? Math.round(((a | 0) * (b | 0) - lo) / TWO32) : mulHiU32(a, b, lo);
      g[0] = lo;
      g[1] = 0;
      g[4] = hi >>> 0;
      g[5] = 0;
      mulFlags(cpu, signed ? hi !== (lo | 0) >> 31 : hi !== 0, lo, lo >>> 31);
    } else {
      mul64(g[0]!, g[1]!, b, cpu.hi, signed, wide);
      g[0] = wide[0]!;
      g[1] = wide[1]!;
      g[4] = wide[2]!;
      g[5] = wide[3]!;
      const ext = signed ? (wide[1]! | 0) >> 31 : 0;
      mulFlags(cpu, (wide[2]! | 0) !== ext || (wide[3]! | 0) !== ext, wide[0]!, wide[1]! >>> 31);
    }
  };
}

/** IMUL reg, r/m (0F AF) and IMUL reg, r/m, imm (69, 6B): truncated signed product. */
function imulTrunc(source: "reg" | "imm", wide: Uint32Array): Handler {
  return (cpu: Cpu, insn: Insn) => {
    const size = insn.osize;
    const a = readRm(cpu, insn, size);
    const aHi = size === 8 ? cpu.hi : 0;
    let b: number;
    let bHi: number;
    if (source === "imm") {
      b = insn.imm;
      bHi = insn.imm >> 31;
    } else {
      b = getReg(cpu, insn.reg, size, insn.rex);
      bHi = size === 8 ? cpu.hi : 0;
    }
    if (size === 2) {
      const p = sext(a, 2) * sext(b, 2);
      setReg(cpu, insn.reg, 2, p & 0xffff, 0, insn.rex);
      mulFlags(cpu, p !== sext(p & 0xffff, 2), p, p & 0x8000);
    } else if (size === 4) {
      const lo = Math.imul(a, b) >>> 0;
      const hi = Math.round(((a | 0) * (b | 0) - lo) / TWO32);
      setReg(cpu, insn.reg, 4, lo, 0, insn.rex);
      mulFlags(cpu, hi !== (lo | 0) >> 31, lo, lo >>> 31);
    } else {
      mul64(a, aHi, b >>> 0, bHi >>> 0, true, wide);
      const ext = (wide[1]! | 0) >> 31;
      setReg(cpu, insn.reg, 8, wide[0]!, wide[1]!, insn.rex);
      mulFlags(cpu, (wide[2]! | 0) !== ext || (wide[3]! | 0) !== ext, wide[0]!, wide[1]! >>> 31);
    }
  };
}

/**
 * Unsigned (hi·2^32 + lo) / d for hi < d < 2^32, by two 16-bit long-division
 * steps (every intermediate stays below 2^48, so doubles are exact). Returns
 * the quotient; the remainder is left in `cpu.hi`.
 */
function divU64by32(cpu: Cpu, hi: number, lo: number, d: number): number {
  const n1 = hi * 65536 + (lo >>> 16);
  const r1 = n1 % d;
  const n2 = r1 * 65536 + (lo & 0xffff);
  const r2 = n2 % d;
  cpu.hi = r2;
  return ((n1 - r1) / d) * 65536 + (n2 - r2) / d;
}

/** #DE: division by zero or a quotient too large for the destination (SDM vol. 2, DIV). */
function divideError(cpu: Cpu): never {
  return cpu.fault(VECTOR.DE);
}

/** F6/F7 /6 (DIV) and /7 (IDIV). */
function divAcc(signed: boolean): Handler {
  return (cpu, insn) => {
    const size = insn.osize;
    const g = cpu.gpr;
    const d = readRm(cpu, insn, size);
    const dHi = size === 8 ? cpu.hi : 0;
    if (size === 8 ? (d | dHi) === 0 : d === 0) divideError(cpu);
    if (size === 1) {
      const ax = g[0]! & 0xffff;
      let q: number;
      let r: number;
      if (signed) {
        const n = sext(ax, 2);
        const dv = sext(d, 1);
        r = n % dv;
        q = (n - r) / dv;
        if (q < -128 || q > 127) divideError(cpu);
      } else {
        r = ax % d;
        q = (ax - r) / d;
        if (q > 0xff) divideError(cpu);
      }
      g[0] = (g[0]! & 0xffff0000) | ((r & 0xff) << 8) | (q & 0xff);
    } else if (size === 2) {
      const n = ((g[4]! & 0xffff) << 16) | (g[0]! & 0xffff);
      let q: number;
      let r: number;
      if (signed) {
        const dv = sext(d, 2);
        r = (n | 0) % dv;
        q = ((n | 0) - r) / dv;
        if (q < -32768 || q > 32767) divideError(cpu);
      } else {
        const un = n >>> 0;
        r = un % d;
        q = (un - r) / d;
        if (q > 0xffff) divideError(cpu);
      }
      g[0] = (g[0]! & 0xffff0000) | (q & 0xffff);
      g[4] = (g[4]! & 0xffff0000) | (r & 0xffff);
    } else if (size === 4) {
      let hi = g[4]!;
      let lo = g[0]!;
      let q: number;
      let r: number;
      if (signed) {
        const negN = hi >>> 31 === 1;
        const negD = d >>> 31 === 1;
        if (negN) {
          // Magnitude of the 64-bit dividend.
          lo = -lo >>> 0;
          hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
        }
        const ad = negD ? -d >>> 0 : d;
        if (hi >= ad) divideError(cpu);
        const mq = divU64by32(cpu, hi, lo, ad);
        const mr = cpu.hi;
        const negQ = negN !== negD;
        if (mq > (negQ ? 0x80000000 : 0x7fffffff)) divideError(cpu);
        q = negQ ? -mq : mq;
        r = negN ? -mr : mr;
      } else {
        if (hi >= d) divideError(cpu);
        q = divU64by32(cpu, hi, lo, d);
        r = cpu.hi;
      }
      g[0] = q >>> 0;
      g[1] = 0;
      g[4] = r >>> 0;
      g[5] = 0;
    } else {
      div128(cpu, signed, d, dHi);
    }
  };
}

const TWO53 = 2 ** 53;

/** RDX:RAX / r/m64: numbers when everything fits in 53 bits, BigInt otherwise. */
function div128(cpu: Cpu, signed: boolean, d: number, dHi: number): void {
  const g = cpu.gpr;
  const lo = g[0]!;
  const hi = g[1]!;
  const xlo = g[4]!;
  const xhi = g[5]!;
  const dn = signed ? (dHi | 0) * TWO32 + d : dHi * TWO32 + d;
  const n = signed ? (hi | 0) * TWO32 + lo : hi * TWO32 + lo;
  const ext = signed ? (hi | 0) >> 31 : 0;
  if ((xlo | 0) === ext && (xhi | 0) === ext && Math.abs(n) < TWO53 && Math.abs(dn) < TWO53) {
    // |quotient| ≤ |dividend| < 2^53: no overflow possible, and % is exact on doubles.
    const r = n % dn;
    const q = (n - r) / dn;
    g[0] = q >>> 0;
    g[1] = Math.floor(q / TWO32) >>> 0;
    g[4] = r >>> 0;
    g[5] = Math.floor(r / TWO32) >>> 0;
    return;
  }
  const u = (BigInt(xhi) << 96n) | (BigInt(xlo) << 64n) | (BigInt(hi) << 32n) | BigInt(lo);
  const ud = (BigInt(dHi) << 32n) | BigInt(d);
  const nn = signed ? BigInt.asIntN(128, u) : u;
  const dd = signed ? BigInt.asIntN(64, ud) : ud;
  const q = nn / dd;
  const r = nn % dd;
  if (signed ? q < -(1n << 63n) || q >= 1n << 63n : q >= 1n << 64n) divideError(cpu);
  const uq = BigInt.asUintN(64, q);
  const ur = BigInt.asUintN(64, r);
  g[0] = Number(uq & 0xffffffffn);
  g[1] = Number(uq >> 32n);
  g[4] = Number(ur & 0xffffffffn);
  g[5] = Number(ur >> 32n);
}

/** Registers the family. */
export function registerMuldiv(t: OpcodeTable): void {
  // Scratch for 128-bit products; used within one instruction only.
  const wide = new Uint32Array(4);
  for (const op of [0xf6, 0xf7]) {
    t.group(op, 4, mulAcc(false, wide));
    t.group(op, 5, mulAcc(true, wide));
    t.group(op, 6, divAcc(false));
    t.group(op, 7, divAcc(true));
  }
  t.op(0x1af, imulTrunc("reg", wide));
  t.op(0x69, imulTrunc("imm", wide));
  t.op(0x6b, imulTrunc("imm", wide));
}
