import { type Cpu, CR4, cpuidLookup, MSR, readMsr, VECTOR, writeMsr } from "@visorlab/x86-core";
import { ACTIVITY_STATE, INTERRUPTIBILITY, INTERRUPTION_TYPE, intrInfo, PIN_BASED, VM_EXIT } from "./controls";
import { VmxError } from "./errors";
import { EPT_QUAL } from "./exit-qualification";
import { EXIT_REASON } from "./exit-reasons";
import { ExitRecord, VmExitInfo } from "./exit-record";
import { installInterceptors } from "./intercepts";
import {
  VM_FAIL_INVALID,
  VM_SUCCEED,
  type VmEntryOutcome,
  type VmptrstOutcome,
  type VmreadOutcome,
  type VmxFailure,
  type VmxOutcome,
  vmFailValid,
  vmxFault,
} from "./outcome";
import { defaultVmxProfile, hasEptVpidCap, type VmxProfile, vmxCapabilityMsrs } from "./profile";
import { type GuestRunResult, runGuest } from "./run-loop";
import type { SecondLevelTranslation } from "./second-level";
import { MsrSwitch, noteGuestRip } from "./state-transfer";
import { TranslationContexts } from "./translation-contexts";
import { vmEntry } from "./vm-entry";
import { VM_INSTRUCTION_ERROR, type VmInstructionError } from "./vm-instruction-error";
import { LAUNCH_STATE, VMCS_REGION, Vmcs } from "./vmcs";
import { fieldType, fieldWidth, lookupField, SLOT, VMCS_FIELD_LIST, VMCS_TYPE, VMCS_WIDTH } from "./vmcs-fields";
import { EPT_VPID_CAP, FEATURE_CONTROL, VMX_MSR } from "./vmx-msrs";

const TWO32 = 4294967296;
const ALL_ONES = 0xffffffffffffffffn;

/**
 * The host's VM-exit handler. It runs after the exit has been performed
 * (guest state saved, host state loaded), may use every VMX instruction, and
 * resumes the guest with {@link VmxCpu.vmresume}. Returning `"stop"` makes
 * {@link VmxCpu.runGuest} return after the handler (resumed or not).
 */
export type VmExitHandler = (vcpu: VmxCpu, exit: VmExitInfo) => void | "stop";

/** Options of {@link VmxCpu}. */
export interface VmxCpuOptions {
  /** The VMX capabilities; default {@link defaultVmxProfile}. */
  profile?: VmxProfile;
  /** The VM-exit handler (can be set later through {@link VmxCpu.onExit}). */
  onExit?: VmExitHandler;
  /**
   * Whether firmware has locked IA32_FEATURE_CONTROL with "enable VMX outside
   * SMX" set (VMXON needs it). Default true.
   */
  firmwareEnablesVmx?: boolean;
}

/** Payload of the `cpu.exit` calls this layer makes. */
interface ExitToken {
  readonly vmx: VmxCpu;
}

/**
 * One logical processor with VMX: wraps an x86-core {@link Cpu} and offers the
 * VMX instructions as methods the (TypeScript) hypervisor calls, each
 * returning its SDM outcome as a value (SDM vol. 3C, chapters 23–30).
 *
 * The VMCS regions live in the simulated physical memory; the processor
 * caches the active ones (VMPTRLD reads a region, VMCLEAR writes it back).
 * VM entry performs the checks of chapter 26 and injects events; VM exits
 * (chapter 27) are produced by interceptors installed on the processor and
 * delivered to {@link onExit} from {@link runGuest}. Combined mappings are
 * cached in x86-core TLBs tagged by VPID and EPTP (28.3); a second-level
 * translation (EPT) is plugged in with {@link attachSecondLevel}.
 */
export class VmxCpu {
  /** The processor. */
  readonly cpu: Cpu;
  /** The VMX capabilities. */
  readonly profile: VmxProfile;
  /** The VM-exit handler. */
  onExit: VmExitHandler | null;
  /** Exit information of the last VM exit (reused object). */
  readonly lastExit = new VmExitInfo();
  /** Counts of VM exits by basic reason, and entries. */
  readonly stats = { entries: 0, exits: 0, byReason: new Float64Array(80) };

