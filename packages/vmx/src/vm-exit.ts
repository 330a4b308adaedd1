import { INTERRUPTION_TYPE, PIN_BASED } from "./controls";
import { EXIT_REASON } from "./exit-reasons";
import { loadHostState, saveGuestState } from "./state-transfer";
import { processMsrList } from "./vm-entry";
import { VMCS_REGION, type Vmcs } from "./vmcs";
import { SLOT } from "./vmcs-fields";
import type { VmxCpu } from "./vmx-cpu";

/**
 * Performing a VM exit (SDM vol. 3C, chapter 27): the exit-information
 * fields (27.2), saving the guest state (27.3), the MSR-store area (27.4),
 * loading the host state (27.5), the MSR-load area (27.6), and VMX aborts
 * (27.7). The exit itself was decided and recorded by an interceptor.
 */

const TWO32 = 4294967296;

/**
 * A VMX abort (27.7): the abort indicator is written to the VMCS region and
 * the processor enters the shutdown state; only a reset leaves it.
 * {@link VmxCpu.runGuest} reports it; every VMX instruction afterwards throws.
 */
function vmxAbort(vx: VmxCpu, v: Vmcs, indicator: number): void {
  v.abortIndicator = indicator;
  vx.cpu.mem.write(v.address + VMCS_REGION.ABORT, 4, indicator);
  vx.abortIndicator = indicator;
  vx.nonRoot = false;
  vx.cpu.secondStage = null;
  vx.cpu.halted = true;
}

/**
 * Performs the recorded VM exit (27.1 – 27.5): writes the exit-information
 * fields, saves the guest state, loads the host state, processes the MSR
 * areas and switches translation contexts.
 */
export function performExit(vx: VmxCpu): void {
  const v = vx.current!;
  const cpu = vx.cpu;
  const lo = v.lo;
  const hi = v.hi;
  const px = vx.px;
  px.pending = false;
  const reason = px.reason;
  // 27.2: exit information.
  lo[SLOT.EXIT_REASON] = reason;
  const qLo = px.qual >>> 0;
  lo[SLOT.EXIT_QUALIFICATION] = qLo;
  hi[SLOT.EXIT_QUALIFICATION] = (px.qual - qLo) / TWO32;
  if (!Number.isNaN(px.gla)) {
    lo[SLOT.GUEST_LINEAR_ADDRESS] = px.gla >>> 0;
    hi[SLOT.GUEST_LINEAR_ADDRESS] = Math.floor(px.gla / TWO32) >>> 0;
  }
  if (!Number.isNaN(px.gpa)) {
    lo[SLOT.GUEST_PHYSICAL_ADDRESS] = px.gpa >>> 0;
    hi[SLOT.GUEST_PHYSICAL_ADDRESS] = Math.floor(px.gpa / TWO32) >>> 0;
  }
  lo[SLOT.VM_EXIT_INTERRUPTION_INFORMATION] = px.intrInfo;
  lo[SLOT.VM_EXIT_INTERRUPTION_ERROR_CODE] = px.intrErr;
  const idt = px.takeVectoring(cpu);
  lo[SLOT.IDT_VECTORING_INFORMATION] = idt;
  if (idt !== 0) lo[SLOT.IDT_VECTORING_ERROR_CODE] = px.dlvErr;
  lo[SLOT.VM_EXIT_INSTRUCTION_LENGTH] = px.insnLen;
  lo[SLOT.VM_EXIT_INSTRUCTION_INFORMATION] = px.insnInfo;
  // Every VM exit clears the valid bit of the VM-entry interruption-information field (27.2.4? 24.8.3).
  lo[SLOT.VM_ENTRY_INTERRUPTION_INFORMATION]! &= 0x7fffffff;
  // 27.3: guest state. An exit while delivering an NMI leaves NMIs unblocked (the NMI did not reach the guest).
  if (idt !== 0 && ((idt >>> 8) & 7) === INTERRUPTION_TYPE.NMI) cpu.nmiBlocked = false;
  if (vx.tscOffsetApplied !== 0) {
    cpu.tscOffset -= vx.tscOffsetApplied;
    vx.tscOffsetApplied = 0;
  }
  saveGuestState(cpu, v, vx.msrSwitch, px.activity, vx.profile.misc.storesLmaOnExit);
  // The state of a running guest passes the guest-state checks (x86-core keeps its invariants and
  // the interceptors enforce the VMX fixed bits), so the next entry need not re-check it unless changed.
  v.guestOkVersion = v.guestVersion;
  v.guestOkControls = v.controlsVersion;
  // 27.4: VM-exit MSR-store area.
  // A failure here is a VMX abort with indicator 1 (27.7).
  if (lo[SLOT.VM_EXIT_MSR_STORE_COUNT] !== 0) {
    if (processMsrList(vx, v, SLOT.VM_EXIT_MSR_STORE_ADDRESS, SLOT.VM_EXIT_MSR_STORE_COUNT, false) > 0) {
      vmxAbort(vx, v, 1);
      return;
    }
  }
  // 27.5: host state.
  vx.contexts.enterRoot(cpu, vx.proc2, vx.secondLevel);
  vx.nonRoot = false;
  loadHostState(cpu, v, vx.msrSwitch);
  const nmiExit = reason === EXIT_REASON.EXCEPTION_OR_NMI && ((px.intrInfo >>> 8) & 7) === INTERRUPTION_TYPE.NMI;
  if (nmiExit) cpu.nmiBlocked = true;
  else if (vx.pin & PIN_BASED.VIRTUAL_NMIS) cpu.nmiBlocked = vx.rootNmiBlocked;
  // Failing to load a host MSR is a VMX abort with indicator 4 (27.6, 27.7).
  if (lo[SLOT.VM_EXIT_MSR_LOAD_COUNT] !== 0) {
    if (processMsrList(vx, v, SLOT.VM_EXIT_MSR_LOAD_ADDRESS, SLOT.VM_EXIT_MSR_LOAD_COUNT, true) > 0) {
      vmxAbort(vx, v, 4);
      return;
    }
  }
  vx.guestHalted = false;
  vx.guestParked = 0;
  // The host-visible record.
  const e = vx.lastExit;
  e.exitReason = reason;
  e.basicReason = reason & 0xffff;
  e.qualification = px.qual;
  e.instructionLength = px.insnLen;
  e.instructionInformation = px.insnInfo;
  e.guestPhysicalAddress = px.gpa;
  e.guestLinearAddress = px.gla;
  e.interruptionInformation = px.intrInfo;
  e.interruptionErrorCode = px.intrErr;
  e.idtVectoringInformation = idt;
  e.idtVectoringErrorCode = idt !== 0 ? px.dlvErr : 0;
  e.guestRip = (hi[SLOT.GUEST_RIP]! | 0) * TWO32 + lo[SLOT.GUEST_RIP]!;
  vx.stats.exits++;
  const b = reason & 0xffff;
  if (b < 80) vx.stats.byReason[b]!++;
}
