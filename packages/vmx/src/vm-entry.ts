import { MSR, readMsr, VECTOR, writeMsr } from "@visorlab/x86-core";
import { ACTIVITY_STATE, INTERRUPTION_TYPE, PROC_BASED, PROC_BASED2 } from "./controls";
import { checkControls, checkGuestState, checkHostState } from "./entry-checks";
import { VmxError } from "./errors";
import { EXIT_REASON, EXIT_REASON_ENTRY_FAILURE } from "./exit-reasons";
import { VM_ENTERED, VM_FAIL_INVALID, type VmEntryOutcome } from "./outcome";
import { loadGuestState, loadHostState } from "./state-transfer";
import { VM_INSTRUCTION_ERROR } from "./vm-instruction-error";
import { LAUNCH_STATE, type Vmcs } from "./vmcs";
import { SLOT } from "./vmcs-fields";
import type { VmxCpu } from "./vmx-cpu";

/**
 * VM entry (SDM vol. 3C, chapter 26): the checks on controls and host state
 * (26.2), on the guest state (26.3.1), loading the guest state (26.3.2) and
 * the MSR-load area (26.4), entry failures (26.7) and event injection (26.6).
 */

const TWO32 = 4294967296;
/** Maximum number of MSR entries a VM entry or exit processes (512 · (N + 1), IA32_VMX_MISC[27:25]). */
const MSR_LIST_LIMIT = 512;

