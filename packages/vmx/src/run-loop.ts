import type { StopReason } from "@visorlab/x86-core";
import { RFLAGS } from "@visorlab/x86-core";
import { ACTIVITY_STATE, INTERRUPTION_TYPE, intrInfo, PIN_BASED, PROC_BASED } from "./controls";
import { VmxError } from "./errors";
import { EXIT_REASON } from "./exit-reasons";
import type { VmExitInfo } from "./exit-record";
import { performExit } from "./vm-exit";
import type { VmxCpu } from "./vmx-cpu";

/**
 * The run loop of a {@link VmxCpu}: runs the guest on the processor in
 * slices, performs the VM exits interceptors record, calls the host's exit
 * handler, and produces the exits that happen between instructions.
 */

/** Why {@link VmxCpu.runGuest} returned. */
export type GuestRunResult =
  /** The instruction budget is used up; the guest is still in VMX non-root operation. */
  | { reason: "budget"; executed: number }
  /** A VM exit happened and the handler did not resume (no handler, or it returned without VMRESUME). */
  | { reason: "exit"; executed: number; exit: VmExitInfo }
  /** The handler returned "stop"; `inGuest` tells whether it resumed first. */
  | { reason: "stopped"; executed: number; exit: VmExitInfo; inGuest: boolean }
  /** The guest is halted (HLT without exiting, shutdown or wait-for-SIPI) and nothing is pending. */
  | { reason: "halted"; executed: number }
  /** A VM exit ended in a VMX abort (27.7) with this indicator; the processor is shut down. */
  | { reason: "abort"; executed: number; indicator: number }
  /** Execution ended for a reason outside VMX (a foreign `cpu.exit`, `cpu.requestStop`). */
  | { reason: "cpu"; executed: number; stop: StopReason };

/**
 * Runs the guest for at most `maxInstructions` retired instructions
 * (each VM exit also counts as one), calling {@link VmxCpu.onExit} after every VM
 * exit. Returns when the budget is used up, the handler did not resume,
 * the handler returned "stop", or the guest halted with nothing pending.
 * Nothing else runs meanwhile; a scheduler interleaves processors by
 * calling this with small budgets.
 */
export function runGuest(vx: VmxCpu, maxInstructions: number): GuestRunResult {
  if (!Number.isInteger(maxInstructions) || maxInstructions < 0)
    throw new VmxError("INVALID_ARGUMENT", "maxInstructions must be a non-negative integer", { maxInstructions });
  if (vx.abortIndicator !== 0) throw new VmxError("STATE", "runGuest after a VMX abort", {});
  if (!vx.nonRoot && !vx.px.pending)
    throw new VmxError("STATE", "runGuest needs a VM entry first (VMLAUNCH / VMRESUME)");
  const cpu = vx.cpu;
  const startInstret = cpu.instret;
  let budget = maxInstructions;
  for (;;) {
    if (vx.px.pending) {
      performExit(vx);
      budget--;
      if (vx.abortIndicator !== 0)
        return { reason: "abort", executed: cpu.instret - startInstret, indicator: vx.abortIndicator };
      const h = vx.onExit;
      const verdict = h === null ? undefined : h(vx, vx.lastExit);
      const executed = cpu.instret - startInstret;
      if (verdict === "stop") return { reason: "stopped", executed, exit: vx.lastExit, inGuest: vx.nonRoot };
      if (!vx.nonRoot) return { reason: "exit", executed, exit: vx.lastExit };
      continue;
    }
    if (budget <= 0) return { reason: "budget", executed: cpu.instret - startInstret };
    if (boundaryExit(vx)) continue;
    if (vx.guestParked !== 0) return { reason: "halted", executed: cpu.instret - startInstret };
    const stepping =
      (vx.proc &
        (PROC_BASED.INTERRUPT_WINDOW_EXITING | PROC_BASED.NMI_WINDOW_EXITING | PROC_BASED.MONITOR_TRAP_FLAG)) !==
      0;
    const slice = stepping ? 1 : budget;
    const before = cpu.instret;
    const r = cpu.run({ maxInstructions: slice });
    let retired = cpu.instret - before;
    if (r.reason === "stopped" && r.payload === vx.exitToken) {
      // An instruction exit (stopInstruction): the instruction did not retire.
      cpu.rip = cpu.insnStart;
      cpu.instret--;
      retired--;
      budget -= retired;
      continue;
    }
    budget -= r.reason === "max-instructions" ? Math.max(retired, slice) : retired;
    if (r.reason === "exit") {
      if (r.payload === vx.exitToken) continue;
      return { reason: "cpu", executed: cpu.instret - startInstret, stop: r };
    }
    if (r.reason === "halt") {
      if (vx.proc & PROC_BASED.MONITOR_TRAP_FLAG && retired > 0) {
        vx.recordExit(EXIT_REASON.MONITOR_TRAP_FLAG, 0, 0, 0);
        continue;
      }
      if (boundaryExit(vx)) continue;
      return { reason: "halted", executed: cpu.instret - startInstret };
    }
    if (r.reason !== "max-instructions") return { reason: "cpu", executed: cpu.instret - startInstret, stop: r };
    if (vx.proc & PROC_BASED.MONITOR_TRAP_FLAG) vx.recordExit(EXIT_REASON.MONITOR_TRAP_FLAG, 0, 0, 0);
  }
}

