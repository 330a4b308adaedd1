import { PIN_BASED, PROC_BASED, PROC_BASED2, VM_ENTRY, VM_EXIT } from "./controls";
import { VMCS_MAX_INDEX } from "./vmcs-fields";
import { EPT_VPID_CAP, VMX_MSR } from "./vmx-msrs";

/**
 * One VMX control capability MSR (SDM vol. 3D, A.3–A.5): `allowed0` is bits
 * 31:0 (a 1 means the control must be 1), `allowed1` is bits 63:32 (a 0 means
 * the control must be 0).
 */
export interface VmxControlCapability {
  readonly allowed0: number;
  readonly allowed1: number;
}

/** The fields of IA32_VMX_MISC (SDM vol. 3D, A.6) a profile chooses. */
export interface VmxMiscCapability {
  /** Bits 4:0: the VMX-preemption timer counts down once every 2^rate TSC ticks. */
  readonly preemptionTimerRate: number;
  /** Bit 5: VM exits store IA32_EFER.LMA into the "IA-32e mode guest" VM-entry control. */
  readonly storesLmaOnExit: boolean;
  /** Bits 8:6: activity states HLT (bit 6), shutdown (bit 7) and wait-for-SIPI (bit 8) are supported. */
  readonly activityHlt: boolean;
  readonly activityShutdown: boolean;
  readonly activityWaitForSipi: boolean;
  /** Bits 24:16: number of CR3-target values. */
  readonly cr3TargetCount: number;
  /** Bits 27:25: N, where 512·(N + 1) is the recommended maximum of MSR-list entries. */
  readonly msrListSizeCode: number;
  /** Bit 29: VMWRITE may write the VM-exit information fields. */
  readonly vmwriteExitInformation: boolean;
  /** Bit 30: software interrupts/exceptions may be injected with instruction length 0. */
  readonly injectZeroLength: boolean;
  /** Bits 63:32: MSEG revision identifier. */
  readonly msegRevision: number;
}

/**
 * A machine's VMX capabilities: everything the capability MSRs report, from
 * which VM entry takes its checks. Build one with {@link vmxProfile}.
 */
export interface VmxProfile {
  /** IA32_VMX_BASIC bits 30:0. */
  readonly revisionId: number;
  /** IA32_VMX_BASIC bit 54: VM exits due to INS/OUTS report instruction information. */
  readonly insOutsInformation: boolean;
  /** IA32_VMX_BASIC bit 55: the TRUE_* control MSRs exist and govern VM entry. */
  readonly trueControls: boolean;
  readonly pinBased: VmxControlCapability;
  readonly procBased: VmxControlCapability;
  readonly procBased2: VmxControlCapability;
  readonly exit: VmxControlCapability;
  readonly entry: VmxControlCapability;
  readonly truePinBased: VmxControlCapability;
  readonly trueProcBased: VmxControlCapability;
  readonly trueExit: VmxControlCapability;
  readonly trueEntry: VmxControlCapability;
  readonly misc: VmxMiscCapability;
  /** CR0/CR4 bits fixed to 1 (FIXED0) and allowed to be 1 (FIXED1) in VMX operation (A.7, A.8). */
  readonly cr0Fixed0: number;
  readonly cr0Fixed1: number;
  readonly cr4Fixed0: number;
  readonly cr4Fixed1: number;
  /** IA32_VMX_EPT_VPID_CAP as low and high halves (bit positions in {@link EPT_VPID_CAP}). */
  readonly eptVpidCapLo: number;
  readonly eptVpidCapHi: number;
}

