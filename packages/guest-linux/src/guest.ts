import { type Cpu, type PhysicalMemory, type StopReason, type ThunkTable, walkPageTables } from "@visorlab/x86-core";
import { allocData, bootCpus, bootImage } from "./boot";
import { builtinPrograms } from "./builtins";
import { type E820Entry, formatE820 } from "./e820";
import { VECTORS } from "./entry-asm";
import { GuestLinuxError } from "./errors";
import { type Gen, runSync, s64, u64 } from "./gen";
import { type GuestLinuxConfig, KCtx, Kernel } from "./kernel";
import { type ModuleDefinition, moduleImage } from "./module-def";
import { type ProgramDefinition, programImage } from "./program";
import { TASK } from "./structs";

/** What a {@link GuestLinux} is built on: the machine's processors, memory and thunk table, plus configuration. */
export interface GuestLinuxOptions extends GuestLinuxConfig {
  /** The machine's physical memory (shared by every processor). */
  mem: PhysicalMemory;
  /** The processors the guest runs on (index = position). */
  cpus: readonly Cpu[];
  /** The machine-wide thunk table every processor was created with. */
  thunks: ThunkTable;
}

/** Options of {@link GuestLinux.spawn}. */
export interface SpawnOptions {
  /** argv (default: the path alone). */
  argv?: string[];
  /** Environment strings. */
  env?: string[];
  /** Real/effective user id (0 = root with every capability). Default 0. */
  uid?: number;
  /** Group id. Default = uid. */
  gid?: number;
  /** CPU the process runs on. Default 0. */
  cpu?: number;
}

/** A process as the host sees it. */
export interface ProcessInfo {
  pid: number;
  comm: string;
  state: "running" | "sleeping" | "dead" | "pending";
  /** Exit status once exited: `code`, or the `signal` that killed it. */
  exit: { code: number; signal: number } | null;
  /** What it wrote to the console. */
  output: string;
  /** Its page-table root (physical), or 0 before it exists. */
  cr3: number;
}

/** Why {@link GuestLinux.runUntilIdle} returned. */
export interface RunResult {
  /** Every CPU idles with nothing runnable. */
  idle: boolean;
  /** Instructions retired by all CPUs during the call. */
  instructions: number;
  /** A processor stopped for a reason the guest cannot handle itself (an exit to a layer above, a triple fault). */
  stop: { cpu: number; reason: StopReason } | null;
}

/** Options of {@link GuestLinux.runUntilIdle}. */
export interface RunOptions {
  /** Instruction budget over all CPUs. Default 50 million. */
  maxInstructions?: number;
  /** Instructions per CPU turn. Default 10 000. */
  slice?: number;
  /** Timer period in instructions per CPU (a tick preempts when another task is runnable). Default 100 000. */
  tickInstructions?: number;
}

/** A loaded module as the host sees it. */
export interface ModuleInfo {
  name: string;
  /** `module_core`. */
  core: bigint;
  coreSize: number;
  textSize: number;
  /** Address of its `struct module`. */
  structModule: bigint;
}

/**
 * A modelled x86-64 Linux guest (the 3.x–4.x era of the articles) whose kernel
 * lives in guest memory: page tables, `sys_call_table`, `struct module`s,
 * credentials and the log buffer are bytes in the machine's RAM, kernel
 * functions are code (assembled entry code, and thunks for the functions
 * written in TypeScript) that the processors fetch and execute, and user
 * programs run in ring 3 making real system calls.
 *
 * The guest is driven by the caller: {@link runUntilIdle} on bare x86-core, or
 * an upper layer's scheduler running the processors.
 */
export class GuestLinux {
  /** The kernel's state (for tools and tests; not a stable API). */
  readonly kernel: Kernel;
  private booted = false;
  private readonly pending = new Map<number, { path: string; uid: number }>();
  private lastTick: number[] = [];

  constructor(opts: GuestLinuxOptions) {
    if (opts.cpus.length === 0) throw new GuestLinuxError("INVALID_ARGUMENT", "the guest needs at least one CPU");
    opts.cpus.forEach((c, i) => {
      if (c.index !== i) throw new GuestLinuxError("INVALID_ARGUMENT", `cpus[${i}] has index ${c.index}`);
      if (c.mem !== opts.mem) throw new GuestLinuxError("INVALID_ARGUMENT", `cpus[${i}] uses another physical memory`);
      if (c.thunks !== opts.thunks)
        throw new GuestLinuxError("INVALID_ARGUMENT", `cpus[${i}] uses another thunk table`);
    });
    this.kernel = new Kernel(opts.mem, opts.cpus, opts.thunks, opts);
    allocData(this.kernel);
    for (const p of builtinPrograms()) this.installProgram(p);
  }