/**
 * VM exits that happen at an instruction boundary rather than inside an
 * instruction (25.2, 26.7.5 – 26.7.6): pending MTF, INIT, SIPI, NMIs and
 * external interrupts whose blocking the processor's own event logic does
 * not model (NMIs under virtual-NMI blocking, interrupts with RFLAGS.IF = 0),
 * and the NMI and interrupt windows. Records the exit and returns true.
 */
function boundaryExit(vx: VmxCpu): boolean {
  const cpu = vx.cpu;
  if (vx.mtfDue) {
    vx.mtfDue = false;
    vx.recordExit(EXIT_REASON.MONITOR_TRAP_FLAG, 0, 0, 0);
    return true;
  }
  if (vx.pendingInit) {
    vx.pendingInit = false;
    vx.recordExit(EXIT_REASON.INIT_SIGNAL, 0, 0, 0);
    return true;
  }
  if (vx.pendingSipi >= 0) {
    const vec = vx.pendingSipi;
    vx.pendingSipi = -1;
    vx.recordExit(EXIT_REASON.START_UP_IPI, vec, 0, 0);
    return true;
  }
  if (vx.guestParked === ACTIVITY_STATE.WAIT_FOR_SIPI) return false;
  const shadow = cpu.intShadow > 0;
  const pin = vx.pin;
  if (cpu.pendingNmi && pin & PIN_BASED.NMI_EXITING && (pin & PIN_BASED.VIRTUAL_NMIS || !cpu.nmiBlocked)) {
    cpu.pendingNmi = false;
    vx.recordExit(EXIT_REASON.EXCEPTION_OR_NMI, 0, 0, 0);
    vx.setExitInterruption(intrInfo(2, INTERRUPTION_TYPE.NMI), 0);
    return true;
  }
  if (vx.guestParked === ACTIVITY_STATE.SHUTDOWN) return false;
  if (vx.proc & PROC_BASED.NMI_WINDOW_EXITING && !cpu.nmiBlocked && !shadow) {
    vx.recordExit(EXIT_REASON.NMI_WINDOW, 0, 0, 0);
    return true;
  }
  if (cpu.pendingIrqCount > 0 && pin & PIN_BASED.EXTERNAL_INTERRUPT_EXITING && !shadow) {
    vx.externalInterruptExit();
    return true;
  }
  if (vx.proc & PROC_BASED.INTERRUPT_WINDOW_EXITING && cpu.rflags & RFLAGS.IF && !shadow) {
    vx.recordExit(EXIT_REASON.INTERRUPT_WINDOW, 0, 0, 0);
    return true;
  }
  return false;
}
