import { type Cpu, CR4 } from "../cpu";
import { CPUID81_EDX, cpuidLookup } from "../cpuid";
import type { Insn } from "../decode/insn";
import { INTERCEPT } from "../extensions";
import { VECTOR } from "../faults";
import { readMsr, writeMsr } from "../msr";
import type { OpcodeTable } from "./table";

/**
 * Processor identification, time-stamp counter, performance counters and MSR
 * access: CPUID, RDTSC, RDTSCP, RDPMC, RDMSR, WRMSR (SDM vol. 2A/2B, each
 * instruction). MSR semantics are in ../msr.ts.
 */

const TWO32 = 4294967296;

/** Writes EAX/EBX/ECX/EDX-style 32-bit results: the upper halves of the 64-bit registers are cleared. */
function set32(cpu: Cpu, reg: number, v: number): void {
  cpu.gpr[2 * reg] = v >>> 0;
  cpu.gpr[2 * reg + 1] = 0;
}

/**
 * 0F A2: CPUID, leaf in EAX, subleaf in ECX, from the processor's profile.
 * Leaf 1 reports this processor's index as its initial APIC id in EBX[31:24]
 * and CR4.OSXSAVE in ECX[27] (SDM vol. 2A, CPUID, table 3-8). The interceptor
 * runs first (`info` = 0; leaf and subleaf are in EAX and ECX).
 */
function cpuid(cpu: Cpu, insn: Insn): void {
  if (cpu.runIntercept(INTERCEPT.CPUID, insn, 0)) return;
  const leaf = cpu.gpr[0]!;
  const r = cpuidLookup(cpu.cpuid, leaf, cpu.gpr[2]!);
  let { ebx, ecx } = r;
  if (leaf === 1) {
    ebx = (ebx & 0x00ffffff) | ((cpu.index & 0xff) << 24);
    ecx = (ecx & ~(1 << 27)) | (cpu.cr4 & CR4.OSXSAVE ? 1 << 27 : 0);
  }
  set32(cpu, 0, r.eax);
  set32(cpu, 3, ebx);
  set32(cpu, 1, ecx);
  set32(cpu, 2, r.edx);
}

/** EDX:EAX ← TSC. CR4.TSD makes it privileged (#GP(0) at CPL > 0). */
function readTsc(cpu: Cpu): void {
  const t = cpu.tsc();
  set32(cpu, 0, t >>> 0);
  set32(cpu, 2, Math.floor(t / TWO32) >>> 0);
}

/** 0F 31: RDTSC. */
function rdtsc(cpu: Cpu, insn: Insn): void {
  if (cpu.cr4 & CR4.TSD && cpu.cpl > 0) cpu.fault(VECTOR.GP, 0);
  if (cpu.runIntercept(INTERCEPT.RDTSC, insn, 0)) return;
  readTsc(cpu);
}

/** 0F 01 F9: RDTSCP — RDTSC plus ECX ← IA32_TSC_AUX[31:0]; #UD unless CPUID advertises it. */
function rdtscp(cpu: Cpu, insn: Insn): void {
  if ((cpuidLookup(cpu.cpuid, 0x8000_0001, 0).edx & CPUID81_EDX.RDTSCP) === 0) cpu.fault(VECTOR.UD);
  if (cpu.cr4 & CR4.TSD && cpu.cpl > 0) cpu.fault(VECTOR.GP, 0);
  if (cpu.runIntercept(INTERCEPT.RDTSCP, insn, 0)) return;
  readTsc(cpu);
  set32(cpu, 1, cpu.tscAux);
}

/**
 * 0F 33: RDPMC, EDX:EAX ← performance counter ECX. #GP(0) at CPL > 0 with
 * CR4.PCE = 0; then the interceptor (INTERCEPT.OTHER, `info` = 0x133: that
 * privilege check has priority over a VM exit, SDM vol. 3C, 26.1.1); then
 * #GP(0) for an index that names no counter — which is every index: x86-core
 * models no performance-monitoring counters (the default profile's CPUID leaf
 * 0Ah reads as zeros: version 0, no general-purpose or fixed-function counters).
 */
function rdpmc(cpu: Cpu, insn: Insn): void {
  if (cpu.cpl > 0 && (cpu.cr4 & CR4.PCE) === 0) cpu.fault(VECTOR.GP, 0);
  if (cpu.runIntercept(INTERCEPT.OTHER, insn, insn.op)) return;
  cpu.fault(VECTOR.GP, 0);
}

/** 0F 32: RDMSR, EDX:EAX ← MSR[ECX]; #GP(0) at CPL > 0 or for an MSR that does not exist. Interceptor `info` = ECX. */
function rdmsr(cpu: Cpu, insn: Insn): void {
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
  const index = cpu.gpr[2]!;
  if (cpu.runIntercept(INTERCEPT.RDMSR, insn, index)) return;
  const v = readMsr(cpu, index);
  if (v === null) cpu.fault(VECTOR.GP, 0);
  set32(cpu, 0, Number(v & 0xffff_ffffn));
  set32(cpu, 2, Number(v >> 32n));
}

/** 0F 30: WRMSR, MSR[ECX] ← EDX:EAX; #GP(0) at CPL > 0 or when the MSR refuses the value. Interceptor `info` = ECX. */
function wrmsr(cpu: Cpu, insn: Insn): void {
  if (cpu.cpl !== 0) cpu.fault(VECTOR.GP, 0);
  const index = cpu.gpr[2]!;
  if (cpu.runIntercept(INTERCEPT.WRMSR, insn, index)) return;
  const v = (BigInt(cpu.gpr[4]!) << 32n) | BigInt(cpu.gpr[0]!);
  if (!writeMsr(cpu, index, v)) cpu.fault(VECTOR.GP, 0);
}

/** Registers CPUID, RDTSC, RDPMC, RDMSR, WRMSR; returns the group-7 register forms it implements (RDTSCP). */
export function registerMsrInstructions(t: OpcodeTable): Record<number, (cpu: Cpu, insn: Insn) => void> {
  t.op(0x1a2, cpuid);
  t.op(0x131, rdtsc);
  t.op(0x133, rdpmc);
  t.op(0x132, rdmsr);
  t.op(0x130, wrmsr);
  return { 249: rdtscp };
}