  /**
   * Boots: lays out and writes the kernel image, builds the kernel page
   * tables, per-CPU data, GDT/TSS/IDT, idle tasks and kernel workers, logs the
   * boot messages, and leaves every processor in the idle loop, in long mode
   * at CPL 0 on the kernel page tables.
   */
  boot(): this {
    if (this.booted) throw new GuestLinuxError("STATE", "already booted");
    this.booted = true;
    const k = this.kernel;
    bootImage(k);
    const c = new KCtx(k, null);
    runSync(this.bootTasks(c));
    runSync(bootCpus(k, c));
    runSync(this.bootMessages(c));
    this.lastTick = k.cpus.map(() => 0);
    return this;
  }

  private *bootTasks(c: KCtx): Gen<void> {
    const k = this.kernel;
    const initCred = k.sym("init_cred");
    for (const cpu of k.cpus) {
      const i = cpu.index;
      const idle = yield* k.sched.createTask(c, {
        pid: 0,
        kind: "idle",
        cpu: i,
        comm: `swapper/${i}`,
        cr3: k.swapperPgd,
        cred: initCred,
        mm: null,
        ppid: 0,
        ...(i === 0 ? { at: k.sym("init_task") } : {}),
      });
      k.sched.idle[i] = idle;
      k.sched.current[i] = idle;
      if (i === 0) k.bootTask = idle.addr;
    }
    for (const cpu of k.cpus) {
      const i = cpu.index;
      const w = yield* k.sched.createTask(c, {
        pid: 2 + i,
        kind: "kthread",
        cpu: i,
        comm: `kworker/${i}:0`,
        cr3: k.swapperPgd,
        cred: initCred,
        mm: null,
        ppid: 0,
      });
      yield* k.sched.setupKthreadFrame(c, w, k.sym("kworker_thread"), 0);
      w.state = "sleeping";
      yield* c.m.write64(w.addr + TASK.state, 1n);
      k.sched.kworkers[i] = w;
    }
  }

  private *bootMessages(c: KCtx): Gen<void> {
    const k = this.kernel;
    const p = (s: string) => c.printk(`\x016${s}\n`);
    yield* c.printk((yield* c.m.readCString(k.sym("linux_banner"), 512)) ?? "");
    yield* p(`Command line: console=ttyS0${k.cfg.kaslr ? "" : " nokaslr"}`);
    if (!k.cfg.kaslr) yield* p("KASLR disabled: 'nokaslr' on cmdline.");
    for (const l of formatE820(k.e820)) yield* p(l);
    if (k.cfg.reserved !== null)
      yield* p(
        `e820: [mem 0x${k.cfg.reserved.base.toString(16)}-0x${(k.cfg.reserved.base + k.cfg.reserved.size - 1).toString(16)}] reserved for the hypervisor`,
      );
    yield* p("NX (Execute Disable) protection: active");
    const pages = k.image.regionPages();
    yield* p(
      `Memory: ${k.pages.freePages * 4}K/${k.pages.totalPages * 4}K available (${pages.text * 4}K kernel code, ${pages.data * 4}K rwdata, ${pages.rodata * 4}K rodata)`,
    );
    yield* p(`smpboot: Allowing ${k.cpus.length} CPUs, 0 hotplug CPUs`);
    yield* p(`Write protecting the kernel read-only data: ${pages.rodata * 4}k`);
    yield* p(`x86: Booted up 1 node, ${k.cpus.length} CPUs`);
    if (k.cfg.swapPages > 0)
      yield* p(
        `Adding ${k.cfg.swapPages * 4}k swap on /dev/vda2.  Priority:-1 extents:1 across:${k.cfg.swapPages * 4}k`,
      );
  }

  // ---------------------------------------------------------------- programs, modules, processes

  /** Registers a TypeScript program and installs its executable at `path` (default `/bin/<name>`). */
  installProgram(def: ProgramDefinition, path = `/bin/${def.name}`): string {
    this.kernel.procs.register(def);
    this.kernel.vfs.writeFile(path, programImage(def.name), 0o755);
    return path;
  }