/** VMLAUNCH (`launch`) or VMRESUME from VMX root operation (30.3). */
export function vmEntry(vx: VmxCpu, launch: boolean): VmEntryOutcome {
  vx.requireRoot(launch ? "VMLAUNCH" : "VMRESUME");
  const f = vx.preamble();
  if (f !== null) return f;
  const v = vx.current;
  if (v === null) return VM_FAIL_INVALID;
  if (launch && v.launchState !== LAUNCH_STATE.CLEAR)
    return vx.vmFail(VM_INSTRUCTION_ERROR.VMLAUNCH_WITH_NON_CLEAR_VMCS);
  if (!launch && v.launchState !== LAUNCH_STATE.LAUNCHED)
    return vx.vmFail(VM_INSTRUCTION_ERROR.VMRESUME_WITH_NON_LAUNCHED_VMCS);
  const cpu = vx.cpu;
  // 26.2: controls and host state, skipped when unchanged since they last passed.
  if (v.checkedVersion !== v.controlsVersion) {
    const ctx = { profile: vx.profile, maxPhysAddr: cpu.maxPhysAddr, secondLevel: vx.secondLevel };
    const lo = v.lo;
    const eptOn =
      lo[SLOT.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS]! & PROC_BASED.ACTIVATE_SECONDARY_CONTROLS &&
      lo[SLOT.SECONDARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS]! & PROC_BASED2.ENABLE_EPT;
    // The profile advertises EPT but the machine was composed without it: a host setup error.
    if (eptOn && vx.secondLevel === null && vx.profile.procBased2.allowed1 & PROC_BASED2.ENABLE_EPT)
      throw new VmxError(
        "STATE",
        '"enable EPT" is set but no second-level translation is attached (see @visorlab/ept)',
      );
    if (!checkControls(v, ctx)) return vx.vmFail(VM_INSTRUCTION_ERROR.VM_ENTRY_WITH_INVALID_CONTROL_FIELDS);
    if (!checkHostState(v, vx.profile, cpu.maxPhysAddr))
      return vx.vmFail(VM_INSTRUCTION_ERROR.VM_ENTRY_WITH_INVALID_HOST_STATE_FIELDS);
    v.checkedVersion = v.controlsVersion;
  }
  // 26.3: guest state (skipped when it is the state a VM exit saved, or passed before, and nothing changed).
  if (v.guestOkVersion !== v.guestVersion || v.guestOkControls !== v.controlsVersion) {
    const q = checkGuestState(v, vx.profile, cpu.maxPhysAddr, vx.readRevision);
    if (q >= 0) return entryFailure(vx, v, EXIT_REASON.VM_ENTRY_FAILURE_INVALID_GUEST_STATE, q);
    v.guestOkVersion = v.guestVersion;
    v.guestOkControls = v.controlsVersion;
  }
  const lo = v.lo;
  vx.pin = lo[SLOT.PIN_BASED_VM_EXECUTION_CONTROLS]!;
  vx.proc = lo[SLOT.PRIMARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS]!;
  vx.proc2 =
    vx.proc & PROC_BASED.ACTIVATE_SECONDARY_CONTROLS ? lo[SLOT.SECONDARY_PROCESSOR_BASED_VM_EXECUTION_CONTROLS]! : 0;
  vx.exitCtls = lo[SLOT.VM_EXIT_CONTROLS]!;
  vx.rootNmiBlocked = cpu.nmiBlocked;
  loadGuestState(cpu, v, vx.msrSwitch);
  // 26.4: the VM-entry MSR-load area.
  const bad =
    lo[SLOT.VM_ENTRY_MSR_LOAD_COUNT] === 0
      ? 0
      : processMsrList(vx, v, SLOT.VM_ENTRY_MSR_LOAD_ADDRESS, SLOT.VM_ENTRY_MSR_LOAD_COUNT, true);
  if (bad > 0) return entryFailure(vx, v, EXIT_REASON.VM_ENTRY_FAILURE_MSR_LOADING, bad);
  // Entered: switch address-translation contexts (28.3.3.3).
  vx.nonRoot = true;
  vx.stats.entries++;
  if (launch) v.launchState = LAUNCH_STATE.LAUNCHED;
  vx.contexts.enterGuest(cpu, v, vx.proc2, vx.secondLevel);
  if (vx.proc & PROC_BASED.USE_TSC_OFFSETTING) {
    vx.tscOffsetApplied = (v.hi[SLOT.TSC_OFFSET]! | 0) * TWO32 + v.lo[SLOT.TSC_OFFSET]!;
    cpu.tscOffset += vx.tscOffsetApplied;
  } else vx.tscOffsetApplied = 0;
  const activity = lo[SLOT.GUEST_ACTIVITY_STATE]!;
  vx.guestHalted = activity === ACTIVITY_STATE.HLT;
  vx.guestParked = activity === ACTIVITY_STATE.SHUTDOWN || activity === ACTIVITY_STATE.WAIT_FOR_SIPI ? activity : 0;
  cpu.halted = activity !== ACTIVITY_STATE.ACTIVE;
  vx.nmiShadow = cpu.nmiBlocked;
  vx.mtfDue = false;
  // 26.6: event injection.
  const info = lo[SLOT.VM_ENTRY_INTERRUPTION_INFORMATION]!;
  if (info & 0x80000000) inject(vx, v, info);
  return VM_ENTERED;
}

/** A VM-entry failure after the guest-state checks began (26.7): host state is loaded, as on a VM exit. */
function entryFailure(vx: VmxCpu, v: Vmcs, reason: number, qualification: number): VmEntryOutcome {
  const full = (reason | EXIT_REASON_ENTRY_FAILURE) >>> 0;
  v.lo[SLOT.EXIT_REASON] = full;
  v.lo[SLOT.EXIT_QUALIFICATION] = qualification;
  v.hi[SLOT.EXIT_QUALIFICATION] = 0;
  v.lo[SLOT.VM_ENTRY_INTERRUPTION_INFORMATION]! &= 0x7fffffff;
  vx.exitCtls = v.lo[SLOT.VM_EXIT_CONTROLS]!;
  loadHostState(vx.cpu, v, vx.msrSwitch);
  processMsrList(vx, v, SLOT.VM_EXIT_MSR_LOAD_ADDRESS, SLOT.VM_EXIT_MSR_LOAD_COUNT, true);
  const e = vx.lastExit;
  e.exitReason = full;
  e.basicReason = reason;
  e.qualification = qualification;
  e.instructionLength = 0;
  e.instructionInformation = 0;
  e.guestPhysicalAddress = Number.NaN;
  e.guestLinearAddress = Number.NaN;
  e.interruptionInformation = 0;
  e.idtVectoringInformation = 0;
  vx.stats.exits++;
  vx.stats.byReason[reason]!++;
  return { ok: false, kind: "entryFailure", exitReason: full, qualification };
}

