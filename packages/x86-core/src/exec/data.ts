import { type Cpu, SEG } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { POPPABLE_FLAGS, RFLAGS } from "../flags";
import { condition } from "./conditions";
import {
  addLinear,
  ea,
  getReg,
  immediate,
  maskOf,
  pop,
  push,
  readMem,
  readRm,
  rmwAddress,
  setReg,
  writeMem,
  writeRm,
} from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Data movement: MOV (88–8C, 8E, A0–A3, B0–BF, C6, C7), LEA, MOVZX, MOVSX,
 * MOVSXD, XCHG, PUSH/POP, PUSHF/POPF, LAHF/SAHF, CBW family, CWD family,
 * CMOVcc, SETcc, BSWAP, XLAT, NOP forms, MOV to/from segment registers,
 * LSS/LFS/LGS.
 */

function movRmReg(cpu: Cpu, insn: Insn): void {
  const v = getReg(cpu, insn.reg, insn.osize, insn.rex);
  writeRm(cpu, insn, insn.osize, v, cpu.hi);
}

function movRegRm(cpu: Cpu, insn: Insn): void {
  const v = readRm(cpu, insn, insn.osize);
  setReg(cpu, insn.reg, insn.osize, v, cpu.hi, insn.rex);
}

function movRmImm(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  if (insn.mod === 3) {
    const v = immediate(cpu, insn, size);
    setReg(cpu, insn.rm, size, v, cpu.hi, insn.rex);
  } else {
    const lin = ea(cpu, insn);
    const v = immediate(cpu, insn, size);
    writeMem(cpu, lin, size, v, cpu.hi);
  }
}

/** B0–BF: MOV r, imm (imm64 with REX.W). */
function movRegImm(cpu: Cpu, insn: Insn): void {
  const reg = (insn.op & 7) | ((insn.rex & 1) << 3);
  const v = immediate(cpu, insn, insn.osize);
  setReg(cpu, reg, insn.osize, v, cpu.hi, insn.rex);
}

/** A0–A3: MOV AL/eAX ↔ moffs (absolute address, FS/GS base applies). */
function movMoffs(toAcc: boolean): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    let lo = insn.imm >>> 0;
    let hi = insn.immHi >>> 0;
    if (insn.seg >= 4) {
      const b = cpu.segBase[insn.seg]!;
      const s = lo + (b >>> 0);
      hi = (hi + Math.floor(b / 4294967296) + Math.floor(s / 4294967296)) >>> 0;
      lo = s >>> 0;
    }
    const top = hi >> 15;
    if (top !== 0 && top !== -1) cpu.fault(VECTOR.GP, 0);
    const lin = (hi | 0) * 4294967296 + lo;
    const size = insn.osize;
    if (toAcc) {
      const v = readMem(cpu, lin, size);
      setReg(cpu, 0, size, v, cpu.hi, 1);
    } else {
      const v = getReg(cpu, 0, size, 1);
      writeMem(cpu, lin, size, v, cpu.hi);
    }
  };
}

function lea(cpu: Cpu, insn: Insn): void {
  if (insn.mod === 3) cpu.fault(VECTOR.UD);
  // LEA computes the offset without the segment base.
  const lo = eaNoCanonical(cpu, insn);
  setReg(cpu, insn.reg, insn.osize, lo, cpu.hi, insn.rex);
}

/**
 * LEA's address arithmetic: like `ea` but without segment base or canonical
 * check. Returns the low half and leaves the high half in `cpu.hi` (no
 * allocation: this runs once per LEA).
 */
