import {
  type Cpu,
  type PhysicalMemory,
  REG,
  SEG,
  type ThunkCoroutine,
  type ThunkFrame,
  type ThunkTable,
  type ThunkValue,
  VECTOR,
} from "@visorlab/x86-core";
import { Creds } from "./cred";
import { buildE820, E820_TYPE, type E820Entry } from "./e820";
import { GuestLinuxError } from "./errors";
import { Vfs } from "./fs";
import { type Gen, u64 } from "./gen";
import { KernelImage } from "./image";
import { Kallsyms } from "./kallsyms";
import { KernelApi } from "./kapi";
import { computeLayout, KERNEL_VM, type KernelLayout, PAGE_SIZE, type ReservedRegion } from "./layout";
import { type AccessStubs, CpuMem, type Mem, PhysMem } from "./mem";
import { MmSys } from "./mm";
import { Modules } from "./module";
import { PageAllocator } from "./page-alloc";
import { PageAttr } from "./pageattr";
import { PageTables, PGPROT } from "./pgtable";
import type { KernelLog } from "./printk";
import { Processes } from "./process";
import { ProcFs } from "./procfs";
import { SeededRandom } from "./rng";
import { Sched } from "./sched";
import { Signals } from "./signal";
import { Slab } from "./slab";
import { PERCPU } from "./structs";
import { Syscalls } from "./syscalls";
import { Traps } from "./traps";

/** Swap configuration. */
export interface SwapConfig {
  /** Size of the swap device in pages (0 disables swap). Default 4096 (16 MiB). */
  pages?: number;
  /**
   * Memory pressure: when an allocation of user memory finds fewer free pages
   * than this, the kernel reclaims (swaps out) `reclaimBatch` pages first. Default 0 (off).
   */
  minFreePages?: number;
  /** Pages reclaimed per pressure event. Default 32. */
  reclaimBatch?: number;
}

/** Configuration of a {@link GuestLinux} guest. Every field has a default. */
export interface GuestLinuxConfig {
  /** Seed of every random choice (KASLR, scattered page allocation). Default 1. */
  seed?: number | bigint;
  /** Randomize the kernel's physical and virtual load address. Default false. */
  kaslr?: boolean;
  /** Direct-map base: `0xffff888000000000n` (default, Linux ≥ 4.20) or `0xffff880000000000n` (3.x–4.19, as in the articles). */
  directMapBase?: bigint;
  /**
   * Physical memory reserved for a hypervisor and excluded from the guest's
   * memory map; `null` for none. Default: the top 64 MiB of RAM.
   */
  reserved?: ReservedRegion | null;
  /** `uname -n`. Default "visorlab". */
  hostname?: string;
  /** `uname -r`. Default "4.4.0-visorlab". */
  release?: string;
  /**
   * Nominal instructions per second: timestamps and clocks advance by
   * 1/clockHz seconds per retired instruction. Default 1e6 (one instruction is
   * one microsecond, so `[    0.001234]` is instruction 1234 of that CPU).
   */
  clockHz?: number;
  /** CLOCK_REALTIME at instruction 0, in seconds since the epoch. Default 1481155200 (2016-12-08). */
  epoch?: number;
  /** Swap device and memory-pressure policy. */
  swap?: SwapConfig;
  /**
   * The machine has an xAPIC at 0xfee00000 (provided by an upper layer): the
   * kernel maps it, each CPU enables its own (spurious-interrupt vector 0xff)
   * and, when `lapicTimerCount` is set, starts its periodic timer on vector
   * 0xef; interrupt handlers write EOI. Default false.
   */
  lapic?: boolean;
  /** Initial count of the periodic local APIC timer (0 = leave the timer off). Default 0. */
  lapicTimerCount?: number;
  /**
   * How a host-originated interrupt reaches a CPU (waking it for work queued
   * by {@link GuestLinux.spawn}). Default: `cpu.raiseInterrupt(vector)`; a
   * machine with interrupt controllers may route it through them.
   */
  raiseInterrupt?: (cpu: number, vector: number) => void;
}

/** The configuration with every default applied. */
export interface ResolvedConfig {
  seed: bigint;
  kaslr: boolean;
  directMapBase: bigint;
  reserved: ReservedRegion | null;
  hostname: string;
  release: string;
  clockHz: number;
  epoch: number;
  swapPages: number;
  minFreePages: number;
  reclaimBatch: number;
  lapic: boolean;
  lapicTimerCount: number;
}

