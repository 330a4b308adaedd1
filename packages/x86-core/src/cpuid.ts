/** One CPUID leaf's result registers. */
export interface CpuidResult {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/**
 * CPUID leaves keyed by `leaf` or `leaf:subleaf` (hex, e.g. "7:0"). A leaf
 * absent from the profile returns the highest basic leaf's values, as Intel
 * processors do for leaves above the maximum.
 */
export type CpuidProfile = Map<string, CpuidResult>;

function ascii4(s: string): number {
  return (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
}

/** CPUID.1:EDX feature bits. */
export const CPUID1_EDX = {
  TSC: 1 << 4,
  MSR: 1 << 5,
  PAE: 1 << 6,
  CX8: 1 << 8,
  APIC: 1 << 9,
  PGE: 1 << 13,
  CMOV: 1 << 15,
  PAT: 1 << 16,
  CLFSH: 1 << 19,
  FXSR: 1 << 24,
  SSE: 1 << 25,
  SSE2: 1 << 26,
} as const;
/** CPUID.1:ECX feature bits. */
export const CPUID1_ECX = { VMX: 1 << 5, CX16: 1 << 13, POPCNT: 1 << 23, HYPERVISOR: 1 << 31 } as const;
/** CPUID.(7,0):EBX feature bits. */
export const CPUID7_EBX = { FSGSBASE: 1 << 0, BMI1: 1 << 3, SMEP: 1 << 7, SMAP: 1 << 20 } as const;
/** CPUID.80000001h:EDX / ECX feature bits. */
export const CPUID81_EDX = { SYSCALL: 1 << 11, NX: 1 << 20, PAGE1GB: 1 << 26, RDTSCP: 1 << 27, LM: 1 << 29 } as const;
export const CPUID81_ECX = { LAHF: 1 << 0, ABM: 1 << 5 } as const;

/**
 * The default profile: an Intel-style 64-bit processor advertising exactly
 * what x86-core implements — no x87 FPU, no AVX, no VMX (the vmx layer sets
 * CPUID.1:ECX.VMX when it is present).
 */
export function defaultCpuidProfile(): CpuidProfile {
  const p: CpuidProfile = new Map();
  p.set("0", { eax: 0xd, ebx: ascii4("Genu"), edx: ascii4("ineI"), ecx: ascii4("ntel") });
  p.set("1", {
    eax: 0x000306a9, // family 6, model 0x3a, stepping 9
    ebx: 0x00010800, // CLFLUSH line 8 qwords, 1 logical processor (APIC id patched per processor)
    ecx: CPUID1_ECX.CX16 | CPUID1_ECX.POPCNT,
    edx:
      CPUID1_EDX.TSC |
      CPUID1_EDX.MSR |
      CPUID1_EDX.PAE |
      CPUID1_EDX.CX8 |
      CPUID1_EDX.PGE |
      CPUID1_EDX.CMOV |
      CPUID1_EDX.PAT |
      CPUID1_EDX.CLFSH |
      CPUID1_EDX.FXSR |
      CPUID1_EDX.SSE |
      CPUID1_EDX.SSE2,
  });
  p.set("7:0", {
    eax: 0,
    // No BMI1: its VEX-encoded instructions (ANDN, BEXTR, BLSx) are not implemented, so TZCNT runs as BSF.
    ebx: CPUID7_EBX.FSGSBASE | CPUID7_EBX.SMEP | CPUID7_EBX.SMAP,
    ecx: 0,
    edx: 0,
  });
  p.set("d:0", { eax: 0, ebx: 0, ecx: 0, edx: 0 });
  p.set("80000000", { eax: 0x80000008, ebx: 0, ecx: 0, edx: 0 });
  p.set("80000001", {
    eax: 0,
    ebx: 0,
    ecx: CPUID81_ECX.LAHF | CPUID81_ECX.ABM,
    edx: CPUID81_EDX.SYSCALL | CPUID81_EDX.NX | CPUID81_EDX.PAGE1GB | CPUID81_EDX.RDTSCP | CPUID81_EDX.LM,
  });
  const brand = "visorlab x86-64 processor".padEnd(48, "\0");
  for (let k = 0; k < 3; k++) {
    const s = brand.slice(16 * k, 16 * k + 16);
    p.set((0x80000002 + k).toString(16), {
      eax: ascii4(s.slice(0, 4)),
      ebx: ascii4(s.slice(4, 8)),
      ecx: ascii4(s.slice(8, 12)),
      edx: ascii4(s.slice(12, 16)),
    });
  }
  p.set("80000008", { eax: 0x302e, ebx: 0, ecx: 0, edx: 0 }); // 46 physical, 48 linear address bits
  return p;
}

/** Looks a leaf up the way the CPUID instruction does. */
export function cpuidLookup(p: CpuidProfile, leaf: number, subleaf: number): CpuidResult {
  const l = leaf >>> 0;
  const direct = p.get(`${l.toString(16)}:${(subleaf >>> 0).toString(16)}`) ?? p.get(l.toString(16));
  if (direct !== undefined) return direct;
  const maxBasic = p.get("0")?.eax ?? 0;
  const maxExt = p.get("80000000")?.eax ?? 0;
  const inRange = l < 0x80000000 ? l <= maxBasic : l <= maxExt;
  if (inRange) return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
  // Intel: leaves above the maximum return the highest basic leaf.
  return p.get(maxBasic.toString(16)) ?? p.get(`${maxBasic.toString(16)}:0`) ?? { eax: 0, ebx: 0, ecx: 0, edx: 0 };
}

/**
 * A copy of `p` with `bits` set in register `reg` of leaf `key` ("7:0",
 * "80000001" …): to advertise a feature a test or a machine profile needs.
 */
export function withCpuidBits(p: CpuidProfile, key: string, reg: keyof CpuidResult, bits: number): CpuidProfile {
  const copy: CpuidProfile = new Map(p);
  const leaf = copy.get(key) ?? { eax: 0, ebx: 0, ecx: 0, edx: 0 };
  copy.set(key, { ...leaf, [reg]: (leaf[reg] | bits) >>> 0 });
  return copy;
}
