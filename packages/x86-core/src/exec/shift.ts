import type { Cpu } from "../cpu";
import type { Handler, Insn } from "../decode/insn";
import { ARITH_FLAGS, RFLAGS } from "../flags";
import { szpFlags, writeFlags } from "./flag-results";
import { getReg, readMem, rmwAddress, setReg, writeMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Shifts and rotates (SDM vol. 2, "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR",
 * "SHLD", "SHRD"): group 2 (C0 C1 D0–D3) and 0F A4/A5/AC/AD.
 *
 * The count is masked to 5 bits (6 with a 64-bit operand). A masked count of 0
 * changes no flag, but a 32-bit register destination is still written (its
 * high half cleared). Flags the SDM leaves undefined are set the way Intel
 * processors set them where that costs nothing: OF as for a 1-bit shift, AF
 * clear.
 */

/** ModRM.reg of the shift group. /6 is undocumented; processors execute it as SHL (SAL). */
export const SHIFT = { ROL: 0, ROR: 1, RCL: 2, RCR: 3, SHL: 4, SHR: 5, SAL: 6, SAR: 7 } as const;

const COUNT_ONE = 0;
const COUNT_CL = 1;
const COUNT_IMM = 2;
const CF = RFLAGS.CF;
const OF = RFLAGS.OF;
const CF_OF = CF | OF;

function countOf(cpu: Cpu, insn: Insn, source: number): number {
  if (source === COUNT_ONE) return 1;
  if (source === COUNT_CL) return cpu.gpr[2]! & 0xff;
  return insn.imm & 0xff;
}

/** 64-bit left shift of halves by `c` (0–63): returns the low half, high half in `cpu.hi`. */
function shl64(cpu: Cpu, lo: number, hi: number, c: number): number {
  if (c === 0) {
    cpu.hi = hi >>> 0;
    return lo >>> 0;
  }
  if (c < 32) {
    cpu.hi = ((hi << c) | (lo >>> (32 - c))) >>> 0;
    return (lo << c) >>> 0;
  }
  cpu.hi = (lo << (c - 32)) >>> 0;
  return 0;
}

/** 64-bit logical right shift of halves by `c` (0–63). */
function shr64(cpu: Cpu, lo: number, hi: number, c: number): number {
  if (c === 0) {
    cpu.hi = hi >>> 0;
    return lo >>> 0;
  }
  if (c < 32) {
    cpu.hi = hi >>> c;
    return ((lo >>> c) | (hi << (32 - c))) >>> 0;
  }
  cpu.hi = 0;
  return hi >>> (c - 32);
}

/**
 * ROL/ROR/RCL/RCR/SHL/SHR/SAR of a value of 1, 2 or 4 bytes by a masked count
 * `mc` (1–31); writes the flags and returns the result.
 */
function shiftSmall(cpu: Cpu, kind: number, size: number, a: number, mc: number): number {
  const bits = size * 8;
  const m = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const top = bits - 1;
  let r: number;
  let cf: number;
  switch (kind) {
    case SHIFT.ROL: {
      const rot = mc % bits;
      r = rot === 0 ? a : (((a << rot) | (a >>> (bits - rot))) & m) >>> 0;
      cf = r & 1;
      writeFlags(cpu, CF_OF, cf | ((((r >>> top) ^ cf) & 1) << 11));
      return r;
    }
    case SHIFT.ROR: {
      const rot = mc % bits;
      r = rot === 0 ? a : (((a >>> rot) | (a << (bits - rot))) & m) >>> 0;
      cf = (r >>> top) & 1;
      writeFlags(cpu, CF_OF, cf | (((cf ^ (r >>> (top - 1))) & 1) << 11));
      return r;
    }
    case SHIFT.RCL:
    case SHIFT.RCR: {
      // Rotation through CF: a (bits + 1)-bit rotation, counts taken modulo 9 / 17 for 8 / 16 bits.
      const t = bits === 8 ? mc % 9 : bits === 16 ? mc % 17 : mc;
      const cin = cpu.cf();
      // OF is defined for a count of 1 only: RCL from the result, RCR from the operand before rotating.
      let of: number;
      if (t === 0) {
        r = a;
        cf = cin;
      } else if (bits < 32) {
        const n = bits + 1;
        const nm = (1 << n) - 1;
        const v = (cin << bits) | a;
        const w = kind === SHIFT.RCL ? ((v << t) | (v >>> (n - t))) & nm : ((v >>> t) | (v << (n - t))) & nm;
        r = w & m;
        cf = w >>> bits;
      } else if (kind === SHIFT.RCL) {
        if (t === 1) r = ((a << 1) | cin) >>> 0;
        else r = ((a << t) | (cin << (t - 1)) | (a >>> (33 - t))) >>> 0;
        cf = (a >>> (32 - t)) & 1;
      } else {
        if (t === 1) r = ((a >>> 1) | (cin << 31)) >>> 0;
        else r = ((a >>> t) | (cin << (32 - t)) | (a << (33 - t))) >>> 0;
        cf = (a >>> (t - 1)) & 1;
      }
      if (kind === SHIFT.RCL) of = ((r >>> top) ^ cf) & 1;
      else of = ((a >>> top) ^ cin) & 1;
      writeFlags(cpu, CF_OF, cf | (of << 11));
      return r;
    }
    case SHIFT.SHR: {
      r = a >>> mc;
      cf = mc <= bits ? (a >>> (mc - 1)) & 1 : 0;
      writeFlags(cpu, ARITH_FLAGS, szpFlags(size, r, 0) | cf | (((a >>> top) & 1) << 11));
      return r;
    }
    case SHIFT.SAR: {
      const s = bits === 32 ? a | 0 : (a << (32 - bits)) >> (32 - bits);
      r = ((s >> mc) & m) >>> 0;
      cf = (s >> (mc - 1)) & 1;
      writeFlags(cpu, ARITH_FLAGS, szpFlags(size, r, 0) | cf);
      return r;
    }
    default: {
      // SHL, SAL and the /6 alias.
      r = ((a << mc) & m) >>> 0;
      cf = mc <= bits ? (a >>> (bits - mc)) & 1 : 0;
      const of = ((a >>> top) ^ (a >>> (top - 1))) & 1;
      writeFlags(cpu, ARITH_FLAGS, szpFlags(size, r, 0) | cf | (of << 11));
      return r;
    }
  }
}

/** The same for a 64-bit value in halves; `mc` is 1–63. High half of the result in `cpu.hi`. */
function shift64(cpu: Cpu, kind: number, lo: number, hi: number, mc: number): number {
  let rLo: number;
  let rHi: number;
  let cf: number;
  switch (kind) {
    case SHIFT.ROL:
    case SHIFT.ROR: {
      let rot = mc;
      let l = lo;
      let h = hi;
      if (rot >= 32) {
        l = hi;
        h = lo;
        rot -= 32;
      }
      if (rot === 0) {
        rLo = l >>> 0;
        rHi = h >>> 0;
      } else if (kind === SHIFT.ROL) {
        rHi = ((h << rot) | (l >>> (32 - rot))) >>> 0;
        rLo = ((l << rot) | (h >>> (32 - rot))) >>> 0;
      } else {
        rLo = ((l >>> rot) | (h << (32 - rot))) >>> 0;
        rHi = ((h >>> rot) | (l << (32 - rot))) >>> 0;
      }
      if (kind === SHIFT.ROL) {
        cf = rLo & 1;
        writeFlags(cpu, CF_OF, cf | (((rHi >>> 31) ^ cf) << 11));
      } else {
        cf = rHi >>> 31;
        writeFlags(cpu, CF_OF, cf | (((cf ^ (rHi >>> 30)) & 1) << 11));
      }
      break;
    }
    case SHIFT.RCL:
    case SHIFT.RCR: {
      const cin = cpu.cf();
      let l = lo >>> 0;
      let h = hi >>> 0;
      cf = cin;
      // A 65-bit rotation, one bit at a time (rare enough not to need a closed form).
      for (let k = 0; k < mc; k++) {
        if (kind === SHIFT.RCL) {
          const out = h >>> 31;
          h = ((h << 1) | (l >>> 31)) >>> 0;
          l = ((l << 1) | cf) >>> 0;
          cf = out;
        } else {
          const out = l & 1;
          l = ((l >>> 1) | (h << 31)) >>> 0;
          h = ((h >>> 1) | (cf << 31)) >>> 0;
          cf = out;
        }
      }
      rLo = l;
      rHi = h;
      const of = kind === SHIFT.RCL ? (rHi >>> 31) ^ cf : ((hi >>> 31) ^ cin) & 1;
      writeFlags(cpu, CF_OF, cf | (of << 11));
      break;
    }
    case SHIFT.SHR:
      rLo = shr64(cpu, lo, hi, mc);
      rHi = cpu.hi;
      cf = mc <= 32 ? (lo >>> (mc - 1)) & 1 : (hi >>> (mc - 33)) & 1;
      writeFlags(cpu, ARITH_FLAGS, szpFlags(8, rLo, rHi) | cf | ((hi >>> 31) << 11));
      break;
    case SHIFT.SAR:
      if (mc < 32) {
        rLo = ((lo >>> mc) | (hi << (32 - mc))) >>> 0;
        rHi = (hi >> mc) >>> 0;
      } else {
        rLo = (hi >> (mc - 32)) >>> 0;
        rHi = (hi >> 31) >>> 0;
      }
      cf = mc <= 32 ? (lo >>> (mc - 1)) & 1 : (hi >> (mc - 33)) & 1;
      writeFlags(cpu, ARITH_FLAGS, szpFlags(8, rLo, rHi) | cf);
      break;
    default: {
      rLo = shl64(cpu, lo, hi, mc);
      rHi = cpu.hi;
      cf = mc <= 32 ? (hi >>> (32 - mc)) & 1 : (lo >>> (64 - mc)) & 1;
      const of = ((hi >>> 31) ^ (hi >>> 30)) & 1;
      writeFlags(cpu, ARITH_FLAGS, szpFlags(8, rLo, rHi) | cf | (of << 11));
    }
  }
  cpu.hi = rHi;
  return rLo;
}

/** Group 2: ROL … SAR r/m by 1, CL or imm8. */
function shiftGroup(kind: number, source: number): Handler {
  return (cpu, insn) => {
    const size = insn.osize;
    const mc = countOf(cpu, insn, source) & (size === 8 ? 63 : 31);
    if (insn.mod === 3) {
      const a = getReg(cpu, insn.rm, size, insn.rex);
      const aHi = size === 8 ? cpu.hi : 0;
      if (mc === 0) {
        if (size === 4) cpu.gpr[2 * insn.rm + 1] = 0; // the 32-bit write still happens
        return;
      }
      const r = size === 8 ? shift64(cpu, kind, a, aHi, mc) : shiftSmall(cpu, kind, size, a, mc);
      setReg(cpu, insn.rm, size, r, cpu.hi, insn.rex);
    } else {
      const lin = rmwAddress(cpu, insn, size);
      const a = readMem(cpu, lin, size);
      if (mc === 0) return;
      const r = size === 8 ? shift64(cpu, kind, a, cpu.hi, mc) : shiftSmall(cpu, kind, size, a, mc);
      writeMem(cpu, lin, size, r, cpu.hi);
    }
  };
}

/**
 * SHLD (left) / SHRD: shifts `a` by `c` (1–31, or 1–63 for 64 bits), filling
 * from `b`; writes the flags, returns the result (high half in `cpu.hi`).
 * With a 16-bit operand and a count above 16 the SDM leaves result and flags
 * undefined; this computes what Intel processors do (the operand is shifted as
 * the 48-bit value a:b:a).
 */
function doubleShift(cpu: Cpu, left: boolean, size: number, a: number, aHi: number, b: number, bHi: number, c: number) {
  let r: number;
  let rHi = 0;
  let cf: number;
  let signChange: number;
  if (size === 4) {
    if (left) {
      r = ((a << c) | (b >>> (32 - c))) >>> 0;
      cf = (a >>> (32 - c)) & 1;
    } else {
      r = ((a >>> c) | (b << (32 - c))) >>> 0;
      cf = (a >>> (c - 1)) & 1;
    }
    signChange = (r ^ a) >>> 31;
  } else if (size === 2) {
    if (c <= 16) {
      if (left) {
        const v = ((a << 16) | b) >>> 0;
        r = ((v << c) >>> 16) & 0xffff;
        cf = (v >>> (32 - c)) & 1;
      } else {
        const v = ((b << 16) | a) >>> 0;
        r = (v >>> c) & 0xffff;
        cf = (v >>> (c - 1)) & 1;
      }
    } else {
      const w = a * 4294967296 + (((b << 16) | a) >>> 0);
      if (left) {
        r = Math.floor(w / 2 ** (32 - c)) & 0xffff;
        cf = Math.floor(w / 2 ** (48 - c)) & 1;
      } else {
        r = Math.floor(w / 2 ** c) & 0xffff;
        cf = Math.floor(w / 2 ** (c - 1)) & 1;
      }
    }
    signChange = ((r ^ a) >>> 15) & 1;
  } else {
    if (left) {
      const lo1 = shl64(cpu, a, aHi, c);
      const hi1 = cpu.hi;
      const lo2 = shr64(cpu, b, bHi, 64 - c);
      r = (lo1 | lo2) >>> 0;
      rHi = (hi1 | cpu.hi) >>> 0;
      cf = c <= 32 ? (aHi >>> (32 - c)) & 1 : (a >>> (64 - c)) & 1;
    } else {
      const lo1 = shr64(cpu, a, aHi, c);
      const hi1 = cpu.hi;
      const lo2 = shl64(cpu, b, bHi, 64 - c);
      r = (lo1 | lo2) >>> 0;
      rHi = (hi1 | cpu.hi) >>> 0;
      cf = c <= 32 ? (a >>> (c - 1)) & 1 : (aHi >>> (c - 33)) & 1;
    }
    signChange = (rHi ^ aHi) >>> 31;
  }
  writeFlags(cpu, ARITH_FLAGS, szpFlags(size, r, rHi) | cf | (signChange << 11));
  cpu.hi = rHi;
  return r;
}

/** 0F A4/A5 (SHLD) and 0F AC/AD (SHRD): r/m, reg, imm8 or CL. */
function shiftDouble(left: boolean, source: number): Handler {
  return (cpu, insn) => {
    const size = insn.osize;
    const c = countOf(cpu, insn, source) & (size === 8 ? 63 : 31);
    const b = getReg(cpu, insn.reg, size, insn.rex);
    const bHi = size === 8 ? cpu.hi : 0;
    if (insn.mod === 3) {
      const a = getReg(cpu, insn.rm, size, insn.rex);
      const aHi = size === 8 ? cpu.hi : 0;
      if (c === 0) {
        if (size === 4) cpu.gpr[2 * insn.rm + 1] = 0;
        return;
      }
      const r = doubleShift(cpu, left, size, a, aHi, b, bHi, c);
      setReg(cpu, insn.rm, size, r, cpu.hi, insn.rex);
    } else {
      const lin = rmwAddress(cpu, insn, size);
      const a = readMem(cpu, lin, size);
      const aHi = size === 8 ? cpu.hi : 0;
      if (c === 0) return;
      const r = doubleShift(cpu, left, size, a, aHi, b, bHi, c);
      writeMem(cpu, lin, size, r, cpu.hi);
    }
  };
}

/** Registers the family. */
export function registerShift(t: OpcodeTable): void {
  for (let kind = 0; kind < 8; kind++) {
    t.group(0xc0, kind, shiftGroup(kind, COUNT_IMM));
    t.group(0xc1, kind, shiftGroup(kind, COUNT_IMM));
    t.group(0xd0, kind, shiftGroup(kind, COUNT_ONE));
    t.group(0xd1, kind, shiftGroup(kind, COUNT_ONE));
    t.group(0xd2, kind, shiftGroup(kind, COUNT_CL));
    t.group(0xd3, kind, shiftGroup(kind, COUNT_CL));
  }
  t.op(0x1a4, shiftDouble(true, COUNT_IMM));
  t.op(0x1a5, shiftDouble(true, COUNT_CL));
  t.op(0x1ac, shiftDouble(false, COUNT_IMM));
  t.op(0x1ad, shiftDouble(false, COUNT_CL));
}