function eaNoCanonical(cpu: Cpu, insn: Insn): number {
  const g = cpu.gpr;
  const d = insn.disp | 0;
  let sumLo = d >>> 0;
  let sumHi = d < 0 ? 0xffffffff : 0;
  if (insn.base === 16) {
    sumLo += cpu.rip >>> 0;
    sumHi += Math.floor(cpu.rip / 4294967296) >>> 0;
  } else if (insn.base >= 0) {
    sumLo += g[2 * insn.base]!;
    sumHi += g[2 * insn.base + 1]!;
  }
  if (insn.index >= 0) {
    const s = 1 << insn.scale;
    sumLo += g[2 * insn.index]! * s;
    sumHi += g[2 * insn.index + 1]! * s;
  }
  cpu.hi = insn.asize === 4 ? 0 : (sumHi + Math.floor(sumLo / 4294967296)) >>> 0;
  return sumLo >>> 0;
}

function movzx(srcSize: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const v = readRm(cpu, insn, srcSize);
    setReg(cpu, insn.reg, insn.osize, v, 0, insn.rex);
  };
}

function movsx(srcSize: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    const v = readRm(cpu, insn, srcSize);
    const shift = 32 - srcSize * 8;
    const s = shift === 0 ? v | 0 : (v << shift) >> shift;
    setReg(cpu, insn.reg, insn.osize, (s & maskOf(insn.osize)) >>> 0, s < 0 ? 0xffffffff : 0, insn.rex);
  };
}

/** 63: MOVSXD r, r/m32 (without REX.W it is a plain 32-bit move). */
const movsx32 = movsx(4);

function movsxd(cpu: Cpu, insn: Insn): void {
  if (insn.osize === 8) movsx32(cpu, insn);
  else {
    const v = readRm(cpu, insn, insn.osize);
    setReg(cpu, insn.reg, insn.osize, v, 0, insn.rex);
  }
}

function xchgRmReg(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const a = getReg(cpu, insn.reg, size, insn.rex);
  const aHi = cpu.hi;
  if (insn.mod === 3) {
    const b = getReg(cpu, insn.rm, size, insn.rex);
    const bHi = cpu.hi;
    setReg(cpu, insn.rm, size, a, aHi, insn.rex);
    setReg(cpu, insn.reg, size, b, bHi, insn.rex);
  } else {
    const lin = rmwAddress(cpu, insn, size);
    const b = readMem(cpu, lin, size);
    const bHi = cpu.hi;
    writeMem(cpu, lin, size, a, aHi);
    setReg(cpu, insn.reg, size, b, bHi, insn.rex);
  }
}

/** 90–97: XCHG r, rAX (90 without REX.B is NOP; F3 90 is PAUSE, handled by system). */
function xchgAcc(cpu: Cpu, insn: Insn): void {
  const reg = (insn.op & 7) | ((insn.rex & 1) << 3);
  if (reg === 0) return; // NOP (even with 66 or REX.W)
  const size = insn.osize;
  const a = getReg(cpu, 0, size, 1);
  const aHi = cpu.hi;
  const b = getReg(cpu, reg, size, 1);
  const bHi = cpu.hi;
  setReg(cpu, 0, size, b, bHi, 1);
  setReg(cpu, reg, size, a, aHi, 1);
}

function pushReg(cpu: Cpu, insn: Insn): void {
  const reg = (insn.op & 7) | ((insn.rex & 1) << 3);
  const size = insn.osize;
  const v = getReg(cpu, reg, size, 1);
  push(cpu, size, v, cpu.hi);
}

function popReg(cpu: Cpu, insn: Insn): void {
  const reg = (insn.op & 7) | ((insn.rex & 1) << 3);
  const size = insn.osize;
  const v = pop(cpu, size);
  setReg(cpu, reg, size, v, cpu.hi, 1);
}

function pushImm(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const v = immediate(cpu, insn, size);
  push(cpu, size, v, cpu.hi);
}

/** FF /6: PUSH r/m — 64-bit by default in 64-bit mode (the decoder sizes group 5 for INC/DEC: 32). */
function pushRm(cpu: Cpu, insn: Insn): void {
  const size = insn.osize === 2 ? 2 : 8;
  const v = readRm(cpu, insn, size);
  push(cpu, size, v, cpu.hi);
}

