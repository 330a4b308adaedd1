import { Cpu, type CpuOptions, type MmioHandler, PhysicalMemory, ThunkTable } from "@visorlab/x86-core";
import {
  APIC_PAGE_SIZE,
  APIC_REG,
  DEFAULT_APIC_BASE,
  DELIVERY_MODE,
  DELIVERY_MODE_NAME,
  DEST_SHORTHAND,
  type DeliveryMode,
  type DestShorthand,
  ESR,
  IA32_APIC_BASE,
  ICR,
} from "./apic-regs";
import {
  cpuDriver,
  type DriverContext,
  type DriverFactory,
  SLICE_END,
  type SliceOutcome,
  type VcpuDriver,
} from "./driver";
import { SmpError } from "./errors";
import { EventLog, type LogEntry } from "./event-log";
import type { BlockedWait, HostTask, TaskHandle, WaitFor } from "./host-task";
import { type ApicBus, LocalApic } from "./local-apic";
import { SeededRng } from "./rng";
import { ShootdownCoordinator, type ShootdownRequest, type ShootdownResult, type ShootdownStats } from "./shootdown";

/** Options of {@link Machine}. */
export interface MachineOptions {
  /** Number of processors (1..255; xAPIC ids 0..254, id = index). */
  cpus: number;
  /** The physical address space; default a new {@link PhysicalMemory} of `ramSize` bytes. */
  mem?: PhysicalMemory;
  /** RAM size when `mem` is not given (default x86-core's default, 4 GiB, sparse). */
  ramSize?: number;
  /** The machine-wide thunk table; default a new one. */
  thunks?: ThunkTable;
  /** Seed of the machine's generator (default 0). */
  seed?: number | bigint;
  /** Instructions per slice (default 1000). */
  quantum?: number;
  /** Each slice is `quantum ± jitter` instructions, drawn from the seeded generator (default 0: no jitter). */
  jitter?: number;
  /** Machine-wide instructions a host wait may last before `run` reports a deadlock (default 50 000 000). */
  waitBudget?: number;
  /** Physical address of every local APIC page (default 0xFEE00000). */
  apicBase?: number;
  /** Whether processors 1..n-1 start running (default) or wait for INIT/SIPI like real APs. */
  apStartState?: "running" | "wait-for-sipi";
  /**
   * Starts a processor on a start-up IPI (the default sets RIP = vector << 12: real mode is
   * not modelled, so the processor starts in x86-core's flat 64-bit reset state there).
   */
  startAp?: (cpu: Cpu, vector: number, machine: Machine) => void;
  /** Extra x86-core options per processor (CPUID profile, MAXPHYADDR …). */
  cpuOptions?: (index: number) => Omit<CpuOptions, "index" | "thunks">;
  /** Log every IPI as an `ipi:` line (default true). */
  logIpis?: boolean;
  /** Sees every log entry as it is added. */
  onLog?: (entry: LogEntry) => void;
  /** Record every slice in {@link Machine.trace} (default false). */
  traceSlices?: boolean;
  /**
   * Install the MOV CR8 interceptor and the IA32_APIC_BASE MSR handler on every processor
   * (default true); see {@link LocalApic.installIntercepts}.
   */
  apicIntercepts?: boolean;
}

/** Options of {@link Machine.run}. */
export interface RunOptions {
  /** Stop after this many machine-wide retired instructions (default unlimited). */
  maxInstructions?: number;
  /** Checked after every slice; `run` returns `{ reason: "until" }` once it is true. */
  until?: () => boolean;
  /** Throw `SmpError` DEADLOCK instead of returning a deadlock result. */
  throwOnDeadlock?: boolean;
}

/** Why {@link Machine.run} returned. */
export type MachineStop =
  | { readonly reason: "max-instructions" }
  | { readonly reason: "until" }
  /** Every processor is halted or waits for SIPI, no host task waits, and no timer can wake one. */
  | { readonly reason: "idle" }
  /** A driver stopped (default driver: an interceptor's exit, a triple fault, `requestStop`). */
  | { readonly reason: "stop"; readonly cpu: number; readonly payload: unknown }
  /**
   * A host wait cannot complete: nothing can make progress ("stall") or it outlasted its
   * budget ("budget"). The waiting tasks stay; {@link Machine.cancelTask} removes one.
   */
  | { readonly reason: "deadlock"; readonly cause: "stall" | "budget"; readonly waits: readonly BlockedWait[] };

/** One scheduler slice, as recorded in {@link Machine.trace}. */
export interface SliceRecord {
  readonly cpu: number;
  /** Instructions the slice was allowed. */
  readonly budget: number;
  /** Instructions it retired. */
  readonly instructions: number;
  readonly outcome: SliceOutcome["kind"];
}

/** What a processor is doing, as {@link Machine.vcpuState} reports it. */
export type VcpuState = "running" | "halted" | "blocked" | "wait-for-sipi";