/** Resolves defaults against the machine's RAM size. */
export function resolveConfig(c: GuestLinuxConfig, ramSize: number): ResolvedConfig {
  const top = 64 * 1024 * 1024;
  const reserved =
    c.reserved !== undefined ? c.reserved : ramSize >= 4 * top ? { base: ramSize - top, size: top } : null;
  return {
    seed: BigInt(c.seed ?? 1),
    kaslr: c.kaslr ?? false,
    directMapBase: c.directMapBase ?? KERNEL_VM.DIRECT_MAP,
    reserved,
    hostname: c.hostname ?? "visorlab",
    release: c.release ?? "4.4.0-visorlab",
    clockHz: c.clockHz ?? 1e6,
    epoch: c.epoch ?? 1481155200,
    swapPages: c.swap?.pages ?? 4096,
    minFreePages: c.swap?.minFreePages ?? 0,
    reclaimBatch: c.swap?.reclaimBatch ?? 32,
    lapic: c.lapic ?? false,
    lapicTimerCount: c.lapicTimerCount ?? 0,
  };
}

/** A TypeScript kernel function: receives its context and the six argument registers. */
export type KernelFnImpl = (c: KCtx, a: readonly bigint[]) => Gen<ThunkValue> | ThunkValue;

const ARG_REGS = [REG.RDI, REG.RSI, REG.RDX, REG.RCX, REG.R8, REG.R9] as const;

/**
 * The execution context of TypeScript kernel code: the invocation's vCPU (via
 * its thunk frame) and the architectural memory access of kernel text. At boot
 * (no processor running yet) memory goes to physical RAM directly and calls
 * into guest code are impossible.
 */
export class KCtx {
  readonly m: Mem;

  constructor(
    readonly k: Kernel,
    readonly frame: ThunkFrame | null,
  ) {
    this.m = frame !== null ? new CpuMem(frame, k.kstubs) : k.bootMem;
  }

  /** The vCPU this code runs on. */
  get cpu(): Cpu {
    if (this.frame === null) throw new GuestLinuxError("STATE", "boot-time kernel code has no processor");
    return this.frame.cpu;
  }

  /** Calls guest code at `target` (a real CALL from kernel text); resumes with RAX. */
  *call(target: number, ...args: (number | bigint)[]): Gen<bigint> {
    if (this.frame === null) throw new GuestLinuxError("STATE", "boot-time kernel code cannot call guest code");
    yield* (this.m as CpuMem).probeCallSlot();
    return yield {
      kind: "call",
      target: u64(target),
      args: args.map((v) => (typeof v === "bigint" ? v : u64(v))),
      resumeAt: u64(this.k.kresume),
    };
  }

  /** Calls a kernel function by symbol name. */
  *callSym(name: string, ...args: (number | bigint)[]): Gen<bigint> {
    return yield* this.call(this.k.image.addr(name), ...args);
  }

  /** `this_cpu_read(current_task)`: reads the per-CPU area through GS. */
  *current(): Gen<number> {
    if (this.frame === null) return this.k.bootTask;
    return yield* this.m.readPtr(this.frame.cpu.segBase[SEG.GS]! + PERCPU.current_task);
  }

  /** `local_clock()` in nanoseconds: the vCPU's retired instructions at the nominal clock. */
  nowNs(): bigint {
    if (this.frame === null) return 0n;
    return this.k.instretToNs(this.frame.cpu.instret);
  }

  /** Emits a kernel log line (printk from TypeScript kernel code). */
  *printk(text: string): Gen<void> {
    yield* this.k.log.emit(this.m, this.nowNs(), text);
  }

  /** The kernel page tables' operations over this context's memory access. */
  pageTables(): PageTables {
    return new PageTables(this.m, this.k.layout.pageOffset, () => this.k.getZeroedPagePhys(this));
  }
}

/**
 * The guest kernel's core state: memory map, layout, allocators, image and
 * symbol table, the kernel function registry. Subsystems (scheduler, memory
 * management, files, modules, system calls) hang off it.
 */
