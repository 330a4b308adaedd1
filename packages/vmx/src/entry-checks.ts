import { INTERRUPTIBILITY, INTERRUPTION_TYPE, PIN_BASED, PROC_BASED, PROC_BASED2, VM_ENTRY, VM_EXIT } from "./controls";
import type { VmxControlCapability, VmxProfile } from "./profile";
import type { SecondLevelTranslation } from "./second-level";
import type { Vmcs } from "./vmcs";
import { SLOT } from "./vmcs-fields";

/**
 * The checks VM entry performs before loading guest state (SDM vol. 3C,
 * 26.2: controls and host state) and on the guest-state area (26.3.1). Each
 * returns true when the checks pass; they read the VMCS cache only.
 */

const TWO32 = 4294967296;

/** Whether a 32-bit control value respects its capability MSR (26.2.1). */
function allowed(value: number, cap: VmxControlCapability): boolean {
  return (value & cap.allowed0) >>> 0 === cap.allowed0 >>> 0 && (value & ~cap.allowed1) >>> 0 === 0;
}

/** A physical address field (given as halves) fits in MAXPHYADDR bits. */
function physOk(lo: number, hi: number, maxPhys: number): boolean {
  return hi < 2 ** (maxPhys - 32) && lo >= 0;
}

/** A 64-bit value given as halves is canonical (48-bit linear addresses). */
export function canonicalHalves(_lo: number, hi: number): boolean {
  const top = hi >> 15;
  return top === 0 || top === -1;
}

/** A valid IA32_PAT value: every byte 0, 1, 4, 5, 6 or 7 (SDM vol. 3A, 12.12.2). */
function patOk(lo: number, hi: number): boolean {
  for (const w of [lo, hi]) {
    for (let k = 0; k < 32; k += 8) {
      const t = (w >>> k) & 0xff;
      if (t > 7 || t === 2 || t === 3) return false;
    }
  }
  return true;
}

/** MSR-area address and count checks (26.2.1.2, 26.2.1.3): 16-byte aligned, last byte within MAXPHYADDR. */
function msrAreaOk(v: Vmcs, addrSlot: number, countSlot: number, maxPhys: number): boolean {
  const count = v.lo[countSlot]!;
  if (count === 0) return true;
  const lo = v.lo[addrSlot]!;
  const hi = v.hi[addrSlot]!;
  if ((lo & 0xf) !== 0) return false;
  const last = hi * TWO32 + lo + count * 16 - 1;
  return last < 2 ** maxPhys;
}

/** The context the control checks need besides the VMCS. */
export interface ControlCheckContext {
  readonly profile: VmxProfile;
  readonly maxPhysAddr: number;
  readonly secondLevel: SecondLevelTranslation | null;
}

/**
 * Checks on the VM-execution, VM-exit and VM-entry control fields (26.2.1).
 * Returns true when VM entry may proceed; false means VMfailValid(7).
 */