/** An IPI delivery-mode name as used in {@link IpiStats} and the log (modes 3 and 7 are reserved, never sent). */
export type IpiModeName = Exclude<(typeof DELIVERY_MODE_NAME)[keyof typeof DELIVERY_MODE_NAME], "reserved">;

/** IPI counts per delivery mode. */
export interface IpiStats {
  /** IPI messages sent (ICR writes with a valid combination), by mode. */
  readonly sent: Record<IpiModeName, number>;
  /** Deliveries to a target processor, by mode (one message may reach several targets). */
  readonly delivered: Record<IpiModeName, number>;
  /** ICR writes with an invalid combination (not sent). */
  invalid: number;
  /** Fixed / lowest-priority IPIs with a vector below 16 (not sent; ESR "send illegal vector"). */
  illegalVector: number;
}

/** A structured IPI for {@link Machine.sendIpi} and {@link encodeIcr}. */
export interface IpiCommand {
  /** Delivery mode. */
  readonly mode: DeliveryMode;
  /** Vector (fixed, lowest priority) or start page (SIPI); default 0. */
  readonly vector?: number;
  /** Destination shorthand; default none. */
  readonly shorthand?: DestShorthand;
  /** Logical destination mode (default physical). */
  readonly logical?: boolean;
  /** Destination (APIC id, or logical mask/cluster); only with no shorthand. Default 0. */
  readonly destination?: number;
}

/** Encodes an {@link IpiCommand} as the ICR's low and high dwords. */
export function encodeIcr(cmd: IpiCommand): { low: number; high: number } {
  const vector = cmd.vector ?? 0;
  const dest = cmd.destination ?? 0;
  if (!Number.isInteger(cmd.mode) || cmd.mode < 0 || cmd.mode > 7)
    throw new SmpError("INVALID_ARGUMENT", "delivery mode must be 0..7", { mode: cmd.mode });
  if (!Number.isInteger(vector) || vector < 0 || vector > 255)
    throw new SmpError("INVALID_ARGUMENT", "vector must be 0..255", { vector });
  if (!Number.isInteger(dest) || dest < 0 || dest > 255)
    throw new SmpError("INVALID_ARGUMENT", "destination must be 0..255", { destination: dest });
  const low =
    vector |
    (cmd.mode << ICR.MODE_SHIFT) |
    (cmd.logical ? ICR.DEST_LOGICAL : 0) |
    ((cmd.shorthand ?? DEST_SHORTHAND.NONE) << ICR.SHORTHAND_SHIFT);
  return { low: low >>> 0, high: (dest << ICR.DEST_SHIFT) >>> 0 };
}

class RunningTask<T> implements TaskHandle<T> {
  state: "running" | "waiting" | "done" | "cancelled" = "running";
  result: T | undefined = undefined;
  wait: WaitFor | null = null;
  waitSince = 0;
  constructor(
    readonly cpu: number,
    readonly label: string,
    readonly gen: HostTask<T>,
  ) {}
  get waitingFor(): string | null {
    return this.wait === null ? null : (this.wait.label ?? "condition");
  }
}

interface Slot {
  readonly index: number;
  readonly cpu: Cpu;
  readonly apic: LocalApic;
  driver: VcpuDriver;
  activity: "active" | "wait-for-sipi";
  task: RunningTask<unknown> | null;
  pendingInit: boolean;
  haltedAtSliceStart: boolean;
  instretAtSliceStart: number;
}

function openBus(size: 1 | 2 | 4): number {
  return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
}

function hex(v: number, digits = 2): string {
  return `0x${v.toString(16).padStart(digits, "0")}`;
}

function emptyCounts(): Record<IpiModeName, number> {
  return { fixed: 0, "lowest-priority": 0, SMI: 0, NMI: 0, INIT: 0, SIPI: 0 };
}

/**
 * Many x86-core processors in one machine: one shared {@link PhysicalMemory} and
 * {@link ThunkTable}, a local APIC per processor (xAPIC page at IA32_APIC_BASE — each
 * processor sees its own, told apart by the accessing processor's index that x86-core
 * passes to MMIO handlers), IPIs, a seeded generator, and a deterministic scheduler.
 *
 * Scheduling: round robin over the processors in index order; each turn runs the
 * processor's {@link VcpuDriver} for one slice of `quantum` instructions (± seeded jitter,
 * shortened so an APIC timer fires at its exact instruction). Halted processors are
 * skipped until an interrupt, NMI, INIT or SIPI makes them runnable; processors waiting
 * for SIPI are skipped; a processor running a host task runs no guest code until the task
 * completes (it spins in host code, where NMIs still reach its shootdown handler). The
 * same options and seed give the same interleaving, instruction counts and log.
 */