  /** @internal In VMX operation (after VMXON). */
  vmxOn = false;
  /** @internal The VMXON pointer. */
  vmxonPointer = -1;
  /** @internal In VMX non-root operation. */
  nonRoot = false;
  /** @internal The current VMCS. */
  current: Vmcs | null = null;
  /** @internal The second-level translation unit. */
  secondLevel: SecondLevelTranslation | null = null;
  /** @internal Cached controls of the running guest. */
  pin = 0;
  /** @internal */
  proc = 0;
  /** @internal */
  proc2 = 0;
  /** @internal */
  exitCtls = 0;

  /** @internal The pending VM exit (recorded by interceptors, performed by the run loop) and event delivery. */
  readonly px = new ExitRecord();
  /** @internal The address-translation caches. */
  readonly contexts: TranslationContexts;
  /** @internal The lazily switched MSRs. */
  readonly msrSwitch = new MsrSwitch();
  /** @internal Reads a VMCS region's revision identifier (VMCS link pointer check). */
  readonly readRevision = (pa: number): number => this.cpu.mem.read(pa, 4);
  /** @internal The TSC offset added to the processor's TSC while the guest runs. */
  tscOffsetApplied = 0;
  /** @internal The root's NMI blocking, kept while virtual NMIs stand for the guest's. */
  rootNmiBlocked = false;
  /** @internal The guest executed HLT (activity state HLT until an event wakes it). */
  guestHalted = false;
  /** @internal Guest activity state shutdown or wait-for-SIPI. */
  guestParked: number = ACTIVITY_STATE.ACTIVE;
  /** @internal NMI blocking as it was before the current instruction (for bit 12 of exit qualifications). */
  nmiShadow = false;
  /** @internal An INIT signal is pending. */
  pendingInit = false;
  /** @internal A start-up IPI's vector is pending, or -1. */
  pendingSipi = -1;
  /** @internal A pending MTF VM exit was injected. */
  mtfDue = false;
  private readonly active = new Map<number, Vmcs>();
  private readonly token: ExitToken = { vmx: this };
  private readonly capMsrs: Map<number, bigint>;

  constructor(cpu: Cpu, opts: VmxCpuOptions = {}) {
    this.cpu = cpu;
    this.profile = opts.profile ?? defaultVmxProfile();
    this.onExit = opts.onExit ?? null;
    this.contexts = new TranslationContexts(cpu.tlb);
    // CPUID.1:ECX.VMX[bit 5] (SDM vol. 3C, 23.6); the profile map is copied so other processors are unaffected.
    const l1 = cpuidLookup(cpu.cpuid, 1, 0);
    cpu.cpuid = new Map(cpu.cpuid);
    cpu.cpuid.set("1", { ...l1, ecx: (l1.ecx | (1 << 5)) >>> 0 });
    this.capMsrs = vmxCapabilityMsrs(this.profile);
    for (const index of Object.values(VMX_MSR)) {
      if (index === VMX_MSR.IA32_FEATURE_CONTROL) continue;
      const value = this.capMsrs.get(index);
      if (value === undefined) continue;
      // Read-only: WRMSR raises #GP(0) (no write callback).
      cpu.handleMsr(index, { read: () => value });
    }
    if (opts.firmwareEnablesVmx ?? true) {
      const fc = readMsr(cpu, MSR.IA32_FEATURE_CONTROL) ?? 0n;
      if ((fc & 1n) === 0n)
        writeMsr(cpu, MSR.IA32_FEATURE_CONTROL, BigInt(FEATURE_CONTROL.LOCK | FEATURE_CONTROL.ENABLE_VMX_OUTSIDE_SMX));
    }
    installInterceptors(this);
  }

  // ------------------------------------------------------------------ queries

  /** True after VMXON and before VMXOFF. */
  get inVmxOperation(): boolean {
    return this.vmxOn;
  }

  /** True while the processor is in VMX non-root operation (between VM entry and VM exit). */
  get inGuest(): boolean {
    return this.nonRoot;
  }

  /** The current-VMCS pointer, or all ones when there is none. */
  get currentVmcsPointer(): bigint {
    return this.current === null ? ALL_ONES : BigInt(this.current.address);
  }

  /** The value of a VMX capability MSR of this processor's profile (undefined when absent). */
  capability(index: number): bigint | undefined {
    return this.capMsrs.get(index);
  }

  // ------------------------------------------------------------------ helpers