/** 8F /0: POP r/m — RSP is incremented before the destination address is computed. */
function popRm(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const rsp = cpu.getRsp();
  const v = size === 8 ? cpu.read64(rsp) : cpu.read16(rsp);
  const hi = cpu.hi;
  cpu.setRsp(rsp + size);
  try {
    writeRm(cpu, insn, size, v, hi);
  } catch (e) {
    cpu.setRsp(rsp);
    throw e;
  }
}

/** Flags PUSHF may show: RF and VM read as 0. */
function pushf(cpu: Cpu, insn: Insn): void {
  const f = cpu.getRflags() & ~(RFLAGS.RF | RFLAGS.VM);
  push(cpu, insn.osize, insn.osize === 2 ? f & 0xffff : f, 0);
}

/**
 * POPF (SDM vol. 2, POPF, 64-bit mode): at CPL 0 every modifiable flag except
 * VIP/VIF/VM changes; at CPL > 0 IOPL is kept; IF changes only when CPL ≤ IOPL.
 */
function popf(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const v = pop(cpu, size);
  const old = cpu.getRflags();
  const iopl = (old & RFLAGS.IOPL) >>> 12;
  let writable = POPPABLE_FLAGS | RFLAGS.IF | RFLAGS.IOPL;
  if (cpu.cpl > 0) writable &= ~RFLAGS.IOPL;
  if (cpu.cpl > iopl) writable &= ~RFLAGS.IF;
  if (size === 2) writable &= 0xffff;
  cpu.setRflags(((old & ~writable) | (v & writable)) & ~RFLAGS.RF);
  if ((old & RFLAGS.IF) === 0 && (cpu.rflags & RFLAGS.IF) !== 0) cpu.attention |= 1;
}

function lahf(cpu: Cpu): void {
  const f = cpu.getRflags() & 0xd5;
  setReg(cpu, 4, 1, f | 2, 0, 0); // AH
}

function sahf(cpu: Cpu): void {
  const ah = (cpu.gpr[0]! >>> 8) & 0xd5;
  cpu.setRflags((cpu.getRflags() & ~0xd5) | ah);
}

/** 98: CBW / CWDE / CDQE. */
function cbw(cpu: Cpu, insn: Insn): void {
  const g = cpu.gpr;
  if (insn.osize === 2) g[0] = (g[0]! & 0xffff0000) | ((((g[0]! << 24) >> 24) & 0xffff) >>> 0);
  else if (insn.osize === 4) {
    g[0] = ((g[0]! << 16) >> 16) >>> 0;
    g[1] = 0;
  } else g[1] = (g[0]! | 0) < 0 ? 0xffffffff : 0;
}

/** 99: CWD / CDQ / CQO. */
function cwd(cpu: Cpu, insn: Insn): void {
  const g = cpu.gpr;
  if (insn.osize === 2) g[4] = (g[4]! & 0xffff0000) | (g[0]! & 0x8000 ? 0xffff : 0);
  else if (insn.osize === 4) {
    g[4] = (g[0]! | 0) < 0 ? 0xffffffff : 0;
    g[5] = 0;
  } else {
    const s = (g[1]! | 0) < 0 ? 0xffffffff : 0;
    g[4] = s;
    g[5] = s;
  }
}

function cmov(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const v = readRm(cpu, insn, size); // the source is read (and may fault) whatever the condition
  if (condition(cpu, insn.op & 0xf)) setReg(cpu, insn.reg, size, v, cpu.hi, insn.rex);
  else if (size === 4) cpu.gpr[2 * insn.reg + 1] = 0; // 32-bit CMOV zero-extends even when false
}

function setcc(cpu: Cpu, insn: Insn): void {
  writeRm(cpu, insn, 1, condition(cpu, insn.op & 0xf) ? 1 : 0, 0);
}

