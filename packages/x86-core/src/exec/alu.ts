import type { Cpu } from "../cpu";
import type { Insn } from "../decode/insn";
import { LAZY } from "../flags";
import { ea as eaOf, getReg, immediate, maskOf, readMem, readRm, rmwAddress, setReg, writeMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Integer arithmetic and logic: ADD OR ADC SBB AND SUB XOR CMP (00–3F, 80–83),
 * TEST (84/85, A8/A9, F6/F7 /0 /1), INC DEC (FE/FF /0 /1), NOT NEG (F6/F7 /2 /3).
 * Flags are left lazy (flags.ts).
 */

/** ALU operation numbers in the order of the 00–3F blocks and group 1's ModRM.reg. */
export const ALU = { ADD: 0, OR: 1, ADC: 2, SBB: 3, AND: 4, SUB: 5, XOR: 6, CMP: 7 } as const;

const TWO32 = 4294967296;

/**
 * Computes `a op b` for `size` bytes and records the lazy flags. Returns the
 * low half; the high half (size 8) is left in `cpu.hi`.
 */
export function aluOp(cpu: Cpu, op: number, size: number, a: number, aHi: number, b: number, bHi: number): number {
  const f = cpu.lazy;
  let r: number;
  let rHi = 0;
  let lazy: number;
  let cin = 0;
  if (op === ALU.ADC || op === ALU.SBB) cin = cpu.cf();
  if (size === 8) {
    switch (op) {
      case ALU.ADD:
      case ALU.ADC: {
        const s = a + b + cin;
        r = s >>> 0;
        rHi = (aHi + bHi + (s >= TWO32 ? 1 : 0)) >>> 0;
        lazy = op === ALU.ADD ? LAZY.ADD : LAZY.ADC;
        break;
      }
      case ALU.SUB:
      case ALU.CMP:
      case ALU.SBB: {
        const s = a - b - cin;
        r = s >>> 0;
        rHi = (aHi - bHi - (s < 0 ? 1 : 0)) >>> 0;
        lazy = op === ALU.SBB ? LAZY.SBB : LAZY.SUB;
        break;
      }
      case ALU.OR:
        r = (a | b) >>> 0;
        rHi = (aHi | bHi) >>> 0;
        lazy = LAZY.LOGIC;
        break;
      case ALU.AND:
        r = (a & b) >>> 0;
        rHi = (aHi & bHi) >>> 0;
        lazy = LAZY.LOGIC;
        break;
      default:
        r = (a ^ b) >>> 0;
        rHi = (aHi ^ bHi) >>> 0;
        lazy = LAZY.LOGIC;
    }
  } else {
    const m = maskOf(size);
    switch (op) {
      case ALU.ADD:
      case ALU.ADC:
        r = ((a + b + cin) & m) >>> 0;
        lazy = op === ALU.ADD ? LAZY.ADD : LAZY.ADC;
        break;
      case ALU.SUB:
      case ALU.CMP:
      case ALU.SBB:
        r = ((a - b - cin) & m) >>> 0;
        lazy = op === ALU.SBB ? LAZY.SBB : LAZY.SUB;
        break;
      case ALU.OR:
        r = (a | b) >>> 0;
        lazy = LAZY.LOGIC;
        break;
      case ALU.AND:
        r = (a & b) >>> 0;
        lazy = LAZY.LOGIC;
        break;
      default:
        r = (a ^ b) >>> 0;
        lazy = LAZY.LOGIC;
    }
  }
  f.op = lazy;
  f.size = size;
  f.a = a;
  f.aHi = aHi;
  f.b = b;
  f.bHi = bHi;
  f.r = r;
  f.rHi = rHi;
  f.cin = cin;
  cpu.hi = rHi;
  return r;
}

/** INC (delta 1) / DEC (delta -1) with CF preserved. */
function incDec(cpu: Cpu, size: number, a: number, aHi: number, delta: number): number {
  const cf = cpu.cf();
  const r = aluOp(cpu, delta > 0 ? ALU.ADD : ALU.SUB, size, a, aHi, 1, 0);
  cpu.lazy.op = delta > 0 ? LAZY.INC : LAZY.DEC;
  cpu.lazy.cin = cf;
  return r;
}

/** op r/m, reg (00, 01, 08, … with direction bit clear) */
function aluRmReg(op: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const size = insn.osize;
    const b = getReg(cpu, insn.reg, size, insn.rex);
    const bHi = cpu.hi;
    if (insn.mod === 3) {
      const a = getReg(cpu, insn.rm, size, insn.rex);
      const r = aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, size === 8 ? bHi : 0);
      if (op !== ALU.CMP) setReg(cpu, insn.rm, size, r, cpu.hi, insn.rex);
    } else if (op === ALU.CMP) {
      const a = readMem(cpu, eaOf(cpu, insn), size);
      aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, size === 8 ? bHi : 0);
    } else {
      const lin = rmwAddress(cpu, insn, size);
      const a = readMem(cpu, lin, size);
      const r = aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, size === 8 ? bHi : 0);
      writeMem(cpu, lin, size, r, cpu.hi);
    }
  };
}

/** op reg, r/m (02, 03, …) */
function aluRegRm(op: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const size = insn.osize;
    const b = readRm(cpu, insn, size);
    const bHi = size === 8 ? cpu.hi : 0;
    const a = getReg(cpu, insn.reg, size, insn.rex);
    const r = aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, bHi);
    if (op !== ALU.CMP) setReg(cpu, insn.reg, size, r, cpu.hi, insn.rex);
  };
}