  /** @internal Host misuse checks common to the VMX instruction methods. */
  requireRoot(op: string): void {
    if (this.abortIndicator !== 0)
      throw new VmxError("STATE", `${op} after a VMX abort: the processor is shut down`, {
        indicator: this.abortIndicator,
      });
    if (this.nonRoot)
      throw new VmxError("STATE", `${op} from the host while the processor is in VMX non-root operation`, { op });
  }

  /** @internal The common first checks of VMX instructions other than VMXON (30.3): #UD outside VMX operation, #GP(0) at CPL > 0. */
  preamble(): VmxFailure | null {
    if (!this.vmxOn) return vmxFault(VECTOR.UD);
    if (this.cpu.cpl > 0) return vmxFault(VECTOR.GP, 0);
    return null;
  }

  /** @internal VMfail(n): VMfailValid with the error stored in the current VMCS, or VMfailInvalid when there is none (30.2). */
  vmFail(error: VmInstructionError): VmxFailure {
    const v = this.current;
    if (v === null) return VM_FAIL_INVALID;
    v.lo[SLOT.VM_INSTRUCTION_ERROR] = error;
    return vmFailValid(error);
  }

  private static address(name: string, pa: number | bigint): number {
    if (typeof pa === "bigint") {
      if (pa < 0n || pa >= 1n << 64n) throw new VmxError("INVALID_ARGUMENT", `${name}: not a 64-bit value`, { pa });
      if (pa >= 1n << 53n) return Number.POSITIVE_INFINITY;
      return Number(pa);
    }
    if (typeof pa !== "number" || !Number.isInteger(pa) || pa < 0)
      throw new VmxError("INVALID_ARGUMENT", `${name}: a physical address must be a non-negative integer`, { pa });
    return pa;
  }

  /** A physical address usable as a VMXON/VMCS pointer: 4 KiB aligned and within MAXPHYADDR (30.3). */
  private validRegionAddress(pa: number): boolean {
    return Number.isFinite(pa) && pa % 4096 === 0 && pa < 2 ** this.cpu.maxPhysAddr;
  }

  private fixedBitsOk(): boolean {
    const p = this.profile;
    const cr0 = this.cpu.cr0 >>> 0;
    const cr4 = this.cpu.cr4 >>> 0;
    return (
      (cr0 & p.cr0Fixed0) >>> 0 === p.cr0Fixed0 >>> 0 &&
      (cr0 & ~p.cr0Fixed1) >>> 0 === 0 &&
      (cr4 & p.cr4Fixed0) >>> 0 === p.cr4Fixed0 >>> 0 &&
      (cr4 & ~p.cr4Fixed1) >>> 0 === 0
    );
  }

  // ------------------------------------------------------------------ VMX instructions

  /**
   * VMXON (SDM vol. 3C, 30.3): enters VMX operation with the VMXON region at
   * `pa`. #UD when CR4.VMXE = 0; VMfail(15) in VMX operation; #GP(0) at
   * CPL > 0, with CR0/CR4 bits outside the FIXED MSRs, or when
   * IA32_FEATURE_CONTROL is unlocked or has VMX outside SMX disabled;
   * VMfailInvalid for a bad address or revision identifier.
   */
  vmxon(pa: number | bigint): VmxOutcome {
    this.requireRoot("VMXON");
    const addr = VmxCpu.address("vmxon", pa);
    const cpu = this.cpu;
    if ((cpu.cr4 & CR4.VMXE) === 0) return vmxFault(VECTOR.UD);
    if (this.vmxOn) return this.vmFail(VM_INSTRUCTION_ERROR.VMXON_EXECUTED_IN_VMX_ROOT_OPERATION);
    if (cpu.cpl > 0 || !this.fixedBitsOk()) return vmxFault(VECTOR.GP, 0);
    const fc = readMsr(cpu, MSR.IA32_FEATURE_CONTROL) ?? 0n;
    if ((fc & 1n) === 0n || (fc & BigInt(FEATURE_CONTROL.ENABLE_VMX_OUTSIDE_SMX)) === 0n) return vmxFault(VECTOR.GP, 0);
    if (!this.validRegionAddress(addr)) return VM_FAIL_INVALID;
    const rev = cpu.mem.read(addr, 4);
    if ((rev & 0x7fffffff) !== this.profile.revisionId || rev & 0x80000000) return VM_FAIL_INVALID;
    this.vmxOn = true;
    this.vmxonPointer = addr;
    this.current = null;
    return VM_SUCCEED;
  }

