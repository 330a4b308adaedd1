import type { Cpu } from "./cpu";
import { CPUID81_EDX, cpuidLookup } from "./cpuid";

/**
 * Model-specific registers x86-core implements (SDM vol. 4, table 2-2), their
 * RDMSR/WRMSR semantics, and the hook through which an upper layer adds its
 * own (the VMX capability MSRs, a local APIC that relocates on
 * IA32_APIC_BASE writes): {@link Cpu.handleMsr}.
 *
 * Where the value lives:
 * - IA32_EFER → `cpu.efer`; IA32_FS_BASE / IA32_GS_BASE → `cpu.segBase`;
 *   IA32_TSC → `cpu.tscOffset` (the TSC is `instret · rate + tscOffset`).
 * - The SYSCALL MSRs and IA32_TSC_AUX, used by instructions, as numbers on the
 *   processor (`starLo/starHi`, `lstar`, `cstar`, `fmask`, `kernelGsBase`, `tscAux`).
 * - The rest as bigints in `cpu.msrs`.
 */
export const MSR = {
  IA32_TSC: 0x10,
  IA32_APIC_BASE: 0x1b,
  IA32_FEATURE_CONTROL: 0x3a,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  IA32_PAT: 0x277,
  IA32_EFER: 0xc000_0080,
  /** SYSCALL/SYSRET selectors: bits 47:32 SYSCALL CS (SS = +8), bits 63:48 SYSRET base selector. */
  IA32_STAR: 0xc000_0081,
  /** SYSCALL target RIP in 64-bit mode. */
  IA32_LSTAR: 0xc000_0082,
  /** SYSCALL target RIP in compatibility mode (stored only: no compatibility mode here). */
  IA32_CSTAR: 0xc000_0083,
  /** SYSCALL RFLAGS mask ("SFMASK"): bits 31:0, upper half reserved. */
  IA32_FMASK: 0xc000_0084,
  IA32_FS_BASE: 0xc000_0100,
  IA32_GS_BASE: 0xc000_0101,
  /** Swapped with IA32_GS_BASE by SWAPGS. */
  IA32_KERNEL_GS_BASE: 0xc000_0102,
  /** Read by RDTSCP into ECX: bits 31:0, upper half reserved. */
  IA32_TSC_AUX: 0xc000_0103,
} as const;
/** An MSR number of {@link MSR}. */
export type MsrIndex = (typeof MSR)[keyof typeof MSR];

/**
 * An MSR implemented outside x86-core, installed with {@link Cpu.handleMsr}.
 * It takes precedence over x86-core's own implementation of the same index.
 * A missing callback makes that access raise #GP(0) (a read-only MSR has no `write`).
 */
export interface MsrHandler {
  /** RDMSR: the 64-bit value, or `null` to raise #GP(0). */
  read?(cpu: Cpu, index: number): bigint | null;
  /** WRMSR: `true` when the value was accepted, `false` to raise #GP(0). */
  write?(cpu: Cpu, index: number, value: bigint): boolean;
}

/** IA32_EFER bits software may write: SCE, LME, LMA (ignored), NXE (SDM vol. 3A, 2.2.1). */
const EFER_SCE = 1n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
const EFER_NXE = 1n << 11n;

/** IA32_PAT after reset: WB WT UC- UC WB WT UC- UC (SDM vol. 3A, 12.12.4). */
export const PAT_RESET = 0x0007_0406_0007_0406n;
/** IA32_MISC_ENABLE after reset: fast strings (bit 0), BTS and PEBS unavailable (bits 11, 12). */
export const MISC_ENABLE_RESET = 0x1801n;
/** IA32_APIC_BASE bits: BSP (bit 8, read-only), x2APIC enable (bit 10), global enable (bit 11). */
export const APIC_BASE = { BSP: 1n << 8n, EXTD: 1n << 10n, EN: 1n << 11n, DEFAULT_BASE: 0xfee0_0000n } as const;

const M32 = 0xffff_ffffn;
const TWO47 = 1n << 47n;