/** Choices for {@link vmxProfile}; every feature defaults to supported. */
export interface VmxProfileOptions {
  /** VMCS revision identifier (31 bits). Default 0x12. */
  revisionId?: number;
  /** TRUE_* control MSRs (IA32_VMX_BASIC bit 55). Default true. */
  trueControls?: boolean;
  /** The "enable EPT" control and every EPT capability. Default true. */
  ept?: boolean;
  /** The "enable VPID" control and INVVPID. Default true. */
  vpid?: boolean;
  /** INVEPT with the all-context type. Default true. */
  inveptAllContext?: boolean;
  /** INVEPT with the single-context type. Default true. */
  inveptSingleContext?: boolean;
  /** EPT PDEs mapping 2 MiB pages. Default true. */
  ept2MPages?: boolean;
  /** EPT PDPTEs mapping 1 GiB pages. Default true. */
  ept1GPages?: boolean;
  /** Execute-only EPT translations (bits 2:0 = 100b). Default true. */
  eptExecuteOnly?: boolean;
  /** Accessed and dirty flags for EPT. Default true. */
  eptAccessedDirty?: boolean;
  /** EPT paging-structure memory type UC allowed in the EPTP. Default true. */
  eptUncacheable?: boolean;
  /** The "mode-based execute control for EPT" control. Default true. */
  modeBasedExecute?: boolean;
  /** VMWRITE to VM-exit information fields (IA32_VMX_MISC bit 29). Default false. */
  vmwriteExitInformation?: boolean;
  /** INS/OUTS instruction information (IA32_VMX_BASIC bit 54). Default true. */
  insOutsInformation?: boolean;
}

// Default-1 controls (SDM vol. 3D, A.2): must be 1 unless the TRUE MSRs say otherwise.
const PIN_DEFAULT1 = 0x00000016;
const PROC_DEFAULT1 = 0x0401e172;
const EXIT_DEFAULT1 = 0x00036dff;
const ENTRY_DEFAULT1 = 0x000011ff;

const u32 = (v: number) => v >>> 0;

/**
 * Builds a VMX profile: the default is a processor with every feature the
 * simulator implements (EPT with execute-only, 2 MiB/1 GiB pages, A/D flags,
 * INVEPT single/all-context, mode-based execute control, VPID with every
 * INVVPID type, true controls). Options switch single features off.
 */
