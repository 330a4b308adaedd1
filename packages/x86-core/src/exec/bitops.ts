import type { Cpu } from "../cpu";
import { CPUID7_EBX, CPUID81_ECX, cpuidLookup } from "../cpuid";
import { type Handler, type Insn, MANDATORY } from "../decode/insn";
import { VECTOR } from "../faults";
import { ARITH_FLAGS, PARITY, RFLAGS } from "../flags";
import { ACCESS } from "../tlb";
import { writeFlags } from "./flag-results";
import { ea, getReg, readMem, readRm, setReg, writeMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Bit operations: BT BTS BTR BTC (0F A3/AB/B3/BB, 0F BA /4–/7), BSF BSR
 * (0F BC/BD), TZCNT LZCNT POPCNT (F3 0F BC/BD/B8). SDM vol. 2, under each
 * mnemonic.
 *
 * Undefined flags are set as Intel processors do: BT* change CF only; BSF/BSR,
 * TZCNT/LZCNT clear CF/OF/SF/AF apart from what they define.
 */

/** What a BT-family instruction does to the selected bit. */
const BIT = { TEST: 0, SET: 1, RESET: 2, COMPLEMENT: 3 } as const;

const TWO32 = 4294967296;

/** Applies `kind` to bit `bit` of a 32-bit word. */
function modifyBit(kind: number, v: number, bit: number): number {
  const m = 1 << bit;
  if (kind === BIT.SET) return (v | m) >>> 0;
  if (kind === BIT.RESET) return (v & ~m) >>> 0;
  return (v ^ m) >>> 0;
}

/**
 * The byte displacement a register bit offset adds to a memory operand
 * (SDM vol. 2, BT: the offset is a signed integer of the operand size, the
 * operand word is at EA + size · ⌊offset / bits⌋). Raises #GP(0) — #SS(0) for
 * stack-based addresses — when the result is not canonical.
 */
function bitStringAddress(cpu: Cpu, insn: Insn, size: number, off: number, offHi: number): number {
  const lin = ea(cpu, insn);
  let delta: number;
  if (size === 2) delta = (((off << 16) >> 16) >> 4) * 2;
  else if (size === 4) delta = ((off | 0) >> 5) * 4;
  else {
    // ⌊offset / 64⌋ · 8 = the signed 64-bit offset shifted right by 3, low three bits clear.
    const dHi = offHi >> 3;
    if (dHi >= 0x10000 || dHi < -0x10000) faultNonCanonical(cpu, insn);
    delta = dHi * TWO32 + ((((off >>> 3) | (offHi << 29)) & ~7) >>> 0);
  }
  const r = lin + delta;
  if (r < -140737488355328 || r >= 140737488355328) faultNonCanonical(cpu, insn);
  return r;
}

function faultNonCanonical(cpu: Cpu, insn: Insn): never {
  return cpu.fault(insn.base === 4 || insn.base === 5 ? VECTOR.SS : VECTOR.GP, 0);
}

/** BT/BTS/BTR/BTC with the bit offset in a register (`immediate` false) or an imm8. */
function bitTest(kind: number, immediate: boolean): Handler {
  return (cpu, insn) => {
    const size = insn.osize;
    const bits = size * 8;
    let off: number;
    let offHi = 0;
    if (immediate) off = insn.imm & (bits - 1);
    else {
      off = getReg(cpu, insn.reg, size, insn.rex);
      if (size === 8) offHi = cpu.hi;
    }
    const bit = off & (bits - 1);
    let lin = 0;
    let lo: number;
    let hi = 0;
    if (insn.mod === 3) {
      lo = getReg(cpu, insn.rm, size, insn.rex);
      if (size === 8) hi = cpu.hi;
    } else {
      lin = immediate ? ea(cpu, insn) : bitStringAddress(cpu, insn, size, off, offHi);
      if (kind !== BIT.TEST) {
        // Read-modify-write: the write access is checked before anything is read.
        cpu.translate(lin, ACCESS.WRITE);
        if ((lin & 0xfff) + size > 4096) cpu.translate(lin + size - 1, ACCESS.WRITE);
      }
      lo = readMem(cpu, lin, size);
      if (size === 8) hi = cpu.hi;
    }
    const cf = bit < 32 ? (lo >>> bit) & 1 : (hi >>> (bit - 32)) & 1;
    if (kind !== BIT.TEST) {
      if (bit < 32) lo = modifyBit(kind, lo, bit);
      else hi = modifyBit(kind, hi, bit - 32);
      if (insn.mod === 3) setReg(cpu, insn.rm, size, lo, hi, insn.rex);
      else writeMem(cpu, lin, size, lo, hi);
    }
    writeFlags(cpu, RFLAGS.CF, cf);
  };
}

/** Index of the lowest set bit of a non-zero 64-bit value in halves. */
function lowestBit(lo: number, hi: number): number {
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  return 63 - Math.clz32(hi & -hi);
}

/** Index of the highest set bit of a non-zero 64-bit value in halves. */
function highestBit(lo: number, hi: number): number {
  if (hi !== 0) return 63 - Math.clz32(hi);
  return 31 - Math.clz32(lo);
}

/** Reads the r/m source of a scan instruction: low half returned, high half (size 8) in `cpu.hi`, else 0. */
function scanSource(cpu: Cpu, insn: Insn, size: number): number {
  const v = readRm(cpu, insn, size);
  if (size !== 8) cpu.hi = 0;
  return v;
}

/** BSF (0F BC) / BSR (0F BD): with a zero source ZF = 1 and the destination is left unchanged. */
function bitScan(reverse: boolean): Handler {
  return (cpu, insn) => {
    const size = insn.osize;
    const lo = scanSource(cpu, insn, size);
    const hi = cpu.hi;
    if ((lo | hi) === 0) {
      writeFlags(cpu, ARITH_FLAGS, RFLAGS.ZF | RFLAGS.PF);
      return;
    }
    const idx = reverse ? highestBit(lo, hi) : lowestBit(lo, hi);
    setReg(cpu, insn.reg, size, idx, 0, insn.rex);
    writeFlags(cpu, ARITH_FLAGS, PARITY[idx]! ? RFLAGS.PF : 0);
  };
}

/**
 * TZCNT (F3 0F BC) / LZCNT (F3 0F BD): CF = source is zero, ZF = result is zero.
 * On a processor that does not advertise them (CPUID.(7,0):EBX.BMI1,
 * CPUID.80000001h:ECX.ABM) the F3 prefix is ignored and they run as BSF / BSR,
 * as on real processors without those features.
 */
function countZeros(leading: boolean): Handler {
  const fallback = bitScan(leading);
  return (cpu, insn) => {
    const supported = leading
      ? (cpuidLookup(cpu.cpuid, 0x80000001, 0).ecx & CPUID81_ECX.ABM) !== 0
      : (cpuidLookup(cpu.cpuid, 7, 0).ebx & CPUID7_EBX.BMI1) !== 0;
    if (!supported) return fallback(cpu, insn);
    const size = insn.osize;
    const bits = size * 8;
    const lo = scanSource(cpu, insn, size);
    const hi = cpu.hi;
    let n: number;
    let f = 0;
    if ((lo | hi) === 0) {
      n = bits;
      f = RFLAGS.CF;
    } else n = leading ? bits - 1 - highestBit(lo, hi) : lowestBit(lo, hi);
    if (n === 0) f |= RFLAGS.ZF;
    setReg(cpu, insn.reg, size, n, 0, insn.rex);
    writeFlags(cpu, ARITH_FLAGS, f);
  };
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** POPCNT (F3 0F B8): ZF = source is zero, every other arithmetic flag cleared. */
function popcnt(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const lo = scanSource(cpu, insn, size);
  const hi = cpu.hi;
  const n = popcount32(lo) + popcount32(hi);
  setReg(cpu, insn.reg, size, n, 0, insn.rex);
  writeFlags(cpu, ARITH_FLAGS, n === 0 ? RFLAGS.ZF : 0);
}

/** Registers the family. */
export function registerBitops(t: OpcodeTable): void {
  t.op(0x1a3, bitTest(BIT.TEST, false));
  t.op(0x1ab, bitTest(BIT.SET, false), { lockable: true });
  t.op(0x1b3, bitTest(BIT.RESET, false), { lockable: true });
  t.op(0x1bb, bitTest(BIT.COMPLEMENT, false), { lockable: true });
  t.group(0x1ba, 4, bitTest(BIT.TEST, true));
  t.group(0x1ba, 5, bitTest(BIT.SET, true), { lockable: true });
  t.group(0x1ba, 6, bitTest(BIT.RESET, true), { lockable: true });
  t.group(0x1ba, 7, bitTest(BIT.COMPLEMENT, true), { lockable: true });
  t.op(0x1bc, bitScan(false));
  t.op(0x1bd, bitScan(true));
  t.sse(0x1bc, MANDATORY.PF3, countZeros(false));
  t.sse(0x1bd, MANDATORY.PF3, countZeros(true));
  t.sse(0x1b8, MANDATORY.PF3, popcnt);
}