  /** VMXOFF: leaves VMX operation (30.3). Active VMCS data is written back to the regions. */
  vmxoff(): VmxOutcome {
    this.requireRoot("VMXOFF");
    const f = this.preamble();
    if (f !== null) return f;
    for (const v of this.active.values()) v.storeTo(this.cpu.mem);
    this.active.clear();
    this.current = null;
    this.vmxOn = false;
    this.vmxonPointer = -1;
    return VM_SUCCEED;
  }

  /**
   * VMCLEAR (30.3): writes the VMCS at `pa` back to its region, sets its
   * launch state to clear and makes it inactive (not current). VMfail(2) for
   * a bad address, VMfail(3) for the VMXON pointer.
   */
  vmclear(pa: number | bigint): VmxOutcome {
    this.requireRoot("VMCLEAR");
    const addr = VmxCpu.address("vmclear", pa);
    const f = this.preamble();
    if (f !== null) return f;
    if (!this.validRegionAddress(addr)) return this.vmFail(VM_INSTRUCTION_ERROR.VMCLEAR_WITH_INVALID_PHYSICAL_ADDRESS);
    if (addr === this.vmxonPointer) return this.vmFail(VM_INSTRUCTION_ERROR.VMCLEAR_WITH_VMXON_POINTER);
    const v = this.active.get(addr);
    if (v !== undefined) {
      v.launchState = LAUNCH_STATE.CLEAR;
      v.storeTo(this.cpu.mem);
      this.active.delete(addr);
      if (this.current === v) this.current = null;
    } else this.cpu.mem.write(addr + VMCS_REGION.LAUNCH_STATE, 4, LAUNCH_STATE.CLEAR);
    return VM_SUCCEED;
  }

  /**
   * VMPTRLD (30.3): makes the VMCS at `pa` current (and active). VMfail(9)
   * for a bad address, VMfail(10) for the VMXON pointer, VMfail(11) when the
   * region's revision identifier differs from IA32_VMX_BASIC's (or names a
   * shadow VMCS, which this processor does not support).
   */
  vmptrld(pa: number | bigint): VmxOutcome {
    this.requireRoot("VMPTRLD");
    const addr = VmxCpu.address("vmptrld", pa);
    const f = this.preamble();
    if (f !== null) return f;
    if (!this.validRegionAddress(addr)) return this.vmFail(VM_INSTRUCTION_ERROR.VMPTRLD_WITH_INVALID_PHYSICAL_ADDRESS);
    if (addr === this.vmxonPointer) return this.vmFail(VM_INSTRUCTION_ERROR.VMPTRLD_WITH_VMXON_POINTER);
    const rev = this.cpu.mem.read(addr, 4);
    if ((rev & 0x7fffffff) !== this.profile.revisionId || rev & 0x80000000)
      return this.vmFail(VM_INSTRUCTION_ERROR.VMPTRLD_WITH_INCORRECT_VMCS_REVISION_IDENTIFIER);
    let v = this.active.get(addr);
    if (v === undefined) {
      v = new Vmcs(addr);
      v.loadFrom(this.cpu.mem);
      this.active.set(addr, v);
    }
    this.current = v;
    return VM_SUCCEED;
  }

  /** VMPTRST (30.3): the current-VMCS pointer (all ones when there is none). */
  vmptrst(): VmptrstOutcome {
    this.requireRoot("VMPTRST");
    const f = this.preamble();
    if (f !== null) return f;
    return { ok: true, kind: "VMsucceed", value: this.currentVmcsPointer };
  }

  /**
   * VMREAD (30.3): reads a field of the current VMCS. VMfailInvalid without a
   * current VMCS; VMfail(12) for an encoding this processor does not
   * support. 16- and 32-bit fields are zero-extended; a high-access encoding
   * reads bits 63:32 of a 64-bit field.
   */
  vmread(encoding: number | bigint): VmreadOutcome {
    this.requireRoot("VMREAD");
    VmxCpu.checkEncodingType(encoding);
    const f = this.preamble();
    if (f !== null) return f;
    const v = this.current;
    if (v === null) return VM_FAIL_INVALID;
    const s = lookupField(encoding);
    if (s < 0) return this.vmFail(VM_INSTRUCTION_ERROR.VMREAD_VMWRITE_FROM_TO_UNSUPPORTED_VMCS_COMPONENT);
    const slot = s >> 1;
    const value = s & 1 ? BigInt(v.hi[slot]!) : v.get64(slot);
    return { ok: true, kind: "VMsucceed", value };
  }

