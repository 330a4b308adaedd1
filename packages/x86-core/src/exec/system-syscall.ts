import { type Cpu, CR4, canonical, EFER, SEG } from "../cpu";
import { CPUID7_EBX, cpuidLookup } from "../cpuid";
import { type Insn, MANDATORY } from "../decode/insn";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { getReg, setReg } from "./operands";
import type { OpcodeTable } from "./table";

/**
 * Fast system calls and the FS/GS bases: SYSCALL, SYSRET, SWAPGS,
 * RDFSBASE/RDGSBASE/WRFSBASE/WRGSBASE, and STAC/CLAC (SDM vol. 2, each
 * instruction).
 */

const TWO32 = 4294967296;
/** Flat 64-bit code, DPL 0 / 3 (VMCS access-rights format: type B, S, P, L, G). */
const CS64_DPL0 = 0xa09b;
const CS64_DPL3 = 0xa0fb;
/** Flat writable data, DPL 0 / 3 (type 3, S, P, D/B, G). */
const DATA_DPL0 = 0xc093;
const DATA_DPL3 = 0xc0f3;

function loadFlat(cpu: Cpu, seg: number, sel: number, attr: number): void {
  cpu.sel[seg] = sel & 0xffff;
  cpu.segAttr[seg] = attr;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = 0xffffffff;
}

/** Marks an interrupt window for the step loop when a pending interrupt became deliverable. */
function noteInterruptWindow(cpu: Cpu): void {
  if ((cpu.rflags & RFLAGS.IF) !== 0 && cpu.pendingIrqCount > 0) cpu.attention |= 1;
}

/**
 * 0F 05: SYSCALL from 64-bit mode. RCX ← next RIP, R11 ← RFLAGS, RFLAGS &=
 * ~IA32_FMASK, RIP ← IA32_LSTAR, CS ← STAR[47:32] & FFFC and SS ← STAR[47:32] + 8
 * loaded with fixed flat attributes (not from the GDT), CPL ← 0.
 * #UD when EFER.SCE = 0.
 */
function syscall(cpu: Cpu): void {
  if ((cpu.efer & EFER.SCE) === 0) cpu.fault(VECTOR.UD);
  const rip = cpu.rip;
  const f = cpu.getRflags();
  cpu.gpr[2] = rip >>> 0;
  cpu.gpr[3] = Math.floor(rip / TWO32) >>> 0;
  cpu.gpr[22] = f;
  cpu.gpr[23] = 0;
  cpu.setRflags(f & ~cpu.fmask & ~RFLAGS.RF);
  const sel = cpu.starHi & 0xffff;
  loadFlat(cpu, SEG.CS, sel & 0xfffc, CS64_DPL0);
  loadFlat(cpu, SEG.SS, sel + 8, DATA_DPL0);
  cpu.setCpl(0);
  cpu.rip = cpu.lstar;
}

/**
 * REX.W 0F 07: SYSRET to 64-bit mode. #UD when EFER.SCE = 0; #GP(0) at CPL > 0
 * or when RCX is not canonical (checked in ring 0, as Intel processors do).
 * RIP ← RCX, RFLAGS ← (R11 & 3C7FD7h) | 2, CS ← (STAR[63:48] + 16) | 3,
 * SS ← (STAR[63:48] + 8) | 3 with fixed flat DPL-3 attributes, CPL ← 3.
 * Without REX.W SYSRET would return to compatibility mode, which this
 * processor does not model: #UD.
 */
function sysret(cpu: Cpu, insn: Insn): void {
  if ((cpu.efer & EFER.SCE) === 0) cpu.fault(VECTOR.UD);
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
  if (insn.osize !== 8) cpu.fault(VECTOR.UD);
  const target = canonical(cpu.gpr[2]!, cpu.gpr[3]!);
  if (Number.isNaN(target)) cpu.fault(VECTOR.GP, 0);
  cpu.setRflags((cpu.gpr[22]! & 0x3c7fd7) | RFLAGS.FIXED1);
  const base = cpu.starHi >>> 16;
  loadFlat(cpu, SEG.CS, (base + 16) | 3, CS64_DPL3);
  loadFlat(cpu, SEG.SS, (base + 8) | 3, DATA_DPL3);
  cpu.setCpl(3);
  cpu.rip = target;
  noteInterruptWindow(cpu);
}

/** 0F 01 F8: SWAPGS exchanges the GS base with IA32_KERNEL_GS_BASE (CPL 0, else #GP(0)). */
function swapgs(cpu: Cpu): void {
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
  const gs = cpu.segBase[SEG.GS]!;
  cpu.segBase[SEG.GS] = cpu.kernelGsBase;
  cpu.kernelGsBase = gs;
}

/**
 * F3 (REX.W) 0F AE /0–/3 with a register operand: RDFSBASE, RDGSBASE,
 * WRFSBASE, WRGSBASE. #UD when CR4.FSGSBASE = 0 or for a memory operand;
 * a non-canonical 64-bit base → #GP(0). The 32-bit forms zero-extend.
 */
function fsgsBase(cpu: Cpu, insn: Insn): void {
  if (insn.mod !== 3 || (cpu.cr4 & CR4.FSGSBASE) === 0) cpu.fault(VECTOR.UD);
  const op = insn.reg & 7;
  const seg = op & 1 ? SEG.GS : SEG.FS;
  const size = insn.osize === 8 ? 8 : 4;
  if (op < 2) {
    const b = cpu.segBase[seg]!;
    setReg(cpu, insn.rm, size, b >>> 0, Math.floor(b / TWO32) >>> 0, insn.rex);
    return;
  }
  const lo = getReg(cpu, insn.rm, size, insn.rex);
  const hi = size === 8 ? cpu.hi : 0;
  const v = canonical(lo, hi);
  if (Number.isNaN(v)) cpu.fault(VECTOR.GP, 0);
  cpu.segBase[seg] = v;
}

/** 0F 01 CA / CB: CLAC and STAC set RFLAGS.AC; #UD at CPL > 0 or without SMAP in CPUID. */
function acFlag(set: boolean): (cpu: Cpu) => void {
  return (cpu) => {
    if ((cpuidLookup(cpu.cpuid, 7, 0).ebx & CPUID7_EBX.SMAP) === 0 || cpu.cpl !== 0) cpu.fault(VECTOR.UD);
    const f = cpu.getRflags();
    cpu.rflags = set ? f | RFLAGS.AC : f & ~RFLAGS.AC;
  };
}

/** Registers SYSCALL, SYSRET and the FS/GS-base instructions; returns the group-7 register forms (SWAPGS, CLAC, STAC). */
export function registerSyscall(t: OpcodeTable): Record<number, (cpu: Cpu, insn: Insn) => void> {
  t.op(0x105, syscall);
  t.op(0x107, sysret);
  for (let r = 0; r < 4; r++) t.sseGroup(0x1ae, MANDATORY.PF3, r, fsgsBase);
  return { 248: swapgs, 202: acFlag(false), 203: acFlag(true) };
}