export function checkControls(v: Vmcs, ctx: ControlCheckContext): boolean {
  const p = ctx.profile;
  const lo = v.lo;
  const pin = lo[SLOT.PIN_BASED_VM_EXECUTION_CONTROLS]!;
  const proc = lo[SLOT.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS]!;
  const exit = lo[SLOT.VM_EXIT_CONTROLS]!;
  const entry = lo[SLOT.VM_ENTRY_CONTROLS]!;
  const t = p.trueControls;
  // 26.2.1.1 VM-execution control fields.
  if (!allowed(pin, t ? p.truePinBased : p.pinBased)) return false;
  if (!allowed(proc, t ? p.trueProcBased : p.procBased)) return false;
  const proc2 =
    proc & PROC_BASED.ACTIVATE_SECONDARY_CONTROLS ? lo[SLOT.SECONDARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS]! : 0;
  if (proc & PROC_BASED.ACTIVATE_SECONDARY_CONTROLS && !allowed(proc2, p.procBased2)) return false;
  if (lo[SLOT.CR3_TARGET_COUNT]! > p.misc.cr3TargetCount) return false;
  if (proc & PROC_BASED.USE_IO_BITMAPS) {
    for (const s of [SLOT.IO_BITMAP_A, SLOT.IO_BITMAP_B]) {
      if ((lo[s]! & 0xfff) !== 0 || !physOk(lo[s]!, v.hi[s]!, ctx.maxPhysAddr)) return false;
    }
  }
  if (proc & PROC_BASED.USE_MSR_BITMAPS) {
    const s = SLOT.MSR_BITMAP;
    if ((lo[s]! & 0xfff) !== 0 || !physOk(lo[s]!, v.hi[s]!, ctx.maxPhysAddr)) return false;
  }
  if ((proc & PROC_BASED.USE_TPR_SHADOW) === 0) {
    const needTpr =
      PROC_BASED2.VIRTUALIZE_X2APIC_MODE |
      PROC_BASED2.APIC_REGISTER_VIRTUALIZATION |
      PROC_BASED2.VIRTUAL_INTERRUPT_DELIVERY;
    if (proc2 & needTpr) return false;
  }
  if ((pin & PIN_BASED.NMI_EXITING) === 0 && pin & PIN_BASED.VIRTUAL_NMIS) return false;
  if ((pin & PIN_BASED.VIRTUAL_NMIS) === 0 && proc & PROC_BASED.NMI_WINDOW_EXITING) return false;
  if (proc2 & PROC_BASED2.ENABLE_VPID && (lo[SLOT.VIRTUAL_PROCESSOR_ID]! & 0xffff) === 0) return false;
  if (proc2 & PROC_BASED2.ENABLE_EPT) {
    const unit = ctx.secondLevel;
    // A processor whose EPT unit is missing could not have advertised EPT: the host composed the machine wrongly.
    if (unit === null) return false;
    if (v.hi[SLOT.EPT_POINTER]! >= 2 ** 21) return false;
    if (!unit.isValidEptp(v.unsigned(SLOT.EPT_POINTER))) return false;
  }
  if (proc2 & (PROC_BASED2.UNRESTRICTED_GUEST | PROC_BASED2.MODE_BASED_EXECUTE_CONTROL_FOR_EPT)) {
    if ((proc2 & PROC_BASED2.ENABLE_EPT) === 0) return false;
  }
  // 26.2.1.2 VM-exit control fields.
  if (!allowed(exit, t ? p.trueExit : p.exit)) return false;
  if ((pin & PIN_BASED.ACTIVATE_VMX_PREEMPTION_TIMER) === 0 && exit & VM_EXIT.SAVE_VMX_PREEMPTION_TIMER_VALUE)
    return false;
  if (!msrAreaOk(v, SLOT.VM_EXIT_MSR_STORE_ADDRESS, SLOT.VM_EXIT_MSR_STORE_COUNT, ctx.maxPhysAddr)) return false;
  if (!msrAreaOk(v, SLOT.VM_EXIT_MSR_LOAD_ADDRESS, SLOT.VM_EXIT_MSR_LOAD_COUNT, ctx.maxPhysAddr)) return false;
  // 26.2.1.3 VM-entry control fields.
  if (!allowed(entry, t ? p.trueEntry : p.entry)) return false;
  if (!checkEntryInterruption(v, ctx, proc)) return false;
  if (!msrAreaOk(v, SLOT.VM_ENTRY_MSR_LOAD_ADDRESS, SLOT.VM_ENTRY_MSR_LOAD_COUNT, ctx.maxPhysAddr)) return false;
  if (entry & (VM_ENTRY.ENTRY_TO_SMM | VM_ENTRY.DEACTIVATE_DUAL_MONITOR_TREATMENT)) return false;
  return true;
}

/** Exceptions that push an error code (and must inject one): #DF, #TS, #NP, #SS, #GP, #PF, #AC. */
function deliversErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
}

