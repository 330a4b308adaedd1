import { type Cpu, CR0 } from "../cpu";
import type { Insn } from "../decode/insn";
import { MANDATORY } from "../decode/insn";
import { INTERCEPT } from "../extensions";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { registerControlRegisters } from "./system-cr";
import { registerDescriptorTables } from "./system-desc";
import { registerFarTransfers } from "./system-far";
import { registerInterrupts } from "./system-int";
import { registerPortIo } from "./system-io";
import { registerMsrInstructions } from "./system-msr";
import { registerSyscall } from "./system-syscall";
import { registerVmxRoutes } from "./system-vmx";
import type { OpcodeTable } from "./table";

/**
 * System instructions. Here: HLT, the flag instructions (CLI STI CLC STC CMC
 * CLD STD), the thunk escape, VMCALL/VMMCALL, PAUSE, WAIT, UD2 and the
 * group-7 dispatcher (0F 01). The rest, registered from {@link registerSystem}:
 * - system-msr.ts: CPUID, RDTSC, RDTSCP, RDMSR, WRMSR, RDPMC;
 * - system-cr.ts: MOV CR/DR, CLTS, LMSW, SMSW, INVLPG, INVD, WBINVD;
 * - system-desc.ts: LGDT LIDT SGDT SIDT, SLDT STR LLDT LTR VERR VERW, LAR LSL, PUSH/POP FS/GS;
 * - system-syscall.ts: SYSCALL, SYSRET, SWAPGS, RD/WR FS/GS BASE, STAC, CLAC;
 * - system-int.ts: INT n, INT3, INT1, IRET;
 * - system-far.ts: far JMP/CALL through memory, RETF;
 * - system-io.ts: IN, OUT;
 * - system-vmx.ts: the VMX instructions (to the vmx layer) and explicit #UDs.
 *
 * Not implemented (#UD): SYSENTER/SYSEXIT (SEP is not advertised), INVPCID,
 * INTO (invalid in 64-bit mode). INS/OUTS belong to the string family.
 */

function requireCpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
}

function hlt(cpu: Cpu, insn: Insn): void {
  requireCpl0(cpu);
  if (cpu.runIntercept(INTERCEPT.HLT, insn, 0)) return;
  cpu.halted = true;
}

/** CLI/STI: allowed when CPL ≤ IOPL (no VME/PVI in 64-bit mode). */
function cliSti(set: boolean): (cpu: Cpu) => void {
  return (cpu) => {
    const f = cpu.getRflags();
    if (cpu.cpl > (f & RFLAGS.IOPL) >>> 12) cpu.fault(VECTOR.GP, 0);
    if (set) {
      if ((f & RFLAGS.IF) === 0) {
        // STI: interrupts stay blocked until after the next instruction.
        cpu.intShadow = 1;
        cpu.attention |= 1;
      }
      cpu.rflags = f | RFLAGS.IF;
    } else cpu.rflags = f & ~RFLAGS.IF;
  };
}

function flagOp(mask: number, value: "set" | "clear" | "toggle"): (cpu: Cpu) => void {
  return (cpu) => {
    const f = cpu.getRflags();
    cpu.rflags = value === "set" ? f | mask : value === "clear" ? f & ~mask : f ^ mask;
  };
}

/** 0F FF /r (UD0): the thunk escape when its ModRM is 05 and the id is registered; #UD otherwise. */
function ud0(cpu: Cpu, insn: Insn): void {
  if (insn.mod !== 0 || insn.rm !== 5 || (insn.reg & 7) !== 0 || insn.rex !== 0 || cpu.thunks === null)
    cpu.fault(VECTOR.UD);
  if (!cpu.thunks.execute(cpu, insn.disp >>> 0)) cpu.fault(VECTOR.UD);
}

/** 0F 01 C1 / D9: VMCALL and VMMCALL raise #UD unless the VMX layer intercepts them. */
function vmcall(kind: 0 | 1): (cpu: Cpu, insn: Insn) => void {
  return (cpu, insn) => {
    if (cpu.runIntercept(kind === 0 ? INTERCEPT.VMCALL : INTERCEPT.VMMCALL, insn, 0)) return;
    cpu.fault(VECTOR.UD);
  };
}