export class Machine {
  /** The shared physical address space. */
  readonly mem: PhysicalMemory;
  /** The shared thunk table. */
  readonly thunks: ThunkTable;
  /** The processors, by index. */
  readonly cpus: readonly Cpu[];
  /** Their local APICs, by index. */
  readonly apics: readonly LocalApic[];
  /** The machine's seeded generator, for upper layers (the scheduler has its own fork). */
  readonly rng: SeededRng;
  /** The deterministic event log. */
  readonly log: EventLog;
  /** IPI counts per delivery mode. */
  readonly ipiStats: IpiStats = { sent: emptyCounts(), delivered: emptyCounts(), invalid: 0, illegalVector: 0 };
  /** Slices run so far, when `traceSlices` is on. */
  readonly trace: SliceRecord[] = [];
  /** Slice length in instructions. */
  readonly quantum: number;
  /** Maximum deviation of a slice from `quantum`. */
  readonly jitter: number;
  /** Default wait budget of host tasks, in machine-wide instructions. */
  readonly waitBudget: number;

  private readonly slots: Slot[];
  private readonly schedRng: SeededRng;
  private readonly shootdowns: ShootdownCoordinator;
  private readonly windows = new Map<number, { unmap: () => void; refs: number }>();
  private readonly logIpis: boolean;
  private readonly traceSlices: boolean;
  private readonly startAp: (cpu: Cpu, vector: number, machine: Machine) => void;
  private retired = 0;
  private progressCount = 0;
  private cursor = 0;
  private fastForwarded = false;
  private hash = 0x811c9dc5;
  private lastTargets: readonly number[] = [];
  /** The processor whose slice is running, or null between slices. */
  private running: Slot | null = null;
  private inRun = false;

  constructor(opts: MachineOptions) {
    const n = opts.cpus;
    if (!Number.isInteger(n) || n < 1 || n > 255)
      throw new SmpError("INVALID_ARGUMENT", "cpus must be an integer in 1..255", { cpus: n });
    this.quantum = opts.quantum ?? 1000;
    this.jitter = opts.jitter ?? 0;
    this.waitBudget = opts.waitBudget ?? 50_000_000;
    if (!Number.isSafeInteger(this.quantum) || this.quantum < 1)
      throw new SmpError("INVALID_ARGUMENT", "quantum must be a positive integer", { quantum: this.quantum });
    if (!Number.isSafeInteger(this.jitter) || this.jitter < 0 || this.jitter >= this.quantum)
      throw new SmpError("INVALID_ARGUMENT", "jitter must be an integer in 0..quantum-1", { jitter: this.jitter });
    if (!(this.waitBudget > 0))
      throw new SmpError("INVALID_ARGUMENT", "waitBudget must be positive", { waitBudget: this.waitBudget });
    this.mem = opts.mem ?? new PhysicalMemory(opts.ramSize === undefined ? {} : { ramSize: opts.ramSize });
    this.thunks = opts.thunks ?? new ThunkTable();
    this.rng = new SeededRng(opts.seed ?? 0);
    this.schedRng = this.rng.fork();
    this.log = new EventLog(() => this.retired, opts.onLog);
    this.logIpis = opts.logIpis ?? true;
    this.traceSlices = opts.traceSlices ?? false;
    this.startAp =
      opts.startAp ??
      ((cpu, vector) => {
        cpu.rip = vector * 0x1000;
      });
    const base = opts.apicBase ?? DEFAULT_APIC_BASE;
    const bus: ApicBus = {
      sendIpi: (from, low, high) => {
        this.lastTargets = this.route(from, low, high, false);
      },
      baseChanged: (apic, oldBase, newBase) => this.moveWindow(apic, oldBase, newBase),
    };
    this.slots = [];
    for (let i = 0; i < n; i++) {
      const cpu = new Cpu(this.mem, { ...(opts.cpuOptions?.(i) ?? {}), index: i, thunks: this.thunks });
      const apic = new LocalApic(cpu, i, bus, { base, bsp: i === 0 });
      const slot: Slot = {
        index: i,
        cpu,
        apic,
        driver: cpuDriver({ machine: this, index: i, cpu, apic }),
        activity: i > 0 && opts.apStartState === "wait-for-sipi" ? "wait-for-sipi" : "active",
        task: null,
        pendingInit: false,
        haltedAtSliceStart: false,
        instretAtSliceStart: 0,
      };
      this.slots.push(slot);
      this.installHooks(slot);
      if (opts.apicIntercepts ?? true) apic.installIntercepts();
    }
    this.cpus = this.slots.map((s) => s.cpu);
    this.apics = this.slots.map((s) => s.apic);
    for (const s of this.slots) this.addWindow(s.apic.base);
    this.shootdowns = new ShootdownCoordinator({
      cpuCount: n,
      cpuAt: (i) => this.slots[i]!.cpu,
      isOnline: (i) => this.slots[i]!.activity === "active",
      apicId: (i) => this.slots[i]!.apic.id,
      sendQuiet: (from, low, high) => {
        const apic = this.slots[from]!.apic;
        apic.icrHigh = high >>> 0;
        apic.icrLow = low & ICR.WRITABLE;
        return this.route(apic, apic.icrLow, apic.icrHigh, true);
      },
      log: (cpu, kind, text) => this.log.add(cpu, kind, text),
      instructions: () => this.retired,
      progress: () => {
        this.progressCount++;
      },
    });
  }