export class Kernel {
  readonly cfg: ResolvedConfig;
  readonly rng: SeededRandom;
  readonly e820: E820Entry[];
  readonly layout: KernelLayout;
  readonly pages: PageAllocator;
  readonly slab: Slab;
  readonly image: KernelImage;
  readonly bootMem: PhysMem;
  /** Physical address of `swapper_pg_dir` / `init_level4_pgt`. */
  swapperPgd = 0;
  /** Kernel replay stubs and resume thunk (set when the entry code is assembled). */
  kstubs: AccessStubs = { read8: 0, read16: 0, read32: 0, read64: 0, write8: 0, write16: 0, write32: 0, write64: 0 };
  kresume = 0;
  /** Task used as `current` by boot-time code. */
  bootTask = 0;
  log!: KernelLog;
  /** Delivers a host-originated interrupt to a CPU. */
  readonly raiseInterrupt: (cpu: number, vector: number) => void;
  /** Next free virtual address of the vmalloc area and of the module area (never reused). */
  vmallocNext: number;
  modulesNext: number;
  /** vmalloc'd areas: base → { size, pfns }. */
  readonly vmAreas = new Map<number, { size: number; pfns: number[]; kind: "vmalloc" | "module" }>();
  readonly sched: Sched;
  readonly creds: Creds;
  readonly signals: Signals;
  readonly traps: Traps;
  readonly mmsys: MmSys;
  readonly vfs: Vfs;
  readonly procfs: ProcFs;
  readonly kallsyms: Kallsyms;
  readonly modules: Modules;
  readonly pageattr: PageAttr;
  readonly syscalls: Syscalls;
  readonly procs: Processes;
  readonly api: KernelApi;

  constructor(
    readonly mem: PhysicalMemory,
    readonly cpus: readonly Cpu[],
    readonly thunks: ThunkTable,
    config: GuestLinuxConfig,
  ) {
    this.cfg = resolveConfig(config, mem.ramSize);
    this.raiseInterrupt = config.raiseInterrupt ?? ((cpu, vector) => this.cpus[cpu]!.raiseInterrupt(vector));
    this.rng = new SeededRandom(this.cfg.seed);
    this.e820 = buildE820(mem.ramSize, this.cfg.reserved);
    const usable = this.e820.filter((e) => e.type === E820_TYPE.RAM);
    this.layout = computeLayout({
      ramSize: mem.ramSize,
      directMapBase: this.cfg.directMapBase,
      kaslr: this.cfg.kaslr,
      usable,
      rng: this.rng.fork(1),
    });
    this.pages = new PageAllocator(this.e820, this.rng.fork(2));
    // The first MiB stays with the firmware; the kernel image is reserved where it was loaded.
    this.pages.reserve(0, 256);
    this.slab = new Slab(this.pages, this.layout.pageOffset);
    this.image = new KernelImage(this.layout);
    this.bootMem = new PhysMem(mem, (lin) => this.virtToPhysAny(lin));
    this.vmallocNext = this.layout.vmallocStart;
    // With KASLR the module area starts at a random page offset (module_load_offset, arch/x86/kernel/module.c).
    this.modulesNext = this.layout.modulesStart + (this.cfg.kaslr ? (this.rng.fork(3).below(1024) + 1) * PAGE_SIZE : 0);
    // Subsystems register their kernel functions (text slots) in a fixed order.
    this.api = new KernelApi(this);
    this.sched = new Sched(this);
    this.creds = new Creds(this);
    this.signals = new Signals(this);
    this.traps = new Traps(this);
    this.mmsys = new MmSys(this);
    this.vfs = new Vfs(this);
    this.procfs = new ProcFs(this, this.vfs);
    this.kallsyms = new Kallsyms(this);
    this.modules = new Modules(this);
    this.pageattr = new PageAttr(this);
    this.syscalls = new Syscalls(this);
    this.procs = new Processes(this);
  }

  /** `%pS` of an address: `symbol+0xoff/0xsize` (with ` [module]` for module text), or the bare hex. */
  symbolize(addr: number): string {
    const s = this.image.symbolize(addr);
    if (s !== null) return `${s.sym.name}+0x${s.offset.toString(16)}/0x${Math.max(s.sym.size, 1).toString(16)}`;
    return this.modules.symbolize(addr) ?? `0x${u64(addr).toString(16)}`;
  }

  /** Nanoseconds for a count of retired instructions at the nominal clock. */
  instretToNs(instret: number): bigint {
    return (BigInt(instret) * 1000000000n) / BigInt(Math.round(this.cfg.clockHz));
  }

  /**
   * Registers a TypeScript kernel function: a thunk in kernel text at a symbol
   * address, so calling it is a real control transfer the processor fetches.
   */
  fn(name: string, impl: KernelFnImpl, opts: { exported?: boolean; local?: boolean } = {}): number {
    const id = this.thunks.register(name, (cpu, frame): ThunkValue | ThunkCoroutine => {
      // Kernel code runs at CPL 0 only: from user mode the escape is the #UD it is on hardware.
      if (cpu.cpl !== 0) cpu.fault(VECTOR.UD);
      const a = ARG_REGS.map((r) => cpu.getReg64(r));
      return impl(new KCtx(this, frame), a) as ThunkValue | ThunkCoroutine;
    });
    return this.image.allocThunk(name, id, opts.exported ?? false, opts.local ?? false);
  }