  /**
   * VMWRITE (30.3): writes a field of the current VMCS, truncating the value
   * to the field's width. VMfailInvalid without a current VMCS; VMfail(12)
   * for an unsupported encoding; VMfail(13) for a read-only (VM-exit
   * information) field unless IA32_VMX_MISC bit 29 allows it.
   */
  vmwrite(encoding: number | bigint, value: number | bigint): VmxOutcome {
    this.requireRoot("VMWRITE");
    VmxCpu.checkEncodingType(encoding);
    const [lo, hi] = VmxCpu.halves(value);
    const f = this.preamble();
    if (f !== null) return f;
    const v = this.current;
    if (v === null) return VM_FAIL_INVALID;
    const s = lookupField(encoding);
    if (s < 0) return this.vmFail(VM_INSTRUCTION_ERROR.VMREAD_VMWRITE_FROM_TO_UNSUPPORTED_VMCS_COMPONENT);
    const slot = s >> 1;
    const enc = VMCS_FIELD_LIST[slot]![1];
    if (fieldType(enc) === VMCS_TYPE.EXIT_INFORMATION && !this.profile.misc.vmwriteExitInformation)
      return this.vmFail(VM_INSTRUCTION_ERROR.VMWRITE_TO_READ_ONLY_VMCS_COMPONENT);
    if (s & 1) v.setHigh(slot, lo);
    else v.set(slot, lo, hi);
    return VM_SUCCEED;
  }

  private static checkEncodingType(encoding: unknown): void {
    if (typeof encoding === "bigint") return;
    if (typeof encoding !== "number" || !Number.isInteger(encoding))
      throw new VmxError("INVALID_ARGUMENT", "a VMCS field encoding must be an integer", { encoding });
  }

  private static halves(value: unknown): [number, number] {
    if (typeof value === "bigint") {
      const u = BigInt.asUintN(64, value);
      return [Number(u & 0xffffffffn), Number(u >> 32n)];
    }
    if (typeof value !== "number" || !Number.isSafeInteger(value))
      throw new VmxError("INVALID_ARGUMENT", "a VMCS field value must be a bigint or a safe integer", { value });
    return [value >>> 0, Math.floor(value / TWO32) >>> 0];
  }

  /**
   * Reads a field of the current VMCS as a JS number (natural-width and
   * 64-bit fields as signed values, exact within ±2^53) — the fast path of
   * VMREAD for host code. Throws {@link VmxError} (`VM_FAIL`) where VMREAD
   * would fail.
   */
  readField(encoding: number): number {
    const v = this.current;
    const s = lookupField(encoding);
    if (v === null || s < 0 || !this.vmxOn || this.nonRoot)
      throw new VmxError("VM_FAIL", "VMREAD would fail", { encoding, outcome: this.nonRoot ? "non-root" : undefined });
    const slot = s >> 1;
    if (s & 1) return v.hi[slot]!;
    const w = fieldWidth(encoding);
    if (w === VMCS_WIDTH.BITS16 || w === VMCS_WIDTH.BITS32) return v.lo[slot]!;
    return (v.hi[slot]! | 0) * TWO32 + v.lo[slot]!;
  }

  /**
   * Writes a field of the current VMCS from a JS number (negative numbers are
   * two's complement) — the fast path of VMWRITE. Throws {@link VmxError}
   * (`VM_FAIL`) where VMWRITE would fail.
   */
  writeField(encoding: number, value: number): void {
    const o = this.vmwrite(encoding, value);
    if (!o.ok) throw new VmxError("VM_FAIL", "VMWRITE failed", { encoding, value, outcome: o });
  }

  /**
   * Host convenience after an instruction exit the host emulated: adds the
   * VM-exit instruction length to the guest RIP and clears blocking by STI
   * and by MOV SS (as the instruction has now completed).
   */
  skipInstruction(): void {
    const v = this.current;
    if (v === null || this.nonRoot) throw new VmxError("STATE", "no current VMCS in VMX root operation");
    const rip = (v.hi[SLOT.GUEST_RIP]! | 0) * TWO32 + v.lo[SLOT.GUEST_RIP]! + v.lo[SLOT.VM_EXIT_INSTRUCTION_LENGTH]!;
    v.lo[SLOT.GUEST_RIP] = rip >>> 0;
    v.hi[SLOT.GUEST_RIP] = Math.floor(rip / TWO32) >>> 0;
    v.lo[SLOT.GUEST_INTERRUPTIBILITY_STATE]! &= ~(
      INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
    );
    noteGuestRip(v, rip);
    // Past the top of the canonical range the next entry must re-check (and fail).
    if (rip >= 2 ** 47) v.guestVersion++;
  }

