import type { Cpu } from "../cpu";
import { type Insn, MANDATORY } from "../decode/insn";
import { INTERCEPT } from "../extensions";
import { VECTOR } from "../faults";
import type { OpcodeTable } from "./table";

/**
 * Instructions x86-core decodes but does not implement itself:
 *
 * - The VMX instructions — VMXON (F3 0F C7 /6), VMCLEAR (66 0F C7 /6),
 *   VMPTRLD (0F C7 /6), VMPTRST (0F C7 /7), VMREAD (0F 78), VMWRITE (0F 79),
 *   VMLAUNCH (0F 01 C2), VMRESUME (0F 01 C3), VMXOFF (0F 01 C4),
 *   VMFUNC (0F 01 D4), INVEPT (66 0F 38 80), INVVPID (66 0F 38 81) — go to
 *   the INTERCEPT.VMX_INSN interceptor (the vmx layer), which also makes their
 *   mode and CPL checks; without one they raise #UD, as on a processor
 *   without VMX.
 * - Features the CPUID profile does not advertise raise #UD: MONITOR and MWAIT
 *   (0F 01 C8/C9), XGETBV and XSETBV (0F 01 D0/D1, no XSAVE, so CR4.OSXSAVE
 *   cannot be set), RDRAND (0F C7 /6 reg), RDSEED (0F C7 /7 reg), RDPID
 *   (F3 0F C7 /7 reg).
 */

function undefinedHere(cpu: Cpu): void {
  cpu.fault(VECTOR.UD);
}

/** Hands a VMX instruction to the vmx layer; #UD when nothing claims it. */
function vmxInstruction(cpu: Cpu, insn: Insn): void {
  if (cpu.runIntercept(INTERCEPT.VMX_INSN, insn, insn.op)) return;
  cpu.fault(VECTOR.UD);
}

/** 0F C7 /6 and /7: the VMX memory forms, or RDRAND / RDSEED / RDPID with a register (#UD). */
function group9(cpu: Cpu, insn: Insn): void {
  const reg = insn.reg & 7;
  const m = insn.mandatory;
  if (insn.mod === 3 || (reg === 7 && m !== MANDATORY.NONE) || (reg === 6 && m === MANDATORY.PF2)) cpu.fault(VECTOR.UD);
  vmxInstruction(cpu, insn);
}

/** Registers the VMX instruction routes and the explicit #UD entries; returns their group-7 register forms. */
export function registerVmxRoutes(t: OpcodeTable): Record<number, (cpu: Cpu, insn: Insn) => void> {
  t.group(0x1c7, 6, group9);
  t.group(0x1c7, 7, group9);
  t.sse(0x178, MANDATORY.NONE, vmxInstruction);
  t.sse(0x179, MANDATORY.NONE, vmxInstruction);
  t.sse(0x280, MANDATORY.P66, vmxInstruction);
  t.sse(0x281, MANDATORY.P66, vmxInstruction);
  return {
    194: vmxInstruction,
    195: vmxInstruction,
    196: vmxInstruction,
    212: vmxInstruction,
    200: undefinedHere,
    201: undefinedHere,
    208: undefinedHere,
    209: undefinedHere,
  };
}
