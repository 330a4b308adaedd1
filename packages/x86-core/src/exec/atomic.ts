import type { Cpu } from "../cpu";
import type { Insn } from "../decode/insn";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { ACCESS } from "../tlb";
import { ALU, aluOp } from "./alu";
import { writeFlags } from "./flag-results";
import { ea, getReg, readMem, rmwAddress, setReg, writeMem } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * The compare-and-exchange family, all lockable: CMPXCHG (0F B0/B1),
 * CMPXCHG8B / CMPXCHG16B (0F C7 /1), XADD (0F C0/C1). SDM vol. 2 under each
 * mnemonic. One processor executes one instruction at a time, so LOCK needs no
 * further work here; what matters is that a memory destination is always
 * written (checked for writing before it is read), as the locked bus cycle does.
 */

/**
 * CMPXCHG r/m, reg: compares rAX with the destination (flags as CMP). Equal:
 * destination = source. Not equal: rAX = destination; a memory destination is
 * written back unchanged, a register destination is not written at all (its
 * high half survives even with a 32-bit operand, as on Intel processors).
 */
function cmpxchg(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const src = getReg(cpu, insn.reg, size, insn.rex);
  const srcHi = size === 8 ? cpu.hi : 0;
  const acc = getReg(cpu, 0, size, 1);
  const accHi = size === 8 ? cpu.hi : 0;
  let lin = 0;
  let dest: number;
  if (insn.mod === 3) dest = getReg(cpu, insn.rm, size, insn.rex);
  else {
    lin = rmwAddress(cpu, insn, size);
    dest = readMem(cpu, lin, size);
  }
  const destHi = size === 8 ? cpu.hi : 0;
  aluOp(cpu, ALU.CMP, size, acc, accHi, dest, destHi);
  const equal = acc === dest && accHi === destHi;
  if (insn.mod === 3) {
    if (equal) setReg(cpu, insn.rm, size, src, srcHi, insn.rex);
    else setReg(cpu, 0, size, dest, destHi, 1);
  } else if (equal) writeMem(cpu, lin, size, src, srcHi);
  else {
    writeMem(cpu, lin, size, dest, destHi);
    setReg(cpu, 0, size, dest, destHi, 1);
  }
}

/**
 * 0F C7 /1: CMPXCHG8B m64 (EDX:EAX against m64, ECX:EBX stored) and, with
 * REX.W, CMPXCHG16B m128 (RDX:RAX, RCX:RBX; #GP(0) unless 16-byte aligned).
 * Only ZF changes. A register operand raises #UD.
 */
function cmpxchgWide(cpu: Cpu, insn: Insn): void {
  if (insn.mod === 3) cpu.fault(VECTOR.UD);
  const g = cpu.gpr;
  if (insn.osize === 8) {
    const lin = ea(cpu, insn);
    if ((lin & 15) !== 0) cpu.fault(VECTOR.GP, 0);
    cpu.translate(lin, ACCESS.WRITE); // an aligned 16-byte operand never crosses a page
    const m0 = cpu.read64(lin);
    const m1 = cpu.hi;
    const m2 = cpu.read64(lin + 8);
    const m3 = cpu.hi;
    const equal = m0 === g[0] && m1 === g[1] && m2 === g[4] && m3 === g[5];
    if (equal) {
      cpu.write64(lin, g[6]!, g[7]!);
      cpu.write64(lin + 8, g[2]!, g[3]!);
    } else {
      cpu.write64(lin, m0, m1);
      cpu.write64(lin + 8, m2, m3);
      g[0] = m0;
      g[1] = m1;
      g[4] = m2;
      g[5] = m3;
    }
    writeFlags(cpu, RFLAGS.ZF, equal ? RFLAGS.ZF : 0);
    return;
  }
  const lin = rmwAddress(cpu, insn, 8);
  const lo = cpu.read64(lin);
  const hi = cpu.hi;
  const equal = lo === g[0] && hi === g[4];
  if (equal) cpu.write64(lin, g[6]!, g[2]!);
  else {
    cpu.write64(lin, lo, hi);
    // 32-bit register writes: the high halves of RAX and RDX are cleared.
    g[0] = lo;
    g[1] = 0;
    g[4] = hi;
    g[5] = 0;
  }
  writeFlags(cpu, RFLAGS.ZF, equal ? RFLAGS.ZF : 0);
}

/** XADD r/m, reg: TEMP = dest + src; src = dest; dest = TEMP (flags as ADD). */
function xadd(cpu: Cpu, insn: Insn): void {
  const size = insn.osize;
  const src = getReg(cpu, insn.reg, size, insn.rex);
  const srcHi = size === 8 ? cpu.hi : 0;
  if (insn.mod === 3) {
    const dest = getReg(cpu, insn.rm, size, insn.rex);
    const destHi = size === 8 ? cpu.hi : 0;
    const sum = aluOp(cpu, ALU.ADD, size, dest, destHi, src, srcHi);
    const sumHi = cpu.hi;
    setReg(cpu, insn.reg, size, dest, destHi, insn.rex);
    setReg(cpu, insn.rm, size, sum, sumHi, insn.rex);
  } else {
    const lin = rmwAddress(cpu, insn, size);
    const dest = readMem(cpu, lin, size);
    const destHi = size === 8 ? cpu.hi : 0;
    const sum = aluOp(cpu, ALU.ADD, size, dest, destHi, src, srcHi);
    writeMem(cpu, lin, size, sum, cpu.hi);
    setReg(cpu, insn.reg, size, dest, destHi, insn.rex);
  }
}

/** Registers the family. */
export function registerAtomic(t: OpcodeTable): void {
  t.op(0x1b0, cmpxchg, { lockable: true });
  t.op(0x1b1, cmpxchg, { lockable: true });
  t.group(0x1c7, 1, cmpxchgWide, { lockable: true });
  t.op(0x1c0, xadd, { lockable: true });
  t.op(0x1c1, xadd, { lockable: true });
}
