import type { Cpu } from "@visorlab/x86-core";
import { DELIVERY_MODE, DEST_SHORTHAND, ICR } from "./apic-regs";
import { SmpError } from "./errors";
import type { LogKind } from "./event-log";
import type { HostTask } from "./host-task";

/**
 * A TLB-shootdown request (SEEDS S2): what every target must flush before the initiator may
 * go on. The flush runs *on the target*, in host context, when the target takes the IPI —
 * so a hypervisor can run INVEPT on each processor's own EPT state.
 */
export interface ShootdownRequest {
  /** The flush, run once on each target (and on the initiator when `includeSelf`). */
  readonly flush: (cpu: Cpu, index: number) => void;
  /**
   * Who must flush: "others" (default) — every started processor but the initiator, sent
   * as one IPI with the "all excluding self" shorthand when that is every other processor —
   * or an explicit list of processor indices (one physical-destination IPI each).
   */
  readonly targets?: "others" | readonly number[];
  /** How to interrupt the targets: an NMI (default, as in the articles) or a fixed vector. */
  readonly via?: "nmi" | { readonly vector: number };
  /** Also flush on the initiator (synchronously, before the IPIs go out). */
  readonly includeSelf?: boolean;
  /** Appended to the log lines, e.g. `ept`. */
  readonly label?: string;
  /** Wait budget in machine-wide instructions (default: the machine's `waitBudget`). */
  readonly maxInstructions?: number;
}

/** What a completed shootdown returns. */
export interface ShootdownResult {
  /** Sequence number of the shootdown in its machine (from 1). */
  readonly id: number;
  /** The initiating processor. */
  readonly initiator: number;
  /** The processors that flushed and acknowledged (the initiator is not listed). */
  readonly targets: readonly number[];
  /** Machine-wide instructions when it started and when the last acknowledgement was seen. */
  readonly startedAt: number;
  readonly completedAt: number;
}

/** Counts for observability. */
export interface ShootdownStats {
  /** Shootdowns whose protocol began (requests queued, IPIs sent). */
  started: number;
  /** Shootdowns whose initiator saw every acknowledgement. */
  completed: number;
  /** Flushes run (on targets and, with `includeSelf`, on initiators). */
  flushes: number;
}

/** What the shootdown protocol needs from its machine. */
export interface ShootdownHost {
  /** Number of processors. */
  readonly cpuCount: number;
  /** Processor `index`. */
  cpuAt(index: number): Cpu;
  /** Started (not waiting for SIPI). */
  isOnline(index: number): boolean;
  /** The xAPIC id of processor `index` (physical destination of its IPIs). */
  apicId(index: number): number;
  /** Sends an IPI from `from`'s local APIC without the generic `ipi:` log line; returns the targets. */
  sendQuiet(from: number, icrLow: number, icrHigh: number): readonly number[];
  /** Appends to the machine's event log. */
  log(cpu: number, kind: LogKind, text: string): void;
  /** Machine-wide retired instructions (the log's clock). */
  instructions(): number;
  /** Tells the scheduler something happened (a flush ran), so an idle round is not a stall. */
  progress(): void;
}

interface Pending {
  readonly id: number;
  readonly initiator: number;
  readonly request: ShootdownRequest;
  /** -1 for NMI, else the fixed vector. */
  readonly vector: number;
  readonly remaining: Set<number>;
  readonly suffix: string;
}

/**
 * The TLB-shootdown protocol: the initiator queues a flush request for each target, sends
 * the IPIs, and waits (a host-task generator) until every target has acknowledged; each
 * target runs the flush and acknowledges when it takes the IPI — from the machine's
 * `events.nmi` / `events.interrupt` hooks on bare x86-core, from the hypervisor's NMI-exit
 * handler under VMX (`Machine.handleShootdownNmi`), or from its host spin loop while it
 * waits itself. Every step is logged with the processor numbers.
 */
export class ShootdownCoordinator {
  /** Counts for observability. */
  readonly stats: ShootdownStats = { started: 0, completed: 0, flushes: 0 };
  private readonly host: ShootdownHost;
  private readonly queues: Pending[][];
  private nextId = 0;

  constructor(host: ShootdownHost) {
    this.host = host;
    this.queues = Array.from({ length: host.cpuCount }, () => []);
  }

  /** Whether processor `cpu` has requests waiting for an NMI (`vector` -1) or for fixed vector `vector`. */
  hasWork(cpu: number, vector = -1): boolean {
    const q = this.queues[cpu];
    if (q === undefined) return false;
    for (const p of q) if (p.vector === vector) return true;
    return false;
  }

  /** Number of requests processor `cpu` has not acknowledged yet. */
  pendingOn(cpu: number): number {
    return this.queues[cpu]?.length ?? 0;
  }