  /** Address of a kernel symbol (signed canonical). */
  sym(name: string): number {
    return this.image.addr(name);
  }

  // ---------------------------------------------------------------- address translation (host view)

  /** `__pa` of a direct-map or image address; NaN for anything else. */
  virtToPhys(lin: number): number {
    const po = this.layout.pageOffset;
    if (lin >= po && lin < po + this.mem.ramSize) return lin - po;
    const img = lin - this.layout.imageDelta;
    if (lin >= this.layout.textVirt && img < this.layout.physBase + 3 * 2 * 1024 * 1024) return img;
    return Number.NaN;
  }

  private virtToPhysAny(lin: number): number {
    const p = this.virtToPhys(lin);
    if (Number.isNaN(p))
      throw new GuestLinuxError(
        "STATE",
        `boot-time access to an address without a fixed mapping: 0x${u64(lin).toString(16)}`,
      );
    return p;
  }

  /** `__va` of a physical address. */
  physToVirt(pa: number): number {
    return this.layout.pageOffset + pa;
  }

  // ---------------------------------------------------------------- page allocation

  /** `get_zeroed_page`: one zeroed page; returns its physical address (throws OUT_OF_MEMORY when none). */
  *getZeroedPagePhys(c: KCtx): Gen<number> {
    const pfn = this.pages.allocContig(0);
    if (pfn < 0) throw new GuestLinuxError("OUT_OF_MEMORY", "no free page for a kernel page table");
    const pa = pfn * PAGE_SIZE;
    yield* c.m.fill(this.physToVirt(pa), PAGE_SIZE, 0);
    return pa;
  }

  /**
   * `vmalloc` / `module_alloc`: `size` bytes of virtually contiguous memory
   * made of scattered physical pages, mapped with `prot` in the kernel page
   * tables (shared by every address space). Returns 0 when memory is exhausted.
   */
  *vmalloc(c: KCtx, size: number, kind: "vmalloc" | "module", prot: bigint = PGPROT.KERNEL): Gen<number> {
    const npages = Math.max(1, Math.ceil(size / PAGE_SIZE));
    const isModule = kind === "module";
    const base = isModule ? this.modulesNext : this.vmallocNext;
    const end = base + npages * PAGE_SIZE;
    if (end + PAGE_SIZE > (isModule ? this.layout.modulesEnd : this.layout.vmallocEnd)) return 0;
    if (this.pages.freePages < npages) return 0;
    // A guard page separates areas, as in Linux.
    if (isModule) this.modulesNext = end + PAGE_SIZE;
    else this.vmallocNext = end + PAGE_SIZE;
    const pt = c.pageTables();
    const pfns: number[] = [];
    let prev = -1;
    for (let k = 0; k < npages; k++) {
      const pfn = this.pages.allocScattered(prev);
      if (pfn < 0) {
        for (const p of pfns) this.pages.freeRange(p);
        return 0;
      }
      pfns.push(pfn);
      prev = pfn;
      yield* pt.map4k(this.swapperPgd, base + k * PAGE_SIZE, pfn * PAGE_SIZE, prot, PGPROT.KERNPG_TABLE);
    }
    this.vmAreas.set(base, { size: npages * PAGE_SIZE, pfns, kind });
    return base;
  }

  /**
   * `vfree`: unmaps and frees an area. The local TLB entries are flushed with
   * INVLPG; the virtual range is never handed out again, so other CPUs' stale
   * entries cannot alias new memory.
   */
  *vfree(c: KCtx, base: number): Gen<boolean> {
    const area = this.vmAreas.get(base);
    if (area === undefined) return false;
    this.vmAreas.delete(base);
    const pt = c.pageTables();
    for (let k = 0; k < area.pfns.length; k++) {
      const lin = base + k * PAGE_SIZE;
      const slot = yield* pt.lookup(this.swapperPgd, lin);
      if (slot.level === 1) yield* c.m.write64(slot.addr, 0n);
      yield* c.callSym("__native_flush_tlb_single", lin);
      this.pages.freeRange(area.pfns[k]!);
    }
    return true;
  }

  /** The vmalloc area containing `lin`, if any. */
  vmAreaOf(lin: number): { base: number; size: number; pfns: number[]; kind: "vmalloc" | "module" } | null {
    for (const [base, a] of this.vmAreas) if (lin >= base && lin < base + a.size) return { base, ...a };
    return null;
  }
}