/** op AL/eAX, imm (04, 05, …) */
function aluAccImm(op: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const size = insn.osize;
    const b = immediate(cpu, insn, size);
    const bHi = size === 8 ? cpu.hi : 0;
    const a = getReg(cpu, 0, size, 1);
    const r = aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, bHi);
    if (op !== ALU.CMP) setReg(cpu, 0, size, r, cpu.hi, 1);
  };
}

/** Group 1: op r/m, imm (80, 81, 83). */
function aluRmImm(op: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const size = insn.osize;
    const b = immediate(cpu, insn, size);
    const bHi = size === 8 ? cpu.hi : 0;
    if (insn.mod === 3) {
      const a = getReg(cpu, insn.rm, size, insn.rex);
      const r = aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, bHi);
      if (op !== ALU.CMP) setReg(cpu, insn.rm, size, r, cpu.hi, insn.rex);
    } else if (op === ALU.CMP) {
      const a = readMem(cpu, eaOf(cpu, insn), size);
      aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, bHi);
    } else {
      const lin = rmwAddress(cpu, insn, size);
      const a = readMem(cpu, lin, size);
      const r = aluOp(cpu, op, size, a, size === 8 ? cpu.hi : 0, b, bHi);
      writeMem(cpu, lin, size, r, cpu.hi);
    }
  };
}

function test(cpu: Cpu, insn: Insn, b: number, bHi: number): void {
  const size = insn.osize;
  const a = readRm(cpu, insn, size);
  aluOp(cpu, ALU.AND, size, a, size === 8 ? cpu.hi : 0, b, bHi);
}

/** The in-place unary operations of groups 3 and 4/5. */
const UNARY = { NOT: 0, NEG: 1, INC: 2, DEC: 3 } as const;

function unary(cpu: Cpu, kind: number, size: number, a: number, aHi: number): number {
  switch (kind) {
    case UNARY.NOT: // no flags
      if (size === 8) {
        cpu.hi = ~aHi >>> 0;
        return ~a >>> 0;
      }
      return (~a & maskOf(size)) >>> 0;
    case UNARY.NEG:
      return aluOp(cpu, ALU.SUB, size, 0, 0, a, aHi);
    case UNARY.INC:
      return incDec(cpu, size, a, aHi, 1);
    default:
      return incDec(cpu, size, a, aHi, -1);
  }
}

/** A handler applying a unary operation to the r/m operand in place (read-modify-write); allocates nothing per run. */
function unaryRm(kind: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const size = insn.osize;
    if (insn.mod === 3) {
      const a = getReg(cpu, insn.rm, size, insn.rex);
      const r = unary(cpu, kind, size, a, size === 8 ? cpu.hi : 0);
      setReg(cpu, insn.rm, size, r, cpu.hi, insn.rex);
    } else {
      const lin = rmwAddress(cpu, insn, size);
      const a = readMem(cpu, lin, size);
      const r = unary(cpu, kind, size, a, size === 8 ? cpu.hi : 0);
      writeMem(cpu, lin, size, r, cpu.hi);
    }
  };
}

/** Registers the family. */
export function registerAlu(t: OpcodeTable): void {
  for (let op = 0; op < 8; op++) {
    const base = op * 8;
    const lockable = op !== ALU.CMP;
    t.op(base, aluRmReg(op), { lockable });
    t.op(base + 1, aluRmReg(op), { lockable });
    t.op(base + 2, aluRegRm(op));
    t.op(base + 3, aluRegRm(op));
    t.op(base + 4, aluAccImm(op));
    t.op(base + 5, aluAccImm(op));
    for (const g of [0x80, 0x81, 0x83]) t.group(g, op, aluRmImm(op), { lockable });
  }
  const testRmReg = (cpu: Cpu, insn: Insn) => {
    const b = getReg(cpu, insn.reg, insn.osize, insn.rex);
    test(cpu, insn, b, insn.osize === 8 ? cpu.hi : 0);
  };
  t.op(0x84, testRmReg);
  t.op(0x85, testRmReg);
  const testAcc = (cpu: Cpu, insn: Insn) => {
    const size = insn.osize;
    const b = immediate(cpu, insn, size);
    const bHi = size === 8 ? cpu.hi : 0;
    const a = getReg(cpu, 0, size, 1);
    aluOp(cpu, ALU.AND, size, a, size === 8 ? cpu.hi : 0, b, bHi);
  };
  t.op(0xa8, testAcc);
  t.op(0xa9, testAcc);
  for (const g of [0xf6, 0xf7]) {
    const testImm = (cpu: Cpu, insn: Insn) => {
      const b = immediate(cpu, insn, insn.osize);
      test(cpu, insn, b, insn.osize === 8 ? cpu.hi : 0);
    };
    t.group(g, 0, testImm);
    t.group(g, 1, testImm);
    t.group(g, 2, unaryRm(UNARY.NOT), { lockable: true });
    t.group(g, 3, unaryRm(UNARY.NEG), { lockable: true });
  }
  for (const g of [0xfe, 0xff]) {
    t.group(g, 0, unaryRm(UNARY.INC), { lockable: true });
    t.group(g, 1, unaryRm(UNARY.DEC), { lockable: true });
  }
}