  /** Registers a TypeScript module and installs its image at `path` (default `/lib/modules/<name>.ko`). */
  installModule(def: ModuleDefinition, path = `/lib/modules/${def.name}.ko`): string {
    this.kernel.modules.register(def);
    this.kernel.vfs.writeFile(path, moduleImage(def, this.kernel.modules.vermagic()));
    return path;
  }

  /** Writes a regular file into the guest's file system (host side). */
  writeFile(path: string, data: Uint8Array | string, mode = 0o644): void {
    const b = typeof data === "string" ? new TextEncoder().encode(data) : data;
    this.kernel.vfs.writeFile(path, b, mode);
  }

  /**
   * Starts a program: the request goes to the kernel worker of the target CPU,
   * which creates the process in guest context. Returns its pid.
   */
  spawn(path: string, opts: SpawnOptions = {}): number {
    if (!this.booted) throw new GuestLinuxError("STATE", "boot the guest first");
    const k = this.kernel;
    const cpu = opts.cpu ?? 0;
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= k.cpus.length)
      throw new GuestLinuxError("INVALID_ARGUMENT", `no CPU ${cpu}`);
    const probe = k.sched.idle[0]!;
    if (k.procs.programOf(path, probe) === null)
      throw new GuestLinuxError("NOT_FOUND", `${path} is not an installed program`, { path });
    const pid = k.sched.allocPid();
    const uid = opts.uid ?? 0;
    const req = {
      path,
      argv: opts.argv ?? [path],
      env: opts.env ?? ["PATH=/bin", "HOME=/"],
      uid,
      gid: opts.gid ?? uid,
      cpu,
      pid,
      ppid: 0,
    };
    this.pending.set(pid, { path, uid });
    k.sched.queueWork(cpu, (c) => k.procs.spawnInKernel(c, req));
    return pid;
  }

  /**
   * Runs the processors round robin until every one idles with nothing to
   * do, the budget is spent, or a processor stops for a reason the guest
   * cannot handle. The host plays the timer: each CPU gets a tick every
   * `tickInstructions` while another task is waiting on it.
   */
  runUntilIdle(opts: RunOptions = {}): RunResult {
    if (!this.booted) throw new GuestLinuxError("STATE", "boot the guest first");
    const k = this.kernel;
    const budget = opts.maxInstructions ?? 50_000_000;
    const slice = opts.slice ?? 10_000;
    const tick = opts.tickInstructions ?? 100_000;
    let done = 0;
    while (done < budget) {
      let ran = false;
      for (const cpu of k.cpus) {
        const waiting = cpu.pendingIrqCount > 0 || cpu.pendingNmi || cpu.attention !== 0;
        if (cpu.halted && !waiting) continue;
        const before = cpu.instret;
        const r = cpu.run({ maxInstructions: Math.max(1, Math.min(slice, budget - done)) });
        done += cpu.instret - before;
        ran = true;
        if (r.reason === "exit" || r.reason === "triple-fault" || r.reason === "stopped")
          return { idle: false, instructions: done, stop: { cpu: cpu.index, reason: r } };
        const i = cpu.index;
        if (cpu.instret - this.lastTick[i]! >= tick) {
          this.lastTick[i] = cpu.instret;
          const others = k.sched.rq[i]!.some((t) => t.state === "running" && t !== k.sched.current[i]);
          if (others) k.raiseInterrupt(i, VECTORS.LOCAL_TIMER);
        }
      }
      if (!ran) {
        if (k.sched.idleEverywhere()) return { idle: true, instructions: done, stop: null };
        // Work is queued on a halted CPU without a wake-up pending: deliver the reschedule IPI.
        for (const cpu of k.cpus)
          if (
            cpu.halted &&
            (k.sched.rq[cpu.index]!.some((t) => t.state === "running") || k.sched.kworkers[cpu.index]!.work.length > 0)
          )
            k.raiseInterrupt(cpu.index, VECTORS.RESCHEDULE);
        if (k.cpus.every((c) => c.halted && c.pendingIrqCount === 0))
          return { idle: true, instructions: done, stop: null };
      }
    }
    return { idle: k.sched.idleEverywhere(), instructions: done, stop: null };
  }

  /** Spawns a program and runs until the guest is idle; returns the process. */
  run(path: string, opts: SpawnOptions & RunOptions = {}): ProcessInfo {
    const pid = this.spawn(path, opts);
    const r = this.runUntilIdle(opts);
    if (r.stop !== null)
      throw new GuestLinuxError("STATE", `processor ${r.stop.cpu} stopped: ${r.stop.reason.reason}`, { stop: r.stop });
    return this.process(pid);
  }

  /** Raises the timer interrupt on a CPU (for callers that drive the processors themselves). */
  tick(cpu: number): void {
    this.kernel.raiseInterrupt(cpu, VECTORS.LOCAL_TIMER);
  }

  /** True when no CPU has anything to run. */
  get idle(): boolean {
    return this.kernel.sched.idleEverywhere();
  }

  // ---------------------------------------------------------------- observation

  /** A process by pid. */
  process(pid: number): ProcessInfo {
    const t = this.kernel.sched.tasks.get(pid);
    if (t === undefined) {
      if (this.pending.has(pid)) return { pid, comm: "", state: "pending", exit: null, output: "", cr3: 0 };
      throw new GuestLinuxError("NOT_FOUND", `no process ${pid}`);
    }
    return { pid, comm: t.comm, state: t.state, exit: t.exit, output: t.output, cr3: t.cr3 };
  }

  /** The kernel log as `dmesg` prints it, read from the guest's log buffer. */
  dmesg(): string {
    return runSync(this.kernel.log.readFrom(this.kernel.bootMem));
  }

  /** Every line the kernel logged (with timestamps), including lines the ring buffer has since dropped. */
  logLines(): readonly string[] {
    return this.kernel.log.lines;
  }

  /** Calls `fn` for every line the kernel logs; returns a remover. */
  onPrintk(fn: (line: string) => void): () => void {
    return this.kernel.log.onLine(fn);
  }

  /** Everything written to the console. */
  consoleOutput(): string {
    return this.kernel.vfs.console;
  }

  /** Calls `fn` with console output as processes write it; returns a remover. */
  onConsole(fn: (pid: number, text: string) => void): () => void {
    return this.kernel.vfs.onConsole(fn);
  }

  /** Address of a kernel symbol (as in /proc/kallsyms). */
  symbol(name: string): bigint {
    return u64(this.kernel.sym(name));
  }

  /** Every kernel symbol: name → address. */
  symbols(): Map<string, bigint> {
    return new Map([...this.kernel.image.symbols.values()].map((s) => [s.name, u64(s.addr)]));
  }

  /** Where the kernel was placed. */
  get layout(): { textBase: bigint; physBase: number; kaslrOffset: bigint; pageOffset: bigint; swapperPgd: number } {
    const k = this.kernel;
    return {
      textBase: u64(k.layout.textVirt),
      physBase: k.layout.physBase,
      kaslrOffset: BigInt(k.layout.kaslrOffset),
      pageOffset: u64(k.layout.pageOffset),
      swapperPgd: k.swapperPgd,
    };
  }

  /** The physical memory map the guest uses. */
  get e820(): readonly E820Entry[] {
    return this.kernel.e820;
  }

  /** Loaded modules, in load order. */
  modules(): ModuleInfo[] {
    return this.kernel.modules.loaded.map((m) => ({
      name: m.name,
      core: u64(m.core),
      coreSize: m.coreSize,
      textSize: m.textSize,
      structModule: u64(m.structModule),
    }));
  }

  /**
   * Translates a virtual address through a process's page tables (or the
   * kernel's, with pid 0) without side effects: the physical address, or null.
   */
  translate(pid: number, va: bigint): number | null {
    const k = this.kernel;
    const cr3 = pid === 0 ? k.swapperPgd : (k.sched.tasks.get(pid)?.cr3 ?? null);
    if (cr3 === null) return null;
    const w = walkPageTables((a) => k.mem.read(a, 4), cr3, s64(va), { nxe: true, pge: true, maxPhysAddr: 46 });
    return w.ok ? w.phys : null;
  }

  /** Swap device statistics. */
  swapStats(): { used: number; out: number; in: number; size: number } {
    const s = this.kernel.mmsys.swap;
    return { used: s.used, out: s.stats.out, in: s.stats.in, size: s.pages };
  }

  /** Free physical pages. */
  get freePages(): number {
    return this.kernel.pages.freePages;
  }
}