  // ---------------------------------------------------------------- accessors

  /** Number of processors. */
  get cpuCount(): number {
    return this.slots.length;
  }

  /** Machine-wide retired instructions (all processors, all `run` calls). */
  get instructions(): number {
    return this.retired;
  }

  /** Processor `index`. */
  cpu(index: number): Cpu {
    return this.slot(index).cpu;
  }

  /** The local APIC of processor `index`. */
  apic(index: number): LocalApic {
    return this.slot(index).apic;
  }

  /** What processor `index` is doing. */
  vcpuState(index: number): VcpuState {
    const s = this.slot(index);
    if (s.activity === "wait-for-sipi") return "wait-for-sipi";
    if (s.task !== null) return "blocked";
    return s.cpu.halted ? "halted" : "running";
  }

  /** Shootdown counts. */
  get shootdownStats(): Readonly<ShootdownStats> {
    return this.shootdowns.stats;
  }

  /**
   * A digest (FNV-1a, hex) of every slice so far — processor and instructions retired —
   * so two runs can be compared for identical interleaving without keeping a trace.
   */
  get scheduleFingerprint(): string {
    return (this.hash >>> 0).toString(16).padStart(8, "0");
  }

  private slot(index: number): Slot {
    const s = Number.isInteger(index) ? this.slots[index] : undefined;
    if (s === undefined) throw new SmpError("INVALID_ARGUMENT", `no processor ${index}`, { index });
    return s;
  }

  // ---------------------------------------------------------------- drivers and host tasks

  /**
   * Plugs in the driver of processor `index` (a driver or a factory given the
   * {@link DriverContext}); returns the previous driver.
   */
  setDriver(index: number, driver: VcpuDriver | DriverFactory): VcpuDriver {
    const s = this.slot(index);
    const prev = s.driver;
    const next: VcpuDriver =
      typeof driver === "function"
        ? driver({ machine: this, index, cpu: s.cpu, apic: s.apic } as DriverContext)
        : driver;
    if (typeof next?.runSlice !== "function")
      throw new SmpError("INVALID_ARGUMENT", "a driver needs a runSlice function", { index });
    s.driver = next;
    return prev;
  }

  /**
   * Runs `task` as host code on processor `index`: it starts at that processor's next turn
   * and runs at its turns until it returns; meanwhile the processor runs no guest code.
   * Throws `SmpError` STATE when the processor already runs a task or waits for SIPI.
   */
  spawn<T>(index: number, task: HostTask<T>, label = "task"): TaskHandle<T> {
    const s = this.slot(index);
    if (s.task !== null)
      throw new SmpError("STATE", `processor ${index} already runs host task "${s.task.label}"`, { index });
    if (s.activity !== "active") throw new SmpError("STATE", `processor ${index} waits for SIPI`, { index });
    if (typeof task?.next !== "function") throw new SmpError("INVALID_ARGUMENT", "a host task must be a generator");
    const t = new RunningTask<T>(index, label, task);
    s.task = t as RunningTask<unknown>;
    return t;
  }

  /** Abandons the host task of processor `index` (its generator's `return` runs); false when there is none. */
  cancelTask(index: number): boolean {
    const s = this.slot(index);
    const t = s.task;
    if (t === null) return false;
    s.task = null;
    t.state = "cancelled";
    t.wait = null;
    t.gen.return(undefined as never);
    this.afterTask(s);
    return true;
  }

  // ---------------------------------------------------------------- IPIs

  /**
   * Sends an IPI from processor `from`'s local APIC as host code would (writes ICR high,
   * then ICR low). Returns the processors it reached.
   */
  sendIpi(from: number, cmd: IpiCommand): readonly number[] {
    const apic = this.slot(from).apic;
    const { low, high } = encodeIcr(cmd);
    this.lastTargets = [];
    apic.writeRegister(APIC_REG.ICR_HIGH, high);
    apic.writeRegister(APIC_REG.ICR_LOW, low);
    return this.lastTargets;
  }