function pause(cpu: Cpu, insn: Insn): void {
  cpu.runIntercept(INTERCEPT.PAUSE, insn, 0);
}

/**
 * 9B: WAIT / FWAIT (SDM vol. 2B, WAIT) — #NM when CR0.MP and CR0.TS are both
 * set; otherwise nothing, because there is no x87 unit (CPUID.1:EDX.FPU is
 * clear) whose unmasked exception could be pending (#MF).
 */
function wait(cpu: Cpu): void {
  if ((cpu.cr0 & (CR0.MP | CR0.TS)) === (CR0.MP | CR0.TS)) cpu.fault(VECTOR.NM);
}

/** Registers the family. */
export function registerSystem(t: OpcodeTable): void {
  t.op(0xf4, hlt);
  t.op(0xfa, cliSti(false));
  t.op(0xfb, cliSti(true));
  t.op(0xf8, flagOp(RFLAGS.CF, "clear"));
  t.op(0xf9, flagOp(RFLAGS.CF, "set"));
  t.op(0xf5, flagOp(RFLAGS.CF, "toggle"));
  t.op(0xfc, flagOp(RFLAGS.DF, "clear"));
  t.op(0xfd, flagOp(RFLAGS.DF, "set"));
  t.op(0x1ff, ud0);
  t.op(0x10b, (cpu) => cpu.fault(VECTOR.UD)); // UD2
  t.sse(0x90, MANDATORY.PF3, pause);
  t.op(0x9b, wait);
  registerInterrupts(t);
  registerFarTransfers(t);
  registerPortIo(t);
  const cr = registerControlRegisters(t);
  const desc = registerDescriptorTables(t);
  registerGroup7(
    t,
    {
      193: vmcall(0),
      217: vmcall(1),
      ...registerMsrInstructions(t),
      ...registerSyscall(t),
      ...registerVmxRoutes(t),
      ...cr.regForms,
    },
    { ...desc, ...cr.memForms },
  );
}

/**
 * Group-7 register forms the SDM encodes as "NP 0F 01 xx": CLAC (CA), STAC
 * (CB) and VMFUNC (D4) raise #UD with a 66, F2 or F3 prefix (F2/F3 0F 01 CA
 * are FRED's ERETS/ERETU, which this processor does not have). The other
 * forms executed here (VMCALL, VMLAUNCH, VMRESUME, VMXOFF, SMSW, LMSW,
 * SWAPGS, RDTSCP) carry no NP in the SDM and ignore these prefixes.
 */
const NO_PREFIX_FORMS = new Set([0xca, 0xcb, 0xd4]);

/**
 * 0F 01 (group 7): with mod = 3 the whole ModRM byte selects the instruction
 * (VMCALL C1, VMMCALL D9, SWAPGS F8, RDTSCP F9 …); with a memory operand
 * ModRM.reg does (SGDT, SIDT, LGDT, LIDT, SMSW, LMSW, INVLPG).
 */
function registerGroup7(
  t: OpcodeTable,
  regForms: Record<number, (cpu: Cpu, insn: Insn) => void>,
  memForms: Record<number, (cpu: Cpu, insn: Insn) => void>,
): void {
  const byModrm = new Map(Object.entries(regForms).map(([k, h]) => [Number(k), h]));
  const byReg = new Map(Object.entries(memForms).map(([k, h]) => [Number(k), h]));
  t.op(0x101, (cpu, insn) => {
    let h: ((cpu: Cpu, insn: Insn) => void) | undefined;
    if (insn.mod === 3) {
      const modrm = 0xc0 | ((insn.reg & 7) << 3) | (insn.rm & 7);
      if (insn.mandatory === MANDATORY.NONE || !NO_PREFIX_FORMS.has(modrm)) h = byModrm.get(modrm);
    } else h = byReg.get(insn.reg & 7);
    if (h === undefined) return cpu.fault(VECTOR.UD);
    h(cpu, insn);
  });
}
