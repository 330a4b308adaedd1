import type { Cpu } from "../cpu";
import type { Insn } from "../decode/insn";
import { INTERCEPT } from "../extensions";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { getReg, setReg } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Port I/O: IN (E4, E5, EC, ED) and OUT (E6, E7, EE, EF) through the
 * machine's port space (`cpu.mem.portIn/portOut`), SDM vol. 2A "IN", vol. 2B
 * "OUT", vol. 1, 19.5. Protection: with CPL > IOPL the access needs the TSS
 * I/O permission bitmap, which this processor does not consult, so it is
 * #GP(0). The interceptor sees `info` = port | size << 16 | IN 1 << 20 | imm8
 * form 1 << 23 (the INTERCEPT.IO encoding). INS/OUTS belong to the string family.
 */

function portIo(isIn: boolean, byte: boolean, immForm: boolean): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    if (cpu.cpl > (cpu.getRflags() & RFLAGS.IOPL) >>> 12) cpu.fault(VECTOR.GP, 0);
    const size: 1 | 2 | 4 = byte ? 1 : insn.osize === 2 ? 2 : 4;
    const port = immForm ? insn.imm & 0xff : cpu.gpr[4]! & 0xffff;
    const info = port | (size << 16) | (isIn ? 1 << 20 : 0) | (immForm ? 1 << 23 : 0);
    if (cpu.runIntercept(INTERCEPT.IO, insn, info)) return;
    if (isIn) setReg(cpu, 0, size, cpu.mem.portIn(port, size), 0, 0);
    else cpu.mem.portOut(port, size, getReg(cpu, 0, size, 0));
  };
}

/** Registers IN and OUT. */
export function registerPortIo(t: OpcodeTable): void {
  t.op(0xe4, portIo(true, true, true));
  t.op(0xe5, portIo(true, false, true));
  t.op(0xe6, portIo(false, true, true));
  t.op(0xe7, portIo(false, false, true));
  t.op(0xec, portIo(true, true, false));
  t.op(0xed, portIo(true, false, false));
  t.op(0xee, portIo(false, true, false));
  t.op(0xef, portIo(false, false, false));
}