  /**
   * Routes an IPI (SDM vol. 3A, "Issuing Interprocessor Interrupts", "Determining IPI
   * Destination"). Invalid combinations (SDM table "Valid Combinations for the Pentium 4 and
   * Intel Xeon Processors' Local xAPIC Interrupt Command Register": self and
   * all-including-self only with fixed; reserved modes 3 and 7) are counted and logged and
   * not sent. The level and trigger-mode bits are ignored (the xAPIC sends every IPI edge
   * triggered, so INIT level de-assert does not exist). Lowest priority goes to the matching
   * software-enabled APIC with the lowest arbitration priority, ties to the lowest index
   * (focus-processor checking is not modelled). Delivery completes during the ICR write, so
   * the delivery-status bit always reads idle.
   */
  private route(from: LocalApic, low: number, high: number, quiet: boolean): readonly number[] {
    const mode = (low >>> ICR.MODE_SHIFT) & 7;
    const vector = low & ICR.VECTOR_MASK;
    const shorthand = (low >>> ICR.SHORTHAND_SHIFT) & 3;
    const logical = (low & ICR.DEST_LOGICAL) !== 0;
    const dest = high >>> ICR.DEST_SHIFT;
    const name = DELIVERY_MODE_NAME[mode as keyof typeof DELIVERY_MODE_NAME];
    const src = `cpu${from.index}`;
    this.progressCount++;
    if (
      mode === 3 ||
      mode === 7 ||
      ((shorthand === DEST_SHORTHAND.SELF || shorthand === DEST_SHORTHAND.ALL_INCLUDING_SELF) &&
        mode !== DELIVERY_MODE.FIXED)
    ) {
      this.ipiStats.invalid++;
      this.log.add(from.index, "ipi", `ipi: ${src} invalid ICR ${hex(low, 8)} (${name}, shorthand ${shorthand})`);
      return [];
    }
    const what =
      mode === DELIVERY_MODE.FIXED || mode === DELIVERY_MODE.LOWEST_PRIORITY || mode === DELIVERY_MODE.STARTUP
        ? `${name} vector ${hex(vector)}`
        : name;
    if ((mode === DELIVERY_MODE.FIXED || mode === DELIVERY_MODE.LOWEST_PRIORITY) && vector < 16) {
      this.ipiStats.illegalVector++;
      from.sendError(ESR.SEND_ILLEGAL_VECTOR);
      this.log.add(from.index, "ipi", `ipi: ${src} illegal ${what}`);
      return [];
    }
    const counted = name as IpiModeName; // reserved modes returned above
    this.ipiStats.sent[counted]++;
    let targets: number[] = [];
    for (const s of this.slots) {
      const a = s.apic;
      if (!a.globallyEnabled) continue;
      let hit: boolean;
      switch (shorthand) {
        case DEST_SHORTHAND.SELF:
          hit = a === from;
          break;
        case DEST_SHORTHAND.ALL_INCLUDING_SELF:
          hit = true;
          break;
        case DEST_SHORTHAND.ALL_EXCLUDING_SELF:
          hit = a !== from;
          break;
        default:
          hit = logical ? matchesLogical(a, dest) : dest === 0xff || a.id === dest;
      }
      if (hit) targets.push(s.index);
    }
    if (mode === DELIVERY_MODE.LOWEST_PRIORITY) {
      let best = -1;
      let bestApr = 256;
      for (const t of targets) {
        const a = this.slots[t]!.apic;
        if (!a.softwareEnabled) continue;
        const apr = a.apr;
        if (apr < bestApr) {
          best = t;
          bestApr = apr;
        }
      }
      targets = best < 0 ? [] : [best];
    }
    if (targets.length === 0 && this.logIpis && !quiet) this.log.add(from.index, "ipi", `ipi: ${src} -> none ${what}`);
    for (const t of targets) {
      this.ipiStats.delivered[counted]++;
      if (this.logIpis && !quiet) this.log.add(from.index, "ipi", `ipi: ${src} -> cpu${t} ${what}`);
      this.deliver(this.slots[t]!, mode, vector);
    }
    return targets;
  }

  private deliver(s: Slot, mode: number, vector: number): void {
    switch (mode) {
      case DELIVERY_MODE.FIXED:
      case DELIVERY_MODE.LOWEST_PRIORITY:
        s.apic.acceptFixed(vector);
        return;
      case DELIVERY_MODE.NMI:
        s.cpu.raiseNmi();
        return;
      case DELIVERY_MODE.INIT:
        this.deliverInit(s.index);
        return;
      case DELIVERY_MODE.STARTUP:
        this.deliverStartup(s.index, vector);
        return;
      default:
        return; // SMI: system-management mode is not modelled
    }
  }

  /**
   * Delivers INIT to processor `index` (what an INIT IPI does). The driver's `init` may
   * claim it; else, if the processor runs a host task, INIT is held until the task ends (as
   * VMX root operation blocks INIT); else the processor is reset (x86-core `reset64`,
   * pending events dropped), its APIC gets an INIT reset, and it waits for SIPI.
   */
  deliverInit(index: number): void {
    const s = this.slot(index);
    this.progressCount++;
    if (s.driver.init?.()) {
      this.log.add(index, "init", `cpu${index}: INIT (handled by driver)`);
      return;
    }
    if (s.task !== null) {
      s.pendingInit = true;
      this.log.add(index, "init", `cpu${index}: INIT held while in host code`);
      return;
    }
    const cpu = s.cpu;
    cpu.reset64();
    cpu.pendingIrq.fill(0);
    cpu.pendingIrqCount = 0;
    cpu.pendingNmi = false;
    cpu.nmiBlocked = false;
    cpu.intShadow = 0;
    s.apic.initReset();
    cpu.msrs.set(IA32_APIC_BASE, s.apic.readBaseMsr()); // reset64 reset it; INIT keeps the APIC where it was
    s.activity = "wait-for-sipi";
    if (this.running === s) cpu.requestStop(SLICE_END); // it reset itself: end its slice now
    this.log.add(index, "init", `cpu${index}: INIT, waiting for SIPI`);
  }