  /** VMLAUNCH (30.3): VM entry with a clear VMCS (VMfail(4) otherwise); see {@link vmresume}. */
  vmlaunch(): VmEntryOutcome {
    return vmEntry(this, true);
  }

  /**
   * VMRESUME (30.3): VM entry with a launched VMCS (VMfail(5) otherwise).
   * The checks of chapter 26 run in order: controls (VMfail(7)), host state
   * (VMfail(8)), then guest state and MSR loading, whose failure is a
   * VM-entry failure (exit reason 33 / 34 with bit 31 set, host state
   * loaded). On success the guest state is loaded, any event in the VM-entry
   * interruption-information field is delivered through the guest IDT, and
   * the guest runs on the next {@link runGuest}.
   */
  vmresume(): VmEntryOutcome {
    return vmEntry(this, false);
  }

  // ------------------------------------------------------------------ INVEPT / INVVPID

  /**
   * INVEPT (30.3): invalidates guest-physical and combined mappings — type 1
   * (single-context) those derived from `eptp`'s EPTRTA, type 2
   * (all-context) all of them. #UD when INVEPT is not supported; VMfail(28)
   * for an unsupported type or (single-context) an invalid EPTP.
   */
  invept(type: number, eptp: number | bigint): VmxOutcome {
    this.requireRoot("INVEPT");
    const e = VmxCpu.address("invept", eptp);
    if (!this.vmxOn || !hasEptVpidCap(this.profile, EPT_VPID_CAP.INVEPT)) return vmxFault(VECTOR.UD);
    if (this.cpu.cpl > 0) return vmxFault(VECTOR.GP, 0);
    const typeOk =
      (type === 1 && hasEptVpidCap(this.profile, EPT_VPID_CAP.INVEPT_SINGLE_CONTEXT)) ||
      (type === 2 && hasEptVpidCap(this.profile, EPT_VPID_CAP.INVEPT_ALL_CONTEXT));
    if (!typeOk) return this.vmFail(VM_INSTRUCTION_ERROR.INVALID_OPERAND_TO_INVEPT_INVVPID);
    if (type === 1) {
      const unit = this.secondLevel;
      if (unit === null || !Number.isFinite(e) || !unit.isValidEptp(e))
        return this.vmFail(VM_INSTRUCTION_ERROR.INVALID_OPERAND_TO_INVEPT_INVVPID);
      this.contexts.invalidateEpt(e);
      unit.invalidate(1, e);
    } else {
      this.contexts.invalidateEpt(null);
      this.secondLevel?.invalidate(2, 0);
    }
    return VM_SUCCEED;
  }

  /**
   * INVVPID (30.3): invalidates linear and combined mappings by VPID — type 0
   * one linear address of one VPID, 1 one VPID, 2 every VPID but 0000H,
   * 3 one VPID except global translations. #UD when INVVPID is not
   * supported; VMfail(28) for an unsupported type, VPID 0 (types 0, 1, 3), a
   * VPID above 16 bits, or a non-canonical address (type 0).
   */
  invvpid(type: number, vpid: number, linear: number | bigint = 0): VmxOutcome {
    this.requireRoot("INVVPID");
    if (!this.vmxOn || !hasEptVpidCap(this.profile, EPT_VPID_CAP.INVVPID)) return vmxFault(VECTOR.UD);
    if (this.cpu.cpl > 0) return vmxFault(VECTOR.GP, 0);
    if (typeof vpid !== "number" || !Number.isInteger(vpid) || vpid < 0)
      throw new VmxError("INVALID_ARGUMENT", "invvpid: the VPID must be a non-negative integer", { vpid });
    const capBit = [
      EPT_VPID_CAP.INVVPID_INDIVIDUAL_ADDRESS,
      EPT_VPID_CAP.INVVPID_SINGLE_CONTEXT,
      EPT_VPID_CAP.INVVPID_ALL_CONTEXT,
      EPT_VPID_CAP.INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS,
    ][type];
    const fail = () => this.vmFail(VM_INSTRUCTION_ERROR.INVALID_OPERAND_TO_INVEPT_INVVPID);
    if (capBit === undefined || !hasEptVpidCap(this.profile, capBit)) return fail();
    if (vpid > 0xffff) return fail();
    if (type !== 2 && vpid === 0) return fail();
    let lin = 0;
    if (type === 0) {
      lin = typeof linear === "bigint" ? Number(BigInt.asIntN(64, linear)) : linear;
      if (!Number.isInteger(lin) || lin < -(2 ** 47) || lin >= 2 ** 47) return fail();
    }
    this.contexts.invalidateVpid(type, vpid, lin);
    return VM_SUCCEED;
  }