/** Checks on the VM-entry interruption-information field and its companions (26.2.1.3). */
export function checkEntryInterruption(v: Vmcs, ctx: ControlCheckContext, proc: number): boolean {
  const info = v.lo[SLOT.VM_ENTRY_INTERRUPTION_INFORMATION]!;
  if ((info & 0x80000000) === 0) return true;
  const vector = info & 0xff;
  const type = (info >>> 8) & 7;
  if (type === 1) return false;
  if (type === INTERRUPTION_TYPE.OTHER_EVENT && (proc & PROC_BASED.MONITOR_TRAP_FLAG) === 0 && !allowsMtf(ctx.profile))
    return false;
  if (type === INTERRUPTION_TYPE.NMI && vector !== 2) return false;
  if (type === INTERRUPTION_TYPE.HARDWARE_EXCEPTION && vector > 31) return false;
  if (type === INTERRUPTION_TYPE.OTHER_EVENT && vector !== 0) return false;
  const errValid = (info & 0x800) !== 0;
  const mustHaveErr = type === INTERRUPTION_TYPE.HARDWARE_EXCEPTION && deliversErrorCode(vector);
  if (errValid !== mustHaveErr) return false;
  if ((info & 0x7ffff000) !== 0) return false;
  if (errValid && (v.lo[SLOT.VM_ENTRY_EXCEPTION_ERROR_CODE]! & 0xffff8000) !== 0) return false;
  if (
    type === INTERRUPTION_TYPE.SOFTWARE_INTERRUPT ||
    type === INTERRUPTION_TYPE.PRIVILEGED_SOFTWARE_EXCEPTION ||
    type === INTERRUPTION_TYPE.SOFTWARE_EXCEPTION
  ) {
    const len = v.lo[SLOT.VM_ENTRY_INSTRUCTION_LENGTH]!;
    if (len > 15 || (len === 0 && !ctx.profile.misc.injectZeroLength)) return false;
  }
  return true;
}

function allowsMtf(p: VmxProfile): boolean {
  return (p.procBased.allowed1 & PROC_BASED.MONITOR_TRAP_FLAG) !== 0;
}

/** Whether CR0/CR4-style fixed bits hold for halves (bits 63:32 must be 0: FIXED1 has no high half). */
function fixedOk(lo: number, hi: number, fixed0: number, fixed1: number): boolean {
  return hi === 0 && (lo & fixed0) >>> 0 === fixed0 >>> 0 && (lo & ~fixed1) >>> 0 === 0;
}

/**
 * Checks on the host-state area (26.2.2 – 26.2.4) for a processor in IA-32e
 * mode (x86-core always is). Returns false for VMfailValid(8).
 */
export function checkHostState(v: Vmcs, p: VmxProfile, maxPhysAddr: number): boolean {
  const lo = v.lo;
  const hi = v.hi;
  const exit = lo[SLOT.VM_EXIT_CONTROLS]!;
  // 26.2.2 host control registers and MSRs.
  if (!fixedOk(lo[SLOT.HOST_CR0]!, hi[SLOT.HOST_CR0]!, p.cr0Fixed0, p.cr0Fixed1)) return false;
  if (!fixedOk(lo[SLOT.HOST_CR4]!, hi[SLOT.HOST_CR4]!, p.cr4Fixed0, p.cr4Fixed1)) return false;
  if (!physOk(lo[SLOT.HOST_CR3]!, hi[SLOT.HOST_CR3]!, maxPhysAddr)) return false;
  for (const s of [SLOT.HOST_IA32_SYSENTER_ESP, SLOT.HOST_IA32_SYSENTER_EIP]) {
    if (!canonicalHalves(lo[s]!, hi[s]!)) return false;
  }
  if (exit & VM_EXIT.LOAD_IA32_PAT && !patOk(lo[SLOT.HOST_IA32_PAT]!, hi[SLOT.HOST_IA32_PAT]!)) return false;
  const hostLong = (exit & VM_EXIT.HOST_ADDRESS_SPACE_SIZE) !== 0;
  if (exit & VM_EXIT.LOAD_IA32_EFER) {
    const e = lo[SLOT.HOST_IA32_EFER]!;
    if (hi[SLOT.HOST_IA32_EFER] !== 0 || (e & ~0xd01) !== 0) return false;
    if (((e >>> 10) & 1) !== (hostLong ? 1 : 0) || ((e >>> 8) & 1) !== (hostLong ? 1 : 0)) return false;
  }
  // 26.2.3 host segment and descriptor-table registers.
  for (const s of [
    SLOT.HOST_ES_SELECTOR,
    SLOT.HOST_CS_SELECTOR,
    SLOT.HOST_SS_SELECTOR,
    SLOT.HOST_DS_SELECTOR,
    SLOT.HOST_FS_SELECTOR,
    SLOT.HOST_GS_SELECTOR,
    SLOT.HOST_TR_SELECTOR,
  ]) {
    if ((lo[s]! & 7) !== 0) return false;
  }
  if (lo[SLOT.HOST_CS_SELECTOR] === 0 || lo[SLOT.HOST_TR_SELECTOR] === 0) return false;
  if (!hostLong && lo[SLOT.HOST_SS_SELECTOR] === 0) return false;
  for (const s of [SLOT.HOST_FS_BASE, SLOT.HOST_GS_BASE, SLOT.HOST_GDTR_BASE, SLOT.HOST_IDTR_BASE, SLOT.HOST_TR_BASE]) {
    if (!canonicalHalves(lo[s]!, hi[s]!)) return false;
  }
  // 26.2.4 address-space size: the processor is in IA-32e mode, so the host must be too.
  if (!hostLong) return false;
  if ((lo[SLOT.HOST_CR4]! & 0x20) === 0) return false;
  if (!canonicalHalves(lo[SLOT.HOST_RIP]!, hi[SLOT.HOST_RIP]!)) return false;
  return true;
}