  /**
   * Delivers a start-up IPI with `vector` to processor `index`. The driver's `startup` may
   * claim it; otherwise it is ignored unless the processor waits for SIPI, which then
   * starts through the `startAp` option (default RIP = vector << 12).
   */
  deliverStartup(index: number, vector: number): void {
    const s = this.slot(index);
    this.progressCount++;
    if (s.driver.startup?.(vector)) {
      this.log.add(index, "sipi", `cpu${index}: SIPI vector ${hex(vector)} (handled by driver)`);
      return;
    }
    if (s.activity !== "wait-for-sipi") {
      this.log.add(index, "sipi", `cpu${index}: SIPI vector ${hex(vector)} ignored (not waiting for SIPI)`);
      return;
    }
    s.cpu.halted = false;
    this.startAp(s.cpu, vector, this);
    s.activity = "active";
    this.log.add(index, "sipi", `cpu${index}: SIPI vector ${hex(vector)}, starting at ${hex(s.cpu.rip, 1)}`);
  }

  // ---------------------------------------------------------------- shootdown

  /**
   * The TLB-shootdown protocol as a host task for processor `initiator` (yield* it from
   * your own host task, or run it with {@link startShootdown}). See {@link ShootdownRequest}.
   */
  shootdown(initiator: number, request: ShootdownRequest): HostTask<ShootdownResult> {
    return this.shootdowns.start(initiator, request);
  }

  /** Spawns {@link shootdown} as processor `initiator`'s host task. */
  startShootdown(initiator: number, request: ShootdownRequest): TaskHandle<ShootdownResult> {
    return this.spawn(initiator, this.shootdown(initiator, request), request.label ?? "shootdown");
  }

  /**
   * Processor `index` took an NMI in host context (under VMX: an NMI exit). Runs the
   * shootdown flushes queued for it and acknowledges them; returns true when the NMI was a
   * shootdown's and must be swallowed, false when it belongs to the guest (inject it).
   */
  handleShootdownNmi(index: number): boolean {
    this.slot(index);
    return this.shootdowns.handle(index);
  }

  /**
   * Processor `index` took fixed interrupt `vector` in host context (under VMX: an
   * external-interrupt exit). When shootdown requests wait for that vector it acknowledges
   * the interrupt at the APIC (if still offered), runs them, sends EOI and returns true;
   * otherwise false.
   */
  handleShootdownInterrupt(index: number, vector: number): boolean {
    const s = this.slot(index);
    if (!this.shootdowns.hasWork(index, vector)) return false;
    if (s.apic.offered === vector) s.apic.acknowledge();
    this.shootdowns.handle(index, vector);
    if (s.apic.inService(vector)) s.apic.eoi();
    return true;
  }

  /** Number of shootdown requests processor `index` has not acknowledged yet. */
  pendingShootdowns(index: number): number {
    this.slot(index);
    return this.shootdowns.pendingOn(index);
  }

  /**
   * x86-core event hooks of every processor (chained in front of any already installed):
   * a pending shootdown NMI or shootdown vector is handled and swallowed, leaving a
   * processor that was halted halted (the guest never sees it); the APIC's offered vector
   * moves from IRR to ISR as the processor takes it.
   */
  private installHooks(s: Slot): void {
    const cpu = s.cpu;
    const prev = cpu.events;
    const prevNmi = prev.nmi;
    const prevIrq = prev.interrupt;
    cpu.events = {
      ...prev,
      nmi: (c) => {
        if (this.shootdowns.hasWork(s.index)) {
          const stayHalted = s.haltedAtSliceStart && c.instret === s.instretAtSliceStart;
          this.shootdowns.handle(s.index);
          if (stayHalted) c.halted = true;
          return true;
        }
        return prevNmi ? prevNmi(c) : false;
      },
      interrupt: (c, v) => {
        const apic = s.apic;
        if (v === apic.offered && this.shootdowns.hasWork(s.index, v)) {
          const stayHalted = s.haltedAtSliceStart && c.instret === s.instretAtSliceStart;
          this.handleShootdownInterrupt(s.index, v);
          if (stayHalted) c.halted = true;
          return true;
        }
        if (prevIrq?.(c, v)) return true;
        apic.accept(v);
        return false;
      },
    };
  }

  // ---------------------------------------------------------------- APIC windows