  // ------------------------------------------------------------------ second level

  /**
   * Attaches the second-level translation (`@visorlab/ept` does this).
   * Returns a function that detaches it. Throws when one is attached already.
   */
  attachSecondLevel(unit: SecondLevelTranslation): () => void {
    if (this.secondLevel !== null) throw new VmxError("STATE", "a second-level translation is already attached");
    this.secondLevel = unit;
    return () => {
      if (this.secondLevel === unit) this.secondLevel = null;
    };
  }

  /**
   * Called by the second-level translation on an EPT violation (28.2.3.2):
   * records exit 48 with the qualification bits 0–8 the unit computed (this
   * adds bit 12, NMI unblocking due to IRET) and ends the instruction.
   * `linear` is NaN when the guest-linear address is not valid.
   */
  eptViolation(qualification: number, gpa: number, linear: number): never {
    let q = qualification;
    if (this.iretUnblockedNmi()) q |= EPT_QUAL.NMI_UNBLOCKING_DUE_TO_IRET;
    this.recordExit(EXIT_REASON.EPT_VIOLATION, q, 0, 0);
    this.px.gpa = gpa;
    if (q & EPT_QUAL.LINEAR_VALID) this.px.gla = linear;
    return this.cpu.exit(this.token);
  }

  /** Called by the second-level translation on an EPT misconfiguration (28.2.3.1): exit 49. */
  eptMisconfiguration(gpa: number): never {
    this.recordExit(EXIT_REASON.EPT_MISCONFIGURATION, 0, 0, 0);
    this.px.gpa = gpa;
    return this.cpu.exit(this.token);
  }

  /**
   * @internal Whether the current instruction is an IRET that unblocked NMIs
   * (bit 12 of EPT-violation qualifications and of VM-exit interruption
   * information, 27.2.2–27.2.3). NMI blocking "before the IRET" is tracked from
   * the last NMI delivery or VM entry (x86-core's IRET clears it first thing).
   */
  iretUnblockedNmi(): boolean {
    if (!this.nmiShadow || this.cpu.nmiBlocked) return false;
    const pin = this.pin;
    if (pin & PIN_BASED.NMI_EXITING && (pin & PIN_BASED.VIRTUAL_NMIS) === 0) return false;
    const pa = this.cpu.peekTranslate(this.cpu.insnStart);
    if (pa === null) return false;
    let b = this.cpu.mem.read(pa, 1);
    if (b >= 0x40 && b <= 0x4f) b = this.cpu.mem.read(pa + 1, 1);
    return b === 0xcf;
  }

  // ------------------------------------------------------------------ INIT / SIPI

  /**
   * Signals INIT to this processor (the smp layer's IPI delivery). In VMX
   * non-root operation it causes a VM exit (exit reason 3) at the next
   * instruction boundary; in VMX root operation it stays pending (INIT is
   * blocked there) until the next VM entry.
   */
  signalInit(): void {
    this.pendingInit = true;
  }

  /**
   * Signals a start-up IPI with `vector`. It causes a VM exit (exit reason 4,
   * qualification = vector) only when the guest is in the wait-for-SIPI
   * activity state; otherwise it is discarded, as SIPIs are. Returns whether
   * it was accepted.
   */
  signalSipi(vector: number): boolean {
    if (!Number.isInteger(vector) || vector < 0 || vector > 255)
      throw new VmxError("INVALID_ARGUMENT", "a SIPI vector is 0..255", { vector });
    if (!this.nonRoot || this.guestParked !== ACTIVITY_STATE.WAIT_FOR_SIPI) return false;
    this.pendingSipi = vector;
    return true;
  }

