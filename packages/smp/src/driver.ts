import type { Cpu, StopReason } from "@visorlab/x86-core";
import type { HostTask } from "./host-task";
import type { LocalApic } from "./local-apic";
import type { Machine } from "./machine";

/**
 * What a {@link VcpuDriver} reports after one slice:
 * - `ran`: it executed (up to its budget); schedule it again next round.
 * - `halted`: the vCPU is idle (HLT, or a guest activity state that waits for an event);
 *   the scheduler skips it until {@link VcpuDriver.isRunnable} says otherwise.
 * - `task`: host code must run on this processor and may have to wait for others (a
 *   shootdown). The scheduler runs the task at once, then at this processor's turns until
 *   it completes; the driver's `runSlice` is called again only after that.
 * - `stop`: end `Machine.run` and report `payload` to its caller (an unhandled exit, a
 *   triple fault); a later `run` continues with the next processor.
 */
export type SliceOutcome =
  | { readonly kind: "ran" }
  | { readonly kind: "halted" }
  | { readonly kind: "task"; readonly task: HostTask<unknown>; readonly label?: string }
  | { readonly kind: "stop"; readonly payload: unknown };

/**
 * Runs one processor for the scheduler. The default ({@link cpuDriver}) is
 * `cpu.run({ maxInstructions })`; an upper layer (the VMX-based hypervisor) plugs in its own
 * with `Machine.setDriver` — e.g. one that enters the guest on a VmxCpu, handles VM exits,
 * and returns `{ kind: "task" }` when an exit handler must wait for other processors.
 *
 * Contract: `runSlice` retires at most `budget` instructions on `ctx.cpu` (the scheduler
 * counts them through `cpu.instret`), never blocks and never calls `Machine.run`. If
 * `cpu.run` returns `{ reason: "stopped", payload: SLICE_END }` the machine ended the slice
 * (an INIT to the running processor): report `ran`.
 */
export interface VcpuDriver {
  /** Runs the processor for at most `budget` instructions. */
  runSlice(budget: number): SliceOutcome;
  /** Whether running a slice can make progress (default: not halted, or events pending). */
  isRunnable?(): boolean;
  /**
   * An INIT IPI arrived. Return true when handled here (e.g. the VMX layer turns it into an
   * INIT-signal VM exit); false lets the machine apply the architectural default (reset,
   * wait for SIPI).
   */
  init?(): boolean;
  /**
   * A start-up IPI arrived with `vector`. Return true when handled here (e.g. a SIPI VM
   * exit); false lets the machine apply its default (start the processor if it waits for SIPI).
   */
  startup?(vector: number): boolean;
}

/** What a driver factory receives. */
export interface DriverContext {
  /** The machine. */
  readonly machine: Machine;
  /** The processor's index. */
  readonly index: number;
  /** The processor. */
  readonly cpu: Cpu;
  /** Its local APIC. */
  readonly apic: LocalApic;
}

/** Makes the driver of one processor. */
export type DriverFactory = (ctx: DriverContext) => VcpuDriver;

/** Payload of the `requestStop` with which the machine ends a slice early (INIT to the running processor). */
export const SLICE_END: unique symbol = Symbol("smp.slice-end");

const RAN: SliceOutcome = { kind: "ran" };
const HALTED: SliceOutcome = { kind: "halted" };

/**
 * The default driver: `cpu.run({ maxInstructions: budget })`. HLT → `halted`; an
 * interceptor's exit, a triple fault or a `requestStop` → `stop` with x86-core's
 * {@link StopReason} as payload.
 */
export function cpuDriver(ctx: DriverContext): VcpuDriver {
  const cpu = ctx.cpu;
  return {
    runSlice(budget: number): SliceOutcome {
      const r: StopReason = cpu.run({ maxInstructions: budget });
      switch (r.reason) {
        case "max-instructions":
          return RAN;
        case "halt":
          return HALTED;
        case "stopped":
          return r.payload === SLICE_END ? RAN : { kind: "stop", payload: r };
        default:
          return { kind: "stop", payload: r };
      }
    },
    isRunnable: () => !cpu.halted || cpu.attention !== 0,
  };
}