function bswap(cpu: Cpu, insn: Insn): void {
  const reg = (insn.op & 7) | ((insn.rex & 1) << 3);
  const g = cpu.gpr;
  const sw = (x: number) => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
  if (insn.osize === 8) {
    const lo = g[2 * reg]!;
    g[2 * reg] = sw(g[2 * reg + 1]!);
    g[2 * reg + 1] = sw(lo);
  } else if (insn.osize === 4) {
    g[2 * reg] = sw(g[2 * reg]!);
    g[2 * reg + 1] = 0;
  } else g[2 * reg] = g[2 * reg]! & 0xffff0000; // 16-bit BSWAP is undefined; real processors give 0
}

/** D7: XLAT — AL = [rBX + zero-extended AL]. */
function xlat(cpu: Cpu, insn: Insn): void {
  const g = cpu.gpr;
  const saved = { base: insn.base, index: insn.index, disp: insn.disp, scale: insn.scale };
  insn.base = 3;
  insn.index = -1;
  insn.scale = 0;
  insn.disp = g[0]! & 0xff;
  try {
    const v = cpu.read8(ea(cpu, insn));
    g[0] = (g[0]! & 0xffffff00) | v;
  } finally {
    Object.assign(insn, saved);
  }
}

/** 8C: MOV r/m, Sreg. */
function movFromSreg(cpu: Cpu, insn: Insn): void {
  const s = insn.reg & 7;
  if (s > 5) cpu.fault(VECTOR.UD);
  const v = cpu.sel[s]!;
  if (insn.mod === 3) setReg(cpu, insn.rm, insn.osize === 2 ? 2 : insn.osize, v, 0, insn.rex);
  else writeMem(cpu, ea(cpu, insn), 2, v, 0);
}

/**
 * 8E: MOV Sreg, r/m. In 64-bit mode DS/ES/FS/GS loads take the selector and
 * (for a non-null selector) the descriptor's attributes; FS/GS bases keep the
 * descriptor's 32-bit base. CS cannot be loaded (#UD); SS needs a writable
 * data segment with DPL = CPL.
 */
function movToSreg(cpu: Cpu, insn: Insn): void {
  const s = insn.reg & 7;
  if (s === 1 || s > 5) cpu.fault(VECTOR.UD);
  const sel = readRm(cpu, insn, 2) & 0xffff;
  loadDataSegment(cpu, s, sel);
  if (s === 2) {
    cpu.intShadow = 1;
    cpu.attention |= 1;
  }
}

/** Loads a data segment register in 64-bit mode (MOV Sreg, POP Sreg). */
export function loadDataSegment(cpu: Cpu, s: number, sel: number): void {
  if ((sel & 0xfffc) === 0) {
    if (s === 2 && (cpu.cpl === 3 || (sel & 3) !== cpu.cpl)) cpu.fault(VECTOR.GP, 0);
    cpu.sel[s] = sel;
    cpu.segAttr[s] = 0x10000;
    cpu.segBase[s] = 0; // Intel zeroes the base of a null FS/GS too (AMD keeps it)
    return;
  }
  const d = cpu.readDescriptor(sel);
  const type = d.attr & 0x1f;
  const dpl = (d.attr >>> 5) & 3;
  if (s === 2) {
    if ((sel & 3) !== cpu.cpl || dpl !== cpu.cpl || (type & 0x1a) !== 0x12) cpu.fault(VECTOR.GP, sel & 0xfffc);
    if (!(d.attr & 0x80)) cpu.fault(VECTOR.SS, sel & 0xfffc);
  } else {
    // Data or readable code; for data and non-conforming code, DPL ≥ max(CPL, RPL).
    if ((type & 0x10) === 0 || (type & 0x1a) === 0x18) cpu.fault(VECTOR.GP, sel & 0xfffc);
    const conformingCode = (type & 0x1c) === 0x1c;
    if (!conformingCode && dpl < Math.max(cpu.cpl, sel & 3)) cpu.fault(VECTOR.GP, sel & 0xfffc);
    if (!(d.attr & 0x80)) cpu.fault(VECTOR.NP, sel & 0xfffc);
  }
  cpu.sel[s] = sel;
  cpu.segAttr[s] = d.attr;
  cpu.segLimit[s] = d.limit;
  cpu.segBase[s] = d.base;
}