function signedCanonical(v: bigint): number | null {
  const s = BigInt.asIntN(64, v);
  return s < -TWO47 || s >= TWO47 ? null : Number(s);
}

function u64(n: number): bigint {
  return BigInt.asUintN(64, BigInt(n));
}

/** Puts every MSR x86-core implements in its reset state (called by {@link Cpu.reset64}). */
export function resetMsrs(cpu: Cpu): void {
  cpu.msrs.clear();
  cpu.msrs.set(MSR.IA32_APIC_BASE, APIC_BASE.DEFAULT_BASE | APIC_BASE.EN | (cpu.index === 0 ? APIC_BASE.BSP : 0n));
  cpu.msrs.set(MSR.IA32_FEATURE_CONTROL, 0n);
  cpu.msrs.set(MSR.IA32_SYSENTER_CS, 0n);
  cpu.msrs.set(MSR.IA32_SYSENTER_ESP, 0n);
  cpu.msrs.set(MSR.IA32_SYSENTER_EIP, 0n);
  cpu.msrs.set(MSR.IA32_MISC_ENABLE, MISC_ENABLE_RESET);
  cpu.msrs.set(MSR.IA32_PAT, PAT_RESET);
  cpu.starLo = 0;
  cpu.starHi = 0;
  cpu.lstar = 0;
  cpu.cstar = 0;
  cpu.fmask = 0;
  cpu.kernelGsBase = 0;
  cpu.tscAux = 0;
  cpu.tscOffset = 0;
}

/**
 * RDMSR semantics: the value of MSR `index`, or null when reading it raises
 * #GP(0) (an MSR this processor does not have). Handlers installed with
 * {@link Cpu.handleMsr} come first. Also the host's way to read an MSR.
 */
export function readMsr(cpu: Cpu, index: number): bigint | null {
  const h = cpu.msrHandlers.get(index >>> 0);
  if (h !== undefined) return h.read === undefined ? null : h.read(cpu, index >>> 0);
  switch (index >>> 0) {
    case MSR.IA32_EFER:
      return BigInt(cpu.efer >>> 0);
    case MSR.IA32_TSC:
      return BigInt.asUintN(64, BigInt(cpu.tsc()));
    case MSR.IA32_STAR:
      return (BigInt(cpu.starHi >>> 0) << 32n) | BigInt(cpu.starLo >>> 0);
    case MSR.IA32_LSTAR:
      return u64(cpu.lstar);
    case MSR.IA32_CSTAR:
      return u64(cpu.cstar);
    case MSR.IA32_FMASK:
      return BigInt(cpu.fmask >>> 0);
    case MSR.IA32_FS_BASE:
      return u64(cpu.segBase[4]!);
    case MSR.IA32_GS_BASE:
      return u64(cpu.segBase[5]!);
    case MSR.IA32_KERNEL_GS_BASE:
      return u64(cpu.kernelGsBase);
    case MSR.IA32_TSC_AUX:
      return BigInt(cpu.tscAux >>> 0);
    default:
      return cpu.msrs.get(index >>> 0) ?? null;
  }
}

/** A valid IA32_PAT: every byte a memory type 0, 1, 4, 5, 6 or 7 (SDM vol. 3A, 12.12.2). */
function validPat(v: bigint): boolean {
  for (let k = 0n; k < 64n; k += 8n) {
    const t = Number((v >> k) & 0xffn);
    if (t > 7 || t === 2 || t === 3) return false;
  }
  return true;
}

/**
 * WRMSR semantics: writes `value` (taken modulo 2^64) to MSR `index`; returns
 * false when the write raises #GP(0) — an unknown MSR, a reserved bit, a
 * non-canonical address, an invalid memory type, a locked IA32_FEATURE_CONTROL.
 * Handlers installed with {@link Cpu.handleMsr} come first. Also the host's way
 * to write an MSR (with the same checks).
 *
 * IA32_EFER: LMA is read-only (the written bit is ignored). This processor
 * only runs in 64-bit mode, so a write that clears LME raises #GP(0) (on
 * hardware that is so only while CR0.PG = 1). SCE and NXE need their CPUID
 * bits. Changing NXE flushes the TLB (it changes what a page walk means).
 */