export function vmxProfile(opts: VmxProfileOptions = {}): VmxProfile {
  const ept = opts.ept ?? true;
  const vpid = opts.vpid ?? true;
  const pinAllowed1 =
    PIN_DEFAULT1 | PIN_BASED.EXTERNAL_INTERRUPT_EXITING | PIN_BASED.NMI_EXITING | PIN_BASED.VIRTUAL_NMIS;
  const procAllowed1 =
    PROC_DEFAULT1 |
    PROC_BASED.INTERRUPT_WINDOW_EXITING |
    PROC_BASED.USE_TSC_OFFSETTING |
    PROC_BASED.HLT_EXITING |
    PROC_BASED.INVLPG_EXITING |
    PROC_BASED.RDTSC_EXITING |
    PROC_BASED.RDPMC_EXITING |
    PROC_BASED.CR3_LOAD_EXITING |
    PROC_BASED.CR3_STORE_EXITING |
    PROC_BASED.CR8_LOAD_EXITING |
    PROC_BASED.CR8_STORE_EXITING |
    PROC_BASED.NMI_WINDOW_EXITING |
    PROC_BASED.MOV_DR_EXITING |
    PROC_BASED.UNCONDITIONAL_IO_EXITING |
    PROC_BASED.USE_IO_BITMAPS |
    PROC_BASED.MONITOR_TRAP_FLAG |
    PROC_BASED.USE_MSR_BITMAPS |
    PROC_BASED.PAUSE_EXITING |
    PROC_BASED.ACTIVATE_SECONDARY_CONTROLS;
  let proc2Allowed1: number = PROC_BASED2.ENABLE_RDTSCP | PROC_BASED2.WBINVD_EXITING;
  if (ept) {
    proc2Allowed1 |= PROC_BASED2.ENABLE_EPT;
    if (opts.modeBasedExecute ?? true) proc2Allowed1 |= PROC_BASED2.MODE_BASED_EXECUTE_CONTROL_FOR_EPT;
  }
  if (vpid) proc2Allowed1 |= PROC_BASED2.ENABLE_VPID;
  const exitAllowed1 =
    EXIT_DEFAULT1 |
    VM_EXIT.HOST_ADDRESS_SPACE_SIZE |
    VM_EXIT.ACKNOWLEDGE_INTERRUPT_ON_EXIT |
    VM_EXIT.SAVE_IA32_PAT |
    VM_EXIT.LOAD_IA32_PAT |
    VM_EXIT.SAVE_IA32_EFER |
    VM_EXIT.LOAD_IA32_EFER;
  const entryAllowed1 = ENTRY_DEFAULT1 | VM_ENTRY.IA32E_MODE_GUEST | VM_ENTRY.LOAD_IA32_PAT | VM_ENTRY.LOAD_IA32_EFER;

  let capLo = 0;
  let capHi = 0;
  const bit = (n: number) => {
    if (n < 32) capLo |= 1 << n;
    else capHi |= 1 << (n - 32);
  };
  if (ept) {
    bit(EPT_VPID_CAP.PAGE_WALK_LENGTH_4);
    bit(EPT_VPID_CAP.MEMORY_TYPE_WB);
    if (opts.eptUncacheable ?? true) bit(EPT_VPID_CAP.MEMORY_TYPE_UC);
    if (opts.eptExecuteOnly ?? true) bit(EPT_VPID_CAP.EXECUTE_ONLY);
    if (opts.ept2MPages ?? true) bit(EPT_VPID_CAP.PDE_2MB_PAGES);
    if (opts.ept1GPages ?? true) bit(EPT_VPID_CAP.PDPTE_1GB_PAGES);
    if (opts.eptAccessedDirty ?? true) bit(EPT_VPID_CAP.ACCESSED_DIRTY_FLAGS);
    const single = opts.inveptSingleContext ?? true;
    const all = opts.inveptAllContext ?? true;
    if (single || all) bit(EPT_VPID_CAP.INVEPT);
    if (single) bit(EPT_VPID_CAP.INVEPT_SINGLE_CONTEXT);
    if (all) bit(EPT_VPID_CAP.INVEPT_ALL_CONTEXT);
  }
  if (vpid) {
    bit(EPT_VPID_CAP.INVVPID);
    bit(EPT_VPID_CAP.INVVPID_INDIVIDUAL_ADDRESS);
    bit(EPT_VPID_CAP.INVVPID_SINGLE_CONTEXT);
    bit(EPT_VPID_CAP.INVVPID_ALL_CONTEXT);
    bit(EPT_VPID_CAP.INVVPID_SINGLE_CONTEXT_RETAINING_GLOBALS);
  }
  const revisionId = opts.revisionId ?? 0x12;
  return Object.freeze({
    revisionId: revisionId & 0x7fffffff,
    insOutsInformation: opts.insOutsInformation ?? true,
    trueControls: opts.trueControls ?? true,
    pinBased: { allowed0: PIN_DEFAULT1, allowed1: u32(pinAllowed1) },
    procBased: { allowed0: PROC_DEFAULT1, allowed1: u32(procAllowed1) },
    procBased2: { allowed0: 0, allowed1: u32(proc2Allowed1) },
    exit: { allowed0: EXIT_DEFAULT1, allowed1: u32(exitAllowed1) },
    entry: { allowed0: ENTRY_DEFAULT1, allowed1: u32(entryAllowed1) },
    truePinBased: { allowed0: PIN_DEFAULT1, allowed1: u32(pinAllowed1) },
    // With true controls, CR3-load/store exiting may be 0 (bits 15, 16).
    trueProcBased: { allowed0: 0x04006172, allowed1: u32(procAllowed1) },
    // ... and "save debug controls" / "load debug controls" may be 0 (bit 2).
    trueExit: { allowed0: 0x00036dfb, allowed1: u32(exitAllowed1) },
    trueEntry: { allowed0: 0x000011fb, allowed1: u32(entryAllowed1) },
    misc: Object.freeze({
      preemptionTimerRate: 5,
      storesLmaOnExit: true,
      activityHlt: true,
      activityShutdown: true,
      activityWaitForSipi: true,
      cr3TargetCount: 4,
      msrListSizeCode: 0,
      vmwriteExitInformation: opts.vmwriteExitInformation ?? false,
      injectZeroLength: false,
      msegRevision: 0,
    }),
    // PE, NE, PG must be 1; everything may be 1 (SDM vol. 3D, A.7).
    cr0Fixed0: 0x80000021,
    cr0Fixed1: 0xffffffff,
    // VMXE must be 1 (A.8); FIXED1 = the CR4 bits x86-core implements.
    cr4Fixed0: 0x2000,
    cr4Fixed1: 0x003127ff,
    eptVpidCapLo: u32(capLo),
    eptVpidCapHi: u32(capHi),
  });
}