  /**
   * Runs every request queued on `cpu` for an NMI (`vector` -1) or for the fixed `vector`:
   * flush, then acknowledge. Returns true when there was at least one (the IPI was a
   * shootdown's and must not reach the guest).
   */
  handle(cpu: number, vector = -1): boolean {
    const q = this.queues[cpu];
    if (q === undefined) return false;
    let handled = false;
    for (let k = 0; k < q.length; ) {
      const p = q[k]!;
      if (p.vector !== vector) {
        k++;
        continue;
      }
      q.splice(k, 1);
      this.host.log(cpu, "shootdown", `cpu${cpu}: flush${p.suffix}`);
      p.request.flush(this.host.cpuAt(cpu), cpu);
      this.stats.flushes++;
      p.remaining.delete(cpu);
      this.host.log(cpu, "shootdown", `cpu${cpu}: ack${p.suffix}`);
      handled = true;
    }
    if (handled) this.host.progress();
    return handled;
  }

  /**
   * The shootdown as a host task on `initiator`; see {@link ShootdownRequest}. The request
   * is checked now (throwing `SmpError` INVALID_ARGUMENT); the protocol starts when the task
   * first runs.
   */
  start(initiator: number, request: ShootdownRequest): HostTask<ShootdownResult> {
    const via = request.via ?? "nmi";
    const vector = via === "nmi" ? -1 : via.vector;
    if (vector !== -1 && (!Number.isInteger(vector) || vector < 16 || vector > 255))
      throw new SmpError("INVALID_ARGUMENT", "a shootdown vector must be 16..255", { vector });
    if (typeof request.flush !== "function")
      throw new SmpError("INVALID_ARGUMENT", "a shootdown request needs a flush function");
    this.resolveTargets(initiator, request);
    return this.protocol(initiator, request, vector);
  }

  private *protocol(initiator: number, request: ShootdownRequest, vector: number): HostTask<ShootdownResult> {
    const host = this.host;
    const targets = this.resolveTargets(initiator, request); // again: processors may have started meanwhile
    const id = ++this.nextId;
    const suffix = request.label === undefined ? "" : ` (${request.label})`;
    const startedAt = host.instructions();
    this.stats.started++;
    const p: Pending = { id, initiator, request, vector, remaining: new Set(targets), suffix };
    for (const t of targets) this.queues[t]!.push(p);
    if (request.includeSelf) {
      host.log(initiator, "shootdown", `cpu${initiator}: flush${suffix}`);
      request.flush(host.cpuAt(initiator), initiator);
      this.stats.flushes++;
    }
    const how = vector === -1 ? "NMI" : `vector 0x${vector.toString(16)}`;
    for (const t of targets) host.log(initiator, "shootdown", `shootdown: cpu${initiator} -> cpu${t} ${how}${suffix}`);
    const mode = vector === -1 ? DELIVERY_MODE.NMI : DELIVERY_MODE.FIXED;
    const low = (mode << ICR.MODE_SHIFT) | (vector === -1 ? 0 : vector);
    const everyOther = targets.length === host.cpuCount - 1;
    if (everyOther && targets.length > 0) {
      host.sendQuiet(initiator, low | (DEST_SHORTHAND.ALL_EXCLUDING_SELF << ICR.SHORTHAND_SHIFT), 0);
    } else {
      for (const t of targets) host.sendQuiet(initiator, low, (host.apicId(t) << ICR.DEST_SHIFT) >>> 0);
    }
    if (p.remaining.size > 0) {
      const w = { until: () => p.remaining.size === 0, label: `shootdown #${id} acknowledgements` };
      yield request.maxInstructions === undefined ? w : { ...w, maxInstructions: request.maxInstructions };
    }
    host.log(initiator, "shootdown", `cpu${initiator}: all acked${suffix}`);
    this.stats.completed++;
    return { id, initiator, targets, startedAt, completedAt: host.instructions() };
  }

  private resolveTargets(initiator: number, request: ShootdownRequest): number[] {
    const n = this.host.cpuCount;
    if (!Number.isInteger(initiator) || initiator < 0 || initiator >= n)
      throw new SmpError("INVALID_ARGUMENT", `no processor ${initiator}`, { initiator });
    const spec = request.targets ?? "others";
    if (spec === "others") {
      const out: number[] = [];
      for (let i = 0; i < n; i++) if (i !== initiator && this.host.isOnline(i)) out.push(i);
      return out;
    }
    const seen = new Set<number>();
    for (const t of spec) {
      if (!Number.isInteger(t) || t < 0 || t >= n)
        throw new SmpError("INVALID_ARGUMENT", `no processor ${t}`, { target: t });
      if (t === initiator)
        throw new SmpError("INVALID_ARGUMENT", "the initiator cannot target itself (use includeSelf)", { target: t });
      if (seen.has(t)) throw new SmpError("INVALID_ARGUMENT", `processor ${t} listed twice`, { target: t });
      seen.add(t);
    }
    return [...spec].sort((a, b) => a - b);
  }
}