/** Why a guest-state check failed: the exit qualification of a VM-entry failure (26.7). */
export const ENTRY_FAILURE_QUALIFICATION = {
  DEFAULT: 0,
  PDPTE_LOADING: 2,
  NMI_INJECTION_BLOCKED: 3,
  VMCS_LINK_POINTER: 4,
} as const;

/** Segment slots in ES, CS, SS, DS, FS, GS order. */
const SEGS = [
  [SLOT.GUEST_ES_SELECTOR, SLOT.GUEST_ES_BASE, SLOT.GUEST_ES_LIMIT, SLOT.GUEST_ES_ACCESS_RIGHTS],
  [SLOT.GUEST_CS_SELECTOR, SLOT.GUEST_CS_BASE, SLOT.GUEST_CS_LIMIT, SLOT.GUEST_CS_ACCESS_RIGHTS],
  [SLOT.GUEST_SS_SELECTOR, SLOT.GUEST_SS_BASE, SLOT.GUEST_SS_LIMIT, SLOT.GUEST_SS_ACCESS_RIGHTS],
  [SLOT.GUEST_DS_SELECTOR, SLOT.GUEST_DS_BASE, SLOT.GUEST_DS_LIMIT, SLOT.GUEST_DS_ACCESS_RIGHTS],
  [SLOT.GUEST_FS_SELECTOR, SLOT.GUEST_FS_BASE, SLOT.GUEST_FS_LIMIT, SLOT.GUEST_FS_ACCESS_RIGHTS],
  [SLOT.GUEST_GS_SELECTOR, SLOT.GUEST_GS_BASE, SLOT.GUEST_GS_LIMIT, SLOT.GUEST_GS_ACCESS_RIGHTS],
] as const;

const GUEST_SYSENTER = [SLOT.GUEST_IA32_SYSENTER_ESP, SLOT.GUEST_IA32_SYSENTER_EIP] as const;
const GUEST_CANONICAL_BASES = [SLOT.GUEST_TR_BASE, SLOT.GUEST_FS_BASE, SLOT.GUEST_GS_BASE] as const;
const GUEST_TABLE_BASES = [SLOT.GUEST_GDTR_BASE, SLOT.GUEST_IDTR_BASE] as const;

/** The G-bit rule for a limit (26.3.1.2): limit[11:0] not all ones → G = 0; limit[31:20] not zero → G = 1. */
function granularityOk(limit: number, ar: number): boolean {
  const g = (ar >>> 15) & 1;
  if ((limit & 0xfff) !== 0xfff && g === 1) return false;
  if (limit >>> 20 !== 0 && g === 0) return false;
  return true;
}