/** The default profile: every VMX feature the simulator implements. */
export function defaultVmxProfile(): VmxProfile {
  return vmxProfile();
}

/** Whether bit `n` (0–63) of IA32_VMX_EPT_VPID_CAP is set in a profile. */
export function hasEptVpidCap(p: VmxProfile, n: number): boolean {
  return n < 32 ? ((p.eptVpidCapLo >>> n) & 1) === 1 : ((p.eptVpidCapHi >>> (n - 32)) & 1) === 1;
}

const big = (lo: number, hi: number) => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
const ctl = (c: VmxControlCapability) => big(c.allowed0, c.allowed1);

/**
 * The values of every VMX capability MSR for a profile (SDM vol. 3D, appendix
 * A), keyed by MSR number. The TRUE_* MSRs appear only when the profile has
 * true controls; the secondary controls MSR is always present (the profile
 * allows "activate secondary controls").
 */
export function vmxCapabilityMsrs(p: VmxProfile): Map<number, bigint> {
  const m = new Map<number, bigint>();
  // IA32_VMX_BASIC: revision id, region size 4096 (bits 44:32), WB (bits 53:50 = 6).
  let basicHi = 4096 | (6 << 18);
  if (p.insOutsInformation) basicHi |= 1 << 22;
  if (p.trueControls) basicHi |= 1 << 23;
  m.set(VMX_MSR.IA32_VMX_BASIC, big(p.revisionId, basicHi));
  m.set(VMX_MSR.IA32_VMX_PINBASED_CTLS, ctl(p.pinBased));
  m.set(VMX_MSR.IA32_VMX_PROCBASED_CTLS, ctl(p.procBased));
  m.set(VMX_MSR.IA32_VMX_EXIT_CTLS, ctl(p.exit));
  m.set(VMX_MSR.IA32_VMX_ENTRY_CTLS, ctl(p.entry));
  const mi = p.misc;
  const miscLo =
    (mi.preemptionTimerRate & 0x1f) |
    (mi.storesLmaOnExit ? 1 << 5 : 0) |
    (mi.activityHlt ? 1 << 6 : 0) |
    (mi.activityShutdown ? 1 << 7 : 0) |
    (mi.activityWaitForSipi ? 1 << 8 : 0) |
    ((mi.cr3TargetCount & 0x1ff) << 16) |
    ((mi.msrListSizeCode & 7) << 25) |
    (mi.vmwriteExitInformation ? 1 << 29 : 0) |
    (mi.injectZeroLength ? 1 << 30 : 0);
  m.set(VMX_MSR.IA32_VMX_MISC, big(miscLo, mi.msegRevision));
  m.set(VMX_MSR.IA32_VMX_CR0_FIXED0, BigInt(p.cr0Fixed0 >>> 0));
  m.set(VMX_MSR.IA32_VMX_CR0_FIXED1, BigInt(p.cr0Fixed1 >>> 0));
  m.set(VMX_MSR.IA32_VMX_CR4_FIXED0, BigInt(p.cr4Fixed0 >>> 0));
  m.set(VMX_MSR.IA32_VMX_CR4_FIXED1, BigInt(p.cr4Fixed1 >>> 0));
  m.set(VMX_MSR.IA32_VMX_VMCS_ENUM, BigInt(VMCS_MAX_INDEX << 1));
  m.set(VMX_MSR.IA32_VMX_PROCBASED_CTLS2, ctl(p.procBased2));
  if (p.eptVpidCapLo !== 0 || p.eptVpidCapHi !== 0)
    m.set(VMX_MSR.IA32_VMX_EPT_VPID_CAP, big(p.eptVpidCapLo, p.eptVpidCapHi));
  if (p.trueControls) {
    m.set(VMX_MSR.IA32_VMX_TRUE_PINBASED_CTLS, ctl(p.truePinBased));
    m.set(VMX_MSR.IA32_VMX_TRUE_PROCBASED_CTLS, ctl(p.trueProcBased));
    m.set(VMX_MSR.IA32_VMX_TRUE_EXIT_CTLS, ctl(p.trueExit));
    m.set(VMX_MSR.IA32_VMX_TRUE_ENTRY_CTLS, ctl(p.trueEntry));
  }
  return m;
}