  /**
   * Acknowledges the highest-priority pending external interrupt for the host
   * (when "acknowledge interrupt on exit" is 0, the host takes the vector
   * itself) and returns its vector, or -1 when none is pending.
   */
  acknowledgeInterrupt(): number {
    const cpu = this.cpu;
    if (cpu.pendingIrqCount === 0) return -1;
    let v = 255;
    while (v >= 16 && cpu.pendingIrq[v] === 0) v--;
    cpu.pendingIrq[v]!--;
    cpu.pendingIrqCount--;
    return v;
  }

  // ------------------------------------------------------------------ VM exits

  /** @internal Records a VM exit to be performed when the processor stops; resets the optional fields. */
  recordExit(reason: number, qual: number, insnLen: number, insnInfo: number): void {
    const activity = this.guestParked !== 0 ? this.guestParked : this.guestHalted ? ACTIVITY_STATE.HLT : 0;
    this.px.record(reason, qual, insnLen, insnInfo, activity);
  }

  /** @internal A guest WRMSR that does not exit is about to write MSR `index`. */
  noteGuestWrmsr(index: number): void {
    this.msrSwitch.noteGuestWrite(index);
  }

  /** @internal Records an exit and ends execution mid-instruction or mid-event (RIP stays at the instruction). */
  exitNow(reason: number, qual: number, insnLen: number, insnInfo: number): never {
    this.recordExit(reason, qual, insnLen, insnInfo);
    return this.cpu.exit(this.token);
  }

  /**
   * @internal For an instruction interceptor that decided on a VM exit before
   * the instruction had any effect: claims the instruction and asks the
   * processor to stop after it; {@link runGuest} then un-retires it (RIP back
   * to the instruction, the retired count back by one) and performs the exit.
   * Equivalent to `cpu.exit` without the cost of unwinding by exception.
   */
  stopInstruction(): true {
    this.cpu.requestStop(this.token);
    return true;
  }

  /** @internal Records an instruction-caused exit and stops (see {@link stopInstruction}). */
  exitInstruction(reason: number, qual: number, insnLen: number, insnInfo: number): true {
    this.recordExit(reason, qual, insnLen, insnInfo);
    this.cpu.requestStop(this.token);
    return true;
  }

  /** @internal Sets the guest-linear-address field of the pending exit. */
  setExitLinear(linear: number): void {
    this.px.gla = linear;
  }

  /** @internal Sets the VM-exit interruption information of the pending exit. */
  setExitInterruption(info: number, errorCode: number): void {
    this.px.intrInfo = info;
    this.px.intrErr = errorCode;
  }

  /** @internal The exit token a foreign StopReason can be compared with. */
  get exitToken(): unknown {
    return this.token;
  }

  /** @internal Marks an event whose delivery is starting (for IDT-vectoring information, 27.2.3). */
  beginDelivery(info: number, errorCode: number): void {
    this.px.beginDelivery(this.cpu, info, errorCode);
  }

  /** The VMX-abort indicator after a VMX abort (the processor is then shut down), else 0. */
  abortIndicator = 0;

  // ------------------------------------------------------------------ event injection (26.6)

  // ------------------------------------------------------------------ the run loop

  /**
   * Runs the guest for at most `maxInstructions` retired instructions
   * (each VM exit also counts as one), calling {@link onExit} after every VM
   * exit. Returns when the budget is used up, the handler did not resume,
   * the handler returned "stop", the guest halted with nothing pending, or a
   * VMX abort happened. Nothing else runs meanwhile; a scheduler interleaves
   * processors by calling this with small budgets.
   */
  runGuest(maxInstructions: number): GuestRunResult {
    return runGuest(this, maxInstructions);
  }

  /** @internal Records an external-interrupt exit (25.2), acknowledging the vector when the exit controls say so. */
  externalInterruptExit(): void {
    this.recordExit(EXIT_REASON.EXTERNAL_INTERRUPT, 0, 0, 0);
    if (this.exitCtls & VM_EXIT.ACKNOWLEDGE_INTERRUPT_ON_EXIT) {
      const vec = this.acknowledgeInterrupt();
      this.setExitInterruption(intrInfo(vec, INTERRUPTION_TYPE.EXTERNAL_INTERRUPT), 0);
    }
  }
}