  private addWindow(base: number): void {
    const w = this.windows.get(base);
    if (w !== undefined) {
      w.refs++;
      return;
    }
    const handler: MmioHandler = {
      read: (offset, size, initiator) => {
        const a = this.apicAt(initiator, base);
        return a === null ? openBus(size) : a.mmioRead(offset, size);
      },
      write: (offset, size, value, initiator) => {
        this.apicAt(initiator, base)?.mmioWrite(offset, size, value);
      },
    };
    let unmap: () => void;
    try {
      unmap = this.mem.mapMmio(base, APIC_PAGE_SIZE, handler);
    } catch {
      // The page meets another device: this APIC stays unreachable through MMIO.
      this.log.add(null, "apic", `apic: page ${hex(base, 8)} overlaps a device and is not mapped`);
      return;
    }
    this.windows.set(base, { unmap, refs: 1 });
  }

  private dropWindow(base: number): void {
    const w = this.windows.get(base);
    if (w === undefined) return;
    if (--w.refs === 0) {
      w.unmap();
      this.windows.delete(base);
    }
  }

  private moveWindow(apic: LocalApic, oldBase: number | null, newBase: number | null): void {
    if (oldBase !== null) this.dropWindow(oldBase);
    if (newBase !== null) this.addWindow(newBase);
    this.log.add(
      apic.index,
      "apic",
      `apic: cpu${apic.index} base ${oldBase === null ? "disabled" : hex(oldBase, 8)} -> ${newBase === null ? "disabled" : hex(newBase, 8)}`,
    );
  }

  /** The APIC that answers processor `initiator` at the page `base`: its own, if enabled and there. */
  private apicAt(initiator: number | undefined, base: number): LocalApic | null {
    if (initiator === undefined) return null;
    const a = this.slots[initiator]?.apic;
    return a?.globallyEnabled && a.base === base ? a : null;
  }

  // ---------------------------------------------------------------- scheduler

  /**
   * Runs the machine until `maxInstructions` machine-wide instructions retired in this call,
   * `until()` holds, a driver stops, every processor is idle, or a host wait deadlocks.
   * Never blocks: a wait that cannot complete is returned as a deadlock.
   */
  run(opts: RunOptions = {}): MachineStop {
    const limit = opts.maxInstructions ?? Number.POSITIVE_INFINITY;
    if (!(limit >= 0) || (limit !== Number.POSITIVE_INFINITY && !Number.isSafeInteger(limit)))
      throw new SmpError("INVALID_ARGUMENT", "maxInstructions must be a non-negative integer", { limit });
    if (this.inRun)
      throw new SmpError("STATE", "Machine.run is already running (drivers and host tasks must not call it)");
    this.inRun = true;
    try {
      return this.loop(limit, opts);
    } finally {
      this.inRun = false;
    }
  }

  private loop(limit: number, opts: RunOptions): MachineStop {
    const start = this.retired;
    const n = this.slots.length;
    let quietTurns = 0;
    if (limit === 0) return { reason: "max-instructions" };
    for (;;) {
      const s = this.slots[this.cursor]!;
      this.cursor = (this.cursor + 1) % n;
      const before = this.progressCount;
      const r = this.turn(s, limit - (this.retired - start));
      if (r !== null) return this.finish(r, opts);
      if (opts.until?.()) return { reason: "until" };
      if (this.retired - start >= limit) return { reason: "max-instructions" };
      if (this.progressCount !== before) {
        quietTurns = 0;
        this.fastForwarded = false;
      } else if (++quietTurns >= n) {
        quietTurns = 0;
        const d = this.stalled();
        if (d !== null) return this.finish(d, opts);
      }
    }
  }

  private finish(r: MachineStop, opts: RunOptions): MachineStop {
    if (r.reason !== "deadlock") return r;
    for (const w of r.waits)
      this.log.add(w.cpu, "task", `deadlock (${r.cause}): cpu${w.cpu} waits for ${w.wait} in ${w.task}`);
    if (opts.throwOnDeadlock)
      throw new SmpError("DEADLOCK", `host wait cannot complete (${r.cause})`, { cause: r.cause, waits: r.waits });
    return r;
  }

  private turn(s: Slot, remaining: number): MachineStop | null {
    if (s.activity !== "active") return null;
    if (s.task !== null) {
      // Spinning in host code: an NMI still reaches the host's shootdown handler.
      if (s.cpu.pendingNmi && this.shootdowns.hasWork(s.index)) {
        s.cpu.pendingNmi = false;
        this.shootdowns.handle(s.index);
      }
      const r = this.stepTask(s);
      if (r !== null) return r;
      if (s.task !== null) {
        this.creditIdle(s);
        return null;
      }
      if (s.activity !== "active") return null;
    }
    if (!this.runnable(s)) {
      this.creditIdle(s);
      if (!this.runnable(s)) return null;
    }
    return this.runSlice(s, remaining);
  }

  private runnable(s: Slot): boolean {
    const d = s.driver;
    if (d.isRunnable !== undefined) return d.isRunnable();
    return !s.cpu.halted || s.cpu.attention !== 0;
  }