export function writeMsr(cpu: Cpu, index: number, value: bigint): boolean {
  const idx = index >>> 0;
  const v = BigInt.asUintN(64, value);
  const h = cpu.msrHandlers.get(idx);
  if (h !== undefined) return h.write === undefined ? false : h.write(cpu, idx, v);
  switch (idx) {
    case MSR.IA32_EFER: {
      const ext = cpuidLookup(cpu.cpuid, 0x8000_0001, 0).edx;
      let allowed = EFER_LME | EFER_LMA;
      if (ext & CPUID81_EDX.SYSCALL) allowed |= EFER_SCE;
      if (ext & CPUID81_EDX.NX) allowed |= EFER_NXE;
      if ((v & ~allowed) !== 0n || (v & EFER_LME) === 0n) return false;
      const next = (Number(v & ~EFER_LMA) | (cpu.efer & Number(EFER_LMA))) >>> 0;
      if ((next ^ cpu.efer) & Number(EFER_NXE)) cpu.tlb.flushAll();
      cpu.efer = next;
      return true;
    }
    case MSR.IA32_TSC:
      // The TSC reads back as the written value from this instruction on (SDM vol. 3B, 18.17).
      cpu.tscOffset = Number(v) - cpu.instret * cpu.tscPerInstruction;
      return true;
    case MSR.IA32_STAR:
      cpu.starLo = Number(v & M32);
      cpu.starHi = Number(v >> 32n);
      return true;
    case MSR.IA32_LSTAR:
    case MSR.IA32_CSTAR:
    case MSR.IA32_FS_BASE:
    case MSR.IA32_GS_BASE:
    case MSR.IA32_KERNEL_GS_BASE: {
      const a = signedCanonical(v);
      if (a === null) return false;
      if (idx === MSR.IA32_LSTAR) cpu.lstar = a;
      else if (idx === MSR.IA32_CSTAR) cpu.cstar = a;
      else if (idx === MSR.IA32_FS_BASE) cpu.segBase[4] = a;
      else if (idx === MSR.IA32_GS_BASE) cpu.segBase[5] = a;
      else cpu.kernelGsBase = a;
      return true;
    }
    case MSR.IA32_FMASK:
    case MSR.IA32_TSC_AUX:
      if (v > M32) return false;
      if (idx === MSR.IA32_FMASK) cpu.fmask = Number(v);
      else cpu.tscAux = Number(v);
      return true;
    case MSR.IA32_SYSENTER_ESP:
    case MSR.IA32_SYSENTER_EIP:
      if (signedCanonical(v) === null) return false;
      cpu.msrs.set(idx, v);
      return true;
    case MSR.IA32_SYSENTER_CS:
    case MSR.IA32_MISC_ENABLE:
      cpu.msrs.set(idx, v);
      return true;
    case MSR.IA32_PAT:
      if (!validPat(v)) return false;
      cpu.msrs.set(idx, v);
      return true;
    case MSR.IA32_APIC_BASE: {
      // Bits 7:0, 9, 10 (no x2APIC) and MAXPHYADDR and up are reserved; BSP is read-only.
      const addrMask = ((1n << BigInt(cpu.maxPhysAddr)) - 1n) & ~0xfffn;
      if ((v & ~(addrMask | APIC_BASE.EN | APIC_BASE.BSP)) !== 0n) return false;
      const old = cpu.msrs.get(idx) ?? 0n;
      cpu.msrs.set(idx, (v & ~APIC_BASE.BSP) | (old & APIC_BASE.BSP));
      return true;
    }
    case MSR.IA32_FEATURE_CONTROL: {
      // Lock (bit 0), VMX inside SMX (1), VMX outside SMX (2); once locked, writes fault until reset.
      const old = cpu.msrs.get(idx) ?? 0n;
      if ((old & 1n) !== 0n || (v & ~7n) !== 0n) return false;
      cpu.msrs.set(idx, v);
      return true;
    }
    default:
      return false;
  }
}
