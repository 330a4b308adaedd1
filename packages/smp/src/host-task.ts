/**
 * Host-side work that must wait for other processors (a TLB shootdown waiting for
 * acknowledgements) is a generator that yields {@link WaitFor} conditions. The scheduler
 * resumes it on its processor's turns once the condition holds, running the other
 * processors meanwhile; nothing blocks the event loop and nothing re-enters a run loop.
 */

/** A condition a host task waits for. */
export interface WaitFor {
  /** Polled at the waiting processor's turns; the task resumes once it returns true. */
  until: () => boolean;
  /** Names the wait in deadlock reports. */
  label?: string;
  /**
   * Machine-wide instructions the wait may last before the machine reports a deadlock
   * (cause "budget"); default: the machine's `waitBudget`.
   */
  maxInstructions?: number;
}

/** A host task: yields wait conditions, returns its result. */
export type HostTask<T = void> = Generator<WaitFor, T, void>;

/** Builds a {@link WaitFor}. */
export function waitUntil(until: () => boolean, label?: string, maxInstructions?: number): WaitFor {
  const w: WaitFor = { until };
  if (label !== undefined) w.label = label;
  if (maxInstructions !== undefined) w.maxInstructions = maxInstructions;
  return w;
}

/** The observable state of a spawned host task. */
export interface TaskHandle<T> {
  /** The processor the task runs on (whose guest is paused while it runs). */
  readonly cpu: number;
  /** The name given at spawn. */
  readonly label: string;
  /** "running" (not yet waited), "waiting", "done" or "cancelled". */
  readonly state: "running" | "waiting" | "done" | "cancelled";
  /** The task's return value once done. */
  readonly result: T | undefined;
  /** The label of the condition it waits for, when waiting. */
  readonly waitingFor: string | null;
}

/** A processor stuck in a wait that cannot complete, as reported by `Machine.run`. */
export interface BlockedWait {
  /** The processor whose host task waits. */
  readonly cpu: number;
  /** The task's label. */
  readonly task: string;
  /** The wait's label. */
  readonly wait: string;
  /** Machine-wide instructions retired since the wait began. */
  readonly waitedInstructions: number;
}