  /** A processor that retires nothing this turn still lets time pass for its APIC timer. */
  private creditIdle(s: Slot): void {
    s.apic.idleTicks += this.quantum;
    s.apic.pollTimer();
  }

  private nextQuantum(): number {
    if (this.jitter === 0) return this.quantum;
    return this.quantum - this.jitter + this.schedRng.nextInt(2 * this.jitter + 1);
  }

  private runSlice(s: Slot, remaining: number): MachineStop | null {
    const cpu = s.cpu;
    const apic = s.apic;
    apic.pollTimer();
    let budget = this.nextQuantum();
    if (budget > remaining) budget = remaining;
    const untilTimer = apic.ticksUntilTimer();
    if (untilTimer >= 1 && untilTimer < budget) budget = untilTimer;
    s.haltedAtSliceStart = cpu.halted;
    s.instretAtSliceStart = cpu.instret;
    const before = cpu.instret;
    let out: SliceOutcome;
    this.running = s;
    try {
      out = s.driver.runSlice(budget);
    } finally {
      s.haltedAtSliceStart = false;
      this.running = null;
    }
    const done = Math.max(0, cpu.instret - before);
    this.retired += done;
    if (done > 0) this.progressCount++;
    apic.pollTimer();
    this.hash = Math.imul(this.hash ^ s.index, 0x01000193);
    this.hash = Math.imul(this.hash ^ (done & 0xffff), 0x01000193);
    this.hash = Math.imul(this.hash ^ (done >>> 16), 0x01000193);
    if (this.traceSlices) this.trace.push({ cpu: s.index, budget, instructions: done, outcome: out.kind });
    switch (out.kind) {
      case "task": {
        this.spawn(s.index, out.task, out.label ?? "task");
        this.progressCount++;
        return this.stepTask(s);
      }
      case "stop":
        return { reason: "stop", cpu: s.index, payload: out.payload };
      default:
        return null;
    }
  }

  /** Advances a host task as far as its waits allow. */
  private stepTask(s: Slot): MachineStop | null {
    const t = s.task!;
    for (;;) {
      const w = t.wait;
      if (w !== null) {
        if (!w.until()) {
          const waited = this.retired - t.waitSince;
          if (waited > (w.maxInstructions ?? this.waitBudget))
            return { reason: "deadlock", cause: "budget", waits: this.blockedWaits() };
          return null;
        }
        t.wait = null;
        this.progressCount++;
      }
      const r = t.gen.next();
      if (r.done) {
        t.state = "done";
        t.result = r.value;
        s.task = null;
        this.progressCount++;
        this.afterTask(s);
        return null;
      }
      const next = r.value;
      if (typeof next?.until !== "function")
        throw new SmpError("INVALID_ARGUMENT", `host task "${t.label}" yielded something that is not a WaitFor`, {
          cpu: s.index,
        });
      t.wait = next;
      t.state = "waiting";
      t.waitSince = this.retired;
    }
  }

  private afterTask(s: Slot): void {
    if (s.pendingInit) {
      s.pendingInit = false;
      this.deliverInit(s.index);
    }
  }

  private blockedWaits(): BlockedWait[] {
    const out: BlockedWait[] = [];
    for (const s of this.slots) {
      const t = s.task;
      if (t === null || t.wait === null) continue;
      out.push({
        cpu: s.index,
        task: t.label,
        wait: t.wait.label ?? "condition",
        waitedInstructions: this.retired - t.waitSince,
      });
    }
    return out;
  }

  /** A full round without progress: fast-forward idle time to the next APIC timer once, else idle or deadlock. */
  private stalled(): MachineStop | null {
    if (!this.fastForwarded) {
      let delta = Number.POSITIVE_INFINITY;
      for (const s of this.slots) if (s.activity === "active") delta = Math.min(delta, s.apic.ticksUntilTimer());
      if (delta !== Number.POSITIVE_INFINITY) {
        this.fastForwarded = true;
        for (const s of this.slots) {
          s.apic.idleTicks += delta;
          s.apic.pollTimer();
        }
        return null;
      }
    }
    this.fastForwarded = false;
    const waits = this.blockedWaits();
    if (waits.length > 0) return { reason: "deadlock", cause: "stall", waits };
    return { reason: "idle" };
  }
}

/**
 * Logical destination match (SDM vol. 3A, "Logical Destination Mode"): flat model — the
 * 8-bit destination and LDR[31:24] share a bit (so 0xFF reaches every APIC whose LDR is
 * not 0); cluster model — 0xFF is a broadcast, otherwise the same cluster (high nibble) and
 * a shared bit in the low nibble.
 */
function matchesLogical(a: LocalApic, dest: number): boolean {
  const ldr = a.ldr >>> 24;
  const model = a.dfr >>> 28;
  if (model === 0xf) return (ldr & dest) !== 0;
  if (model === 0x0) {
    if (dest === 0xff) return true;
    return ldr >>> 4 === dest >>> 4 && (ldr & dest & 0xf) !== 0;
  }
  return false;
}
