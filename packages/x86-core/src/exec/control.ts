import type { Cpu } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { condition } from "./conditions";
import { ea, getReg, jumpAbsolute, jumpRelative, push, readMem, setReg, splitLinear, stackAddress } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Control transfer: JMP, Jcc, CALL, RET, LOOP/LOOPE/LOOPNE, JRCXZ, ENTER, LEAVE.
 * Near branches use 64-bit operand size in 64-bit mode (Intel ignores 66 for
 * relative branches).
 */

function jmpRel(cpu: Cpu, insn: Insn): void {
  jumpRelative(cpu, insn.imm, 8);
}

function jcc(cpu: Cpu, insn: Insn): void {
  if (condition(cpu, insn.op & 0xf)) jumpRelative(cpu, insn.imm, 8);
}

function callRel(cpu: Cpu, insn: Insn): void {
  const target = cpu.rip + insn.imm;
  if (target < -140737488355328 || target >= 140737488355328) cpu.fault(VECTOR.GP, 0);
  const lo = splitLinear(cpu, cpu.rip);
  push(cpu, 8, lo, cpu.hi);
  cpu.rip = target;
}

/** Reads the 64-bit r/m target of an indirect branch (high half in `cpu.hi`). */
function indirectTarget(cpu: Cpu, insn: Insn): number {
  if (insn.mod === 3) return getReg(cpu, insn.rm, 8, insn.rex);
  return readMem(cpu, ea(cpu, insn), 8);
}

function callRm(cpu: Cpu, insn: Insn): void {
  const lo = indirectTarget(cpu, insn);
  const hi = cpu.hi;
  const top = hi >> 15;
  if (top !== 0 && top !== -1) cpu.fault(VECTOR.GP, 0);
  const ret = splitLinear(cpu, cpu.rip);
  push(cpu, 8, ret, cpu.hi);
  jumpAbsolute(cpu, lo, hi);
}

function jmpRm(cpu: Cpu, insn: Insn): void {
  const lo = indirectTarget(cpu, insn);
  jumpAbsolute(cpu, lo, cpu.hi);
}

function ret(cpu: Cpu, insn: Insn): void {
  const rsp = stackAddress(cpu, cpu.getRsp(), 8);
  const lo = cpu.read64(rsp);
  const hi = cpu.hi;
  const top = hi >> 15;
  if (top !== 0 && top !== -1) cpu.fault(VECTOR.GP, 0);
  cpu.setRsp(rsp + 8 + (insn.op === 0xc2 ? insn.imm : 0));
  jumpAbsolute(cpu, lo, hi);
}

/** E0–E3: LOOPNE, LOOPE, LOOP, JrCXZ (the counter's size is the address size). */
function loop(cpu: Cpu, insn: Insn): void {
  const g = cpu.gpr;
  const wide = insn.asize === 8;
  if (insn.op === 0xe3) {
    const zero = wide ? (g[2]! | g[3]!) === 0 : g[2] === 0;
    if (zero) jumpRelative(cpu, insn.imm, 8);
    return;
  }
  // Decrement rCX without touching flags.
  let lo = g[2]!;
  let hi = g[3]!;
  if (lo === 0) hi = wide ? (hi - 1) >>> 0 : hi;
  lo = (lo - 1) >>> 0;
  g[2] = lo;
  g[3] = wide ? hi : 0;
  const nz = wide ? (lo | hi) !== 0 : lo !== 0;
  let take = nz;
  if (insn.op === 0xe1) take = nz && cpu.flag(0x40);
  else if (insn.op === 0xe0) take = nz && !cpu.flag(0x40);
  if (take) jumpRelative(cpu, insn.imm, 8);
}

/** C8: ENTER imm16, imm8 (64-bit frame). */
function enter(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const level = insn.imm2 & 31;
  const rbp = getReg(cpu, 5, size, 1);
  const rbpHi = cpu.hi;
  let rsp = cpu.getRsp();
  // Check the whole frame is writable before changing anything.
  rsp -= size;
  const writeAt = (addr: number, lo: number, hi: number) =>
    size === 8 ? cpu.write64(addr, lo, hi) : cpu.write16(addr, lo);
  writeAt(rsp, rbp, rbpHi);
  const frameTemp = rsp;
  let fp = (cpu.gpr[11]! | 0) * 4294967296 + cpu.gpr[10]!;
  for (let i = 1; i < level; i++) {
    fp -= size;
    const v = size === 8 ? cpu.read64(fp) : cpu.read16(fp);
    const vHi = cpu.hi;
    rsp -= size;
    writeAt(rsp, v, vHi);
  }
  if (level > 0) {
    rsp -= size;
    writeAt(rsp, frameTemp >>> 0, Math.floor(frameTemp / 4294967296) >>> 0);
  }
  const newRsp = rsp - insn.imm;
  if (insn.imm > 0) cpu.translate(newRsp, 1); // the new stack top must be writable
  if (size === 8) {
    const lo = splitLinear(cpu, frameTemp);
    setReg(cpu, 5, 8, lo, cpu.hi, 1);
  } else setReg(cpu, 5, 2, frameTemp & 0xffff, 0, 1);
  cpu.setRsp(newRsp);
}

/** C9: LEAVE — RSP = RBP, then pop RBP. */
function leave(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const rbp = stackAddress(cpu, (cpu.gpr[11]! | 0) * 4294967296 + cpu.gpr[10]!, size);
  const v = size === 8 ? cpu.read64(rbp) : cpu.read16(rbp);
  const hi = cpu.hi;
  cpu.setRsp(rbp + size);
  setReg(cpu, 5, size, v, hi, 1);
}

/** Registers the family. */
export function registerControl(t: OpcodeTable): void {
  t.op(0xeb, jmpRel);
  t.op(0xe9, jmpRel);
  for (let cc = 0; cc < 16; cc++) {
    t.op(0x70 + cc, jcc);
    t.op(0x180 + cc, jcc);
  }
  t.op(0xe8, callRel);
  t.group(0xff, 2, callRm);
  t.group(0xff, 4, jmpRm);
  t.op(0xc3, ret);
  t.op(0xc2, ret);
  for (let op = 0xe0; op <= 0xe3; op++) t.op(op, loop);
  t.op(0xc8, enter);
  t.op(0xc9, leave);
}