/**
 * 0F B2 / B4 / B5: LSS, LFS, LGS r, m16:16/32/64 (SDM vol. 2A, "LDS/LES/LFS/LGS/LSS")
 * — the offset (operand size: 16, 32, or 64 with REX.W) then the selector
 * after it. The segment register is loaded as MOV Sreg does and only then the
 * general register, which a failed load leaves alone. A register operand is
 * #UD. LSS does not inhibit interrupts the way MOV SS does.
 */
function loadFarPointer(s: number): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    if (insn.mod === 3) cpu.fault(VECTOR.UD);
    const size = insn.osize;
    const lin = ea(cpu, insn);
    const lo = readMem(cpu, lin, size);
    const hi = size === 8 ? cpu.hi : 0;
    const sel = cpu.read16(addLinear(cpu, lin, size));
    loadDataSegment(cpu, s, sel);
    setReg(cpu, insn.reg, size, lo, hi, insn.rex);
  };
}

/** Registers the family. */
export function registerData(t: OpcodeTable): void {
  t.op(0x88, movRmReg);
  t.op(0x89, movRmReg);
  t.op(0x8a, movRegRm);
  t.op(0x8b, movRegRm);
  t.op(0x8c, movFromSreg);
  t.op(0x8e, movToSreg);
  t.op(0x8d, lea);
  t.group(0xc6, 0, movRmImm);
  t.group(0xc7, 0, movRmImm);
  for (let op = 0xb0; op <= 0xbf; op++) t.op(op, movRegImm);
  t.op(0xa0, movMoffs(true));
  t.op(0xa1, movMoffs(true));
  t.op(0xa2, movMoffs(false));
  t.op(0xa3, movMoffs(false));
  t.op(0x1b6, movzx(1));
  t.op(0x1b7, movzx(2));
  t.op(0x1be, movsx(1));
  t.op(0x1bf, movsx(2));
  t.op(0x63, movsxd);
  t.op(0x86, xchgRmReg, { lockable: true });
  t.op(0x87, xchgRmReg, { lockable: true });
  for (let op = 0x90; op <= 0x97; op++) t.op(op, xchgAcc);
  for (let op = 0x50; op <= 0x57; op++) t.op(op, pushReg);
  for (let op = 0x58; op <= 0x5f; op++) t.op(op, popReg);
  t.op(0x68, pushImm);
  t.op(0x6a, pushImm);
  t.group(0xff, 6, pushRm);
  t.group(0x8f, 0, popRm);
  t.op(0x9c, pushf);
  t.op(0x9d, popf);
  t.op(0x9e, sahf);
  t.op(0x9f, lahf);
  t.op(0x98, cbw);
  t.op(0x99, cwd);
  for (let cc = 0; cc < 16; cc++) {
    t.op(0x140 + cc, cmov);
    t.op(0x190 + cc, setcc);
  }
  for (let op = 0x1c8; op <= 0x1cf; op++) t.op(op, bswap);
  t.op(0xd7, xlat);
  t.op(0x1b2, loadFarPointer(SEG.SS));
  t.op(0x1b4, loadFarPointer(SEG.FS));
  t.op(0x1b5, loadFarPointer(SEG.GS));
  // Multi-byte NOP (0F 1F /0) and the reserved-NOP hint space 0F 18–1F (prefetch hints).
  for (let op = 0x118; op <= 0x11f; op++) t.op(op, () => {});
  t.op(0x10d, () => {}); // PREFETCHW
}