/**
 * Checks on the guest-state area (26.3.1) for the modes this processor runs
 * (IA-32e mode guests; no virtual-8086 mode, no unrestricted guest, no SMM).
 * Returns -1 when they pass, else the exit qualification of the VM-entry
 * failure (exit reason 33).
 */
export function checkGuestState(
  v: Vmcs,
  p: VmxProfile,
  maxPhysAddr: number,
  readRevision: (pa: number) => number,
): number {
  const lo = v.lo;
  const hi = v.hi;
  const F = ENTRY_FAILURE_QUALIFICATION.DEFAULT;
  const entry = lo[SLOT.VM_ENTRY_CONTROLS]!;
  const pin = lo[SLOT.PIN_BASED_VM_EXECUTION_CONTROLS]!;
  const ia32e = (entry & VM_ENTRY.IA32E_MODE_GUEST) !== 0;
  // 26.3.1.1 control registers, debug registers and MSRs.
  const cr0 = lo[SLOT.GUEST_CR0]!;
  const cr4 = lo[SLOT.GUEST_CR4]!;
  if (!fixedOk(cr0, hi[SLOT.GUEST_CR0]!, p.cr0Fixed0, p.cr0Fixed1)) return F;
  if (cr0 & 0x80000000 && (cr0 & 1) === 0) return F;
  if (!fixedOk(cr4, hi[SLOT.GUEST_CR4]!, p.cr4Fixed0, p.cr4Fixed1)) return F;
  if (ia32e) {
    if ((cr0 & 0x80000000) === 0 || (cr4 & 0x20) === 0) return F;
  } else if (cr4 & 0x20000) return F;
  // This processor only runs IA-32e mode: a guest outside it cannot be represented.
  if (!ia32e) return F;
  if (!physOk(lo[SLOT.GUEST_CR3]!, hi[SLOT.GUEST_CR3]!, maxPhysAddr)) return F;
  if (entry & VM_ENTRY.LOAD_DEBUG_CONTROLS) {
    const d = lo[SLOT.GUEST_IA32_DEBUGCTL]!;
    if ((d & 0x3c) !== 0 || (d & 0xffff0000) !== 0 || hi[SLOT.GUEST_IA32_DEBUGCTL] !== 0) return F;
    if (hi[SLOT.GUEST_DR7] !== 0) return F;
  }
  for (const s of GUEST_SYSENTER) if (!canonicalHalves(lo[s]!, hi[s]!)) return F;
  if (entry & VM_ENTRY.LOAD_IA32_PAT && !patOk(lo[SLOT.GUEST_IA32_PAT]!, hi[SLOT.GUEST_IA32_PAT]!)) return F;
  if (entry & VM_ENTRY.LOAD_IA32_EFER) {
    const e = lo[SLOT.GUEST_IA32_EFER]!;
    if (hi[SLOT.GUEST_IA32_EFER] !== 0 || (e & ~0xd01) !== 0) return F;
    if (((e >>> 10) & 1) !== (ia32e ? 1 : 0)) return F;
    if (cr0 & 0x80000000 && ((e >>> 8) & 1) !== (ia32e ? 1 : 0)) return F;
  }
  // 26.3.1.2 segment registers.
  const csSel = lo[SLOT.GUEST_CS_SELECTOR]!;
  const ssSel = lo[SLOT.GUEST_SS_SELECTOR]!;
  const trSel = lo[SLOT.GUEST_TR_SELECTOR]!;
  const ldtrSel = lo[SLOT.GUEST_LDTR_SELECTOR]!;
  const ldtrAr = lo[SLOT.GUEST_LDTR_ACCESS_RIGHTS]!;
  const ldtrUsable = (ldtrAr & 0x10000) === 0;
  if (trSel & 4) return F;
  if (ldtrUsable && ldtrSel & 4) return F;
  if ((ssSel & 3) !== (csSel & 3)) return F;
  for (const s of GUEST_CANONICAL_BASES) if (!canonicalHalves(lo[s]!, hi[s]!)) return F;
  if (ldtrUsable && !canonicalHalves(lo[SLOT.GUEST_LDTR_BASE]!, hi[SLOT.GUEST_LDTR_BASE]!)) return F;
  if (hi[SLOT.GUEST_CS_BASE] !== 0) return F;
  const csAr = lo[SLOT.GUEST_CS_ACCESS_RIGHTS]!;
  const ssAr = lo[SLOT.GUEST_SS_ACCESS_RIGHTS]!;
  const ssDpl = (ssAr >>> 5) & 3;
  for (let i = 0; i < 6; i++) {
    const [selS, baseS, limS, arS] = SEGS[i]!;
    const ar = lo[arS]!;
    const usable = (ar & 0x10000) === 0;
    const isCs = i === 1;
    if (!isCs && !usable) continue;
    if ((i === 0 || i === 2 || i === 3) && hi[baseS] !== 0) return F;
    const type = ar & 0xf;
    if (isCs) {
      if (type !== 9 && type !== 11 && type !== 13 && type !== 15) return F;
    } else if (i === 2) {
      if (type !== 3 && type !== 7) return F;
    } else {
      if ((type & 1) === 0) return F;
      if (type & 8 && (type & 2) === 0) return F;
    }
    if ((ar & 0x10) === 0) return F; // S
    const dpl = (ar >>> 5) & 3;
    if (isCs) {
      if ((type === 9 || type === 11) && dpl !== ssDpl) return F;
      if ((type === 13 || type === 15) && dpl > ssDpl) return F;
    } else if (i === 2) {
      if (dpl !== (ssSel & 3)) return F;
    } else if (type <= 11 && dpl < (lo[selS]! & 3)) return F;
    if ((ar & 0x80) === 0) return F; // P
    if ((ar & 0xf00) !== 0) return F;
    if (isCs && ia32e && ar & 0x2000 && ar & 0x4000) return F;
    if (!granularityOk(lo[limS]!, ar)) return F;
    if ((ar & 0xfffe0000) !== 0) return F;
  }
  const trAr = lo[SLOT.GUEST_TR_ACCESS_RIGHTS]!;
  if ((trAr & 0xf) !== 11) return F; // a busy 64-bit TSS in IA-32e mode
  if (trAr & 0x10 || (trAr & 0x80) === 0 || trAr & 0xf00 || trAr & 0x10000 || trAr & 0xfffe0000) return F;
  if (!granularityOk(lo[SLOT.GUEST_TR_LIMIT]!, trAr)) return F;
  if (ldtrUsable) {
    if ((ldtrAr & 0xf) !== 2 || ldtrAr & 0x10 || (ldtrAr & 0x80) === 0 || ldtrAr & 0xf00 || ldtrAr & 0xfffe0000)
      return F;
    if (!granularityOk(lo[SLOT.GUEST_LDTR_LIMIT]!, ldtrAr)) return F;
  }
  // 26.3.1.3 descriptor-table registers.
  for (const s of GUEST_TABLE_BASES) if (!canonicalHalves(lo[s]!, hi[s]!)) return F;
  if (lo[SLOT.GUEST_GDTR_LIMIT]! > 0xffff || lo[SLOT.GUEST_IDTR_LIMIT]! > 0xffff) return F;
  // 26.3.1.4 RIP and RFLAGS.
  const csL = (csAr & 0x2000) !== 0;
  if (!csL) {
    if (hi[SLOT.GUEST_RIP] !== 0) return F;
  } else if (!canonicalHalves(lo[SLOT.GUEST_RIP]!, hi[SLOT.GUEST_RIP]!)) return F;
  const rf = lo[SLOT.GUEST_RFLAGS]!;
  if (hi[SLOT.GUEST_RFLAGS] !== 0 || (rf & 0xffc08028) !== 0 || (rf & 2) === 0) return F;
  if (rf & 0x20000) return F; // VM must be 0 in IA-32e mode
  const intr = lo[SLOT.VM_ENTRY_INTERRUPTION_INFORMATION]!;
  const injecting = (intr & 0x80000000) !== 0;
  const injType = (intr >>> 8) & 7;
  if (injecting && injType === INTERRUPTION_TYPE.EXTERNAL_INTERRUPT && (rf & 0x200) === 0) return F;
  // 26.3.1.5 non-register state.
  const activity = lo[SLOT.GUEST_ACTIVITY_STATE]!;
  if (activity > 3) return F;
  if (activity === 1 && !p.misc.activityHlt) return F;
  if (activity === 2 && !p.misc.activityShutdown) return F;
  if (activity === 3 && !p.misc.activityWaitForSipi) return F;
  if (activity === 1 && ssDpl !== 0) return F;
  const ist = lo[SLOT.GUEST_INTERRUPTIBILITY_STATE]!;
  const stiMovSs = INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS;
  if (ist & stiMovSs && activity !== 0) return F;
  if (injecting) {
    const vec = intr & 0xff;
    if (activity === 1) {
      const ok =
        injType === INTERRUPTION_TYPE.EXTERNAL_INTERRUPT ||
        injType === INTERRUPTION_TYPE.NMI ||
        (injType === INTERRUPTION_TYPE.HARDWARE_EXCEPTION && (vec === 1 || vec === 18)) ||
        (injType === INTERRUPTION_TYPE.OTHER_EVENT && vec === 0);
      if (!ok) return F;
    } else if (activity === 2) {
      if (!(injType === INTERRUPTION_TYPE.NMI || (injType === INTERRUPTION_TYPE.HARDWARE_EXCEPTION && vec === 18)))
        return F;
    } else if (activity === 3) return F;
  }
  if ((ist & 0xffffffe0) !== 0) return F;
  if ((ist & stiMovSs) === stiMovSs) return F;
  if (ist & INTERRUPTIBILITY.BLOCKING_BY_STI && (rf & 0x200) === 0) return F;
  if (injecting && injType === INTERRUPTION_TYPE.EXTERNAL_INTERRUPT && ist & stiMovSs) return F;
  if (injecting && injType === INTERRUPTION_TYPE.NMI && ist & INTERRUPTIBILITY.BLOCKING_BY_MOV_SS) return F;
  if (ist & INTERRUPTIBILITY.BLOCKING_BY_SMI) return F;
  if (
    pin & PIN_BASED.VIRTUAL_NMIS &&
    injecting &&
    injType === INTERRUPTION_TYPE.NMI &&
    ist & INTERRUPTIBILITY.BLOCKING_BY_NMI
  )
    return F;
  if (ist & INTERRUPTIBILITY.ENCLAVE_INTERRUPTION) return F;
  // Pending debug exceptions: reserved bits 3:0 are B0–B3; 11:4, 13, 15, 63:17 reserved.
  const pde = lo[SLOT.GUEST_PENDING_DEBUG_EXCEPTIONS]!;
  if ((pde & 0xfffeaff0) !== 0 || hi[SLOT.GUEST_PENDING_DEBUG_EXCEPTIONS] !== 0) return F;
  if (ist & stiMovSs || activity === 1) {
    const bs = (pde >>> 14) & 1;
    const tf = (rf >>> 8) & 1;
    const btf = (lo[SLOT.GUEST_IA32_DEBUGCTL]! >>> 1) & 1;
    if (tf === 1 && btf === 0 && bs === 0) return F;
    if ((tf === 0 || btf === 1) && bs === 1) return F;
  }
  // VMCS link pointer: all ones, or a 4 KiB-aligned VMCS region with this revision (no VMCS shadowing here).
  const linkLo = lo[SLOT.VMCS_LINK_POINTER]!;
  const linkHi = hi[SLOT.VMCS_LINK_POINTER]!;
  if (linkLo !== 0xffffffff || linkHi !== 0xffffffff) {
    const q = ENTRY_FAILURE_QUALIFICATION.VMCS_LINK_POINTER;
    if ((linkLo & 0xfff) !== 0 || !physOk(linkLo, linkHi, maxPhysAddr)) return q;
    const rev = readRevision(linkHi * TWO32 + linkLo);
    if ((rev & 0x7fffffff) !== p.revisionId || rev & 0x80000000) return q;
  }
  return -1;
}