/**
 * Processes an MSR area (26.4, 27.4): loading (`load`) writes each entry's
 * value with WRMSR semantics, storing reads each MSR into the entry.
 * Returns 0, or the 1-based index of the entry that failed to load.
 */
export function processMsrList(vx: VmxCpu, v: Vmcs, addrSlot: number, countSlot: number, load: boolean): number {
  const count = Math.min(v.lo[countSlot]!, MSR_LIST_LIMIT);
  if (count === 0) return 0;
  const mem = vx.cpu.mem;
  const base = v.unsigned(addrSlot);
  for (let k = 0; k < count; k++) {
    const a = base + 16 * k;
    const index = mem.read(a, 4);
    if (load) {
      // Entries must have reserved bits clear and name neither FS/GS base nor x2APIC MSRs (26.4).
      if (mem.read(a + 4, 4) !== 0 || index === MSR.IA32_FS_BASE || index === MSR.IA32_GS_BASE || index >>> 8 === 8)
        return k + 1;
      if (!writeMsr(vx.cpu, index, mem.read64(a + 8))) return k + 1;
    } else {
      // Storing: reserved bits clear, not IA32_SMBASE nor an x2APIC MSR, and readable (27.4).
      const value = mem.read(a + 4, 4) !== 0 || index === 0x9e || index >>> 8 === 8 ? null : readMsr(vx.cpu, index);
      if (value === null) return k + 1;
      mem.write64(a + 8, value);
    }
  }
  return 0;
}

/** Delivers the event of the VM-entry interruption-information field through the guest IDT (26.6). */
function inject(vx: VmxCpu, v: Vmcs, info: number): void {
  const cpu = vx.cpu;
  const vector = info & 0xff;
  const type = (info >>> 8) & 7;
  const err = info & 0x800 ? v.lo[SLOT.VM_ENTRY_EXCEPTION_ERROR_CODE]! : null;
  if (type === INTERRUPTION_TYPE.OTHER_EVENT) {
    // Pending MTF VM exit (26.6.2): it happens before the first guest instruction.
    vx.mtfDue = true;
    return;
  }
  const len =
    type === INTERRUPTION_TYPE.SOFTWARE_INTERRUPT ||
    type === INTERRUPTION_TYPE.PRIVILEGED_SOFTWARE_EXCEPTION ||
    type === INTERRUPTION_TYPE.SOFTWARE_EXCEPTION
      ? v.lo[SLOT.VM_ENTRY_INSTRUCTION_LENGTH]!
      : 0;
  const kind =
    type === INTERRUPTION_TYPE.EXTERNAL_INTERRUPT
      ? "external"
      : type === INTERRUPTION_TYPE.NMI
        ? "nmi"
        : type === INTERRUPTION_TYPE.HARDWARE_EXCEPTION
          ? "exception"
          : type === INTERRUPTION_TYPE.PRIVILEGED_SOFTWARE_EXCEPTION
            ? "privileged-software"
            : "software";
  // Delivery wakes the processor from HLT (26.6.1); an NMI blocks further NMIs (virtual NMIs: virtual-NMI blocking).
  cpu.halted = false;
  vx.guestHalted = false;
  if (type === INTERRUPTION_TYPE.NMI) {
    cpu.nmiBlocked = true;
    vx.nmiShadow = true;
  }
  if (type === INTERRUPTION_TYPE.HARDWARE_EXCEPTION && vector === VECTOR.PF) {
    // CR2 is not loaded by injection: the VMM sets it (26.6.1.1).
  }
  vx.px.beginDelivery(cpu, info & 0x80000fff, err ?? 0);
  const r = cpu.deliverEvent(vector, err, len, kind);
  if (r !== null && !(r.reason === "exit" && r.payload === vx.exitToken)) {
    // A triple fault during delivery without a tripleFault interceptor cannot happen (we install one).
    throw new VmxError("STATE", "unexpected stop while injecting an event", { stop: r });
  }
}
