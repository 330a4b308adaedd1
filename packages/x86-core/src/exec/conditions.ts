import type { Cpu } from "../cpu";
import { LAZY, type LazyFlags, RFLAGS } from "../flags";

/**
 * Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc):
 * O NO B AE E NE BE A S NS P NP L GE LE G.
 */
export function condition(cpu: Cpu, cc: number): boolean {
  const lazy = cpu.lazy;
  if (lazy.op !== LAZY.NONE) {
    const r = lazyCondition(lazy, cc >> 1);
    if (r !== -1) return (cc & 1) === 0 ? r === 1 : r === 0;
  }
  const f = cpu.getRflags();
  let r: boolean;
  switch (cc >> 1) {
    case 0:
      r = (f & RFLAGS.OF) !== 0;
      break;
    case 1:
      r = (f & RFLAGS.CF) !== 0;
      break;
    case 2:
      r = (f & RFLAGS.ZF) !== 0;
      break;
    case 3:
      r = (f & (RFLAGS.CF | RFLAGS.ZF)) !== 0;
      break;
    case 4:
      r = (f & RFLAGS.SF) !== 0;
      break;
    case 5:
      r = (f & RFLAGS.PF) !== 0;
      break;
    case 6:
      r = ((f & RFLAGS.SF) !== 0) !== ((f & RFLAGS.OF) !== 0);
      break;
    default:
      r = (f & RFLAGS.ZF) !== 0 || ((f & RFLAGS.SF) !== 0) !== ((f & RFLAGS.OF) !== 0);
  }
  return (cc & 1) === 0 ? r : !r;
}

/**
 * The common conditions straight from the lazy operands, without computing
 * (or materializing) all six flags: ZF and SF from the result of any lazy
 * operation; CF, CF|ZF, SF≠OF and ZF|(SF≠OF) after SUB/CMP (unsigned and
 * signed comparisons of the operands, SDM vol. 1, B.1) and after logic
 * operations (CF = OF = 0). Returns 1 or 0, or -1 to take the general path.
 */
function lazyCondition(lazy: LazyFlags, pair: number): number {
  const op = lazy.op;
  if (op < LAZY.ADD || op > LAZY.DEC) return -1; // an operation this shortcut does not know
  const size = lazy.size;
  switch (pair) {
    case 2: // E: ZF
      return isZero(lazy, size) ? 1 : 0;
    case 4: // S: SF
      return isNegative(lazy, size) ? 1 : 0;
    case 1: // B: CF
      if (op === LAZY.LOGIC) return 0;
      if (op === LAZY.SUB) return compare(lazy, size, false) < 0 ? 1 : 0;
      return -1;
    case 3: // BE: CF | ZF
      if (op === LAZY.LOGIC) return isZero(lazy, size) ? 1 : 0;
      if (op === LAZY.SUB) return compare(lazy, size, false) <= 0 ? 1 : 0;
      return -1;
    case 6: // L: SF ≠ OF
      if (op === LAZY.LOGIC) return isNegative(lazy, size) ? 1 : 0;
      if (op === LAZY.SUB) return compare(lazy, size, true) < 0 ? 1 : 0;
      return -1;
    case 7: // LE: ZF | (SF ≠ OF)
      if (op === LAZY.LOGIC) return isZero(lazy, size) || isNegative(lazy, size) ? 1 : 0;
      if (op === LAZY.SUB) return compare(lazy, size, true) <= 0 ? 1 : 0;
      return -1;
    default:
      return -1;
  }
}

function isZero(lazy: LazyFlags, size: number): boolean {
  if (size === 8) return (lazy.r | lazy.rHi) === 0;
  if (size === 4) return (lazy.r | 0) === 0;
  return (lazy.r & (size === 1 ? 0xff : 0xffff)) === 0;
}

function isNegative(lazy: LazyFlags, size: number): boolean {
  if (size === 8) return (lazy.rHi & 0x80000000) !== 0;
  return ((lazy.r >>> (size * 8 - 1)) & 1) !== 0;
}

/** Compares the SUB operands a and b as `size`-byte integers: negative, zero or positive. */
function compare(lazy: LazyFlags, size: number, signed: boolean): number {
  let a: number;
  let b: number;
  if (size === 8) {
    const aHi = signed ? lazy.aHi | 0 : lazy.aHi >>> 0;
    const bHi = signed ? lazy.bHi | 0 : lazy.bHi >>> 0;
    if (aHi !== bHi) return aHi < bHi ? -1 : 1;
    a = lazy.a >>> 0;
    b = lazy.b >>> 0;
  } else if (size === 4) {
    a = signed ? lazy.a | 0 : lazy.a >>> 0;
    b = signed ? lazy.b | 0 : lazy.b >>> 0;
  } else {
    const shift = 32 - size * 8;
    a = signed ? (lazy.a << shift) >> shift : (lazy.a << shift) >>> shift;
    b = signed ? (lazy.b << shift) >> shift : (lazy.b << shift) >>> shift;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}
