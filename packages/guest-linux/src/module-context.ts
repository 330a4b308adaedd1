import type { Cpu, ThunkFrame } from "@visorlab/x86-core";
import { GuestLinuxError } from "./errors";
import { type Gen, u64 } from "./gen";
import { bytesOf, CpuMem } from "./mem";
import type { LoadedModule, Modules } from "./module";
import { PERCPU } from "./structs";

/** An address or 64-bit value as module code passes it. */
export type Addr = bigint | number;

const lin = (a: Addr): number => (typeof a === "bigint" ? Number(BigInt.asIntN(64, a)) : a);

/**
 * What a TypeScript module function gets as `k`: guest context on the vCPU
 * that called it. Memory accesses are architectural (through the vCPU's MMU,
 * replayed on real instructions in the module's own text when they fault);
 * `call` is a real CALL from the module's text (the return lands on a resume
 * thunk in the module's text page); `printk` and every other kernel service is
 * a real call into kernel text. All methods that touch the guest are
 * coroutine steps: use them with `yield*`.
 */
export class ModuleContext {
  /** The memory access this module's code makes. */
  readonly m: CpuMem;
  private readonly symCache: Map<string, bigint>;

  constructor(
    private readonly mods: Modules,
    /** The loaded module this code belongs to. */
    readonly instance: LoadedModule,
    readonly frame: ThunkFrame,
  ) {
    this.m = new CpuMem(frame, instance.stubs);
    this.symCache = instance.symCache;
  }

  /** The vCPU running this code. */
  get cpu(): Cpu {
    return this.frame.cpu;
  }
  /** The module's name. */
  get name(): string {
    return this.instance.name;
  }
  /** `THIS_MODULE`: address of the module's `struct module`. */
  get module(): bigint {
    return u64(this.instance.structModule);
  }
  /** `module_core`: base of the module's memory. */
  get core(): bigint {
    return u64(this.instance.core);
  }
  /** `core_size` in bytes. */
  get coreSize(): number {
    return this.instance.coreSize;
  }

  /** Address of one of the module's functions (its thunk in module text). */
  fn(name: string): bigint {
    const a = this.instance.fnAddr.get(name);
    if (a === undefined) throw new GuestLinuxError("NOT_FOUND", `module ${this.name} has no function ${name}`);
    return u64(a);
  }
  /** Address of one of the module's variables. */
  var(name: string): bigint {
    const a = this.instance.varAddr.get(name);
    if (a === undefined) throw new GuestLinuxError("NOT_FOUND", `module ${this.name} has no variable ${name}`);
    return u64(a);
  }
  /** Address of one of the module's raw code blobs. */
  code(name: string): bigint {
    const a = this.instance.codeAddr.get(name);
    if (a === undefined) throw new GuestLinuxError("NOT_FOUND", `module ${this.name} has no code ${name}`);
    return u64(a);
  }

  /** The value of a module parameter (read from the module's data). */
  *param(name: string): Gen<string | number | boolean | null> {
    const p = this.instance.params.get(name);
    if (p === undefined) throw new GuestLinuxError("NOT_FOUND", `module ${this.name} has no parameter ${name}`);
    if (p.type === "string") {
      const ptr = yield* this.m.readPtr(p.addr);
      return ptr === 0 ? null : yield* this.m.readCString(ptr, 4096);
    }
    const v = (yield* this.m.read32(p.addr)) | 0;
    return p.type === "bool" ? v !== 0 : v;
  }

  read8(a: Addr): Gen<number> {
    return this.m.read8(lin(a));
  }
  read16(a: Addr): Gen<number> {
    return this.m.read16(lin(a));
  }
  read32(a: Addr): Gen<number> {
    return this.m.read32(lin(a));
  }
  read64(a: Addr): Gen<bigint> {
    return this.m.read64(lin(a));
  }
  write8(a: Addr, v: number): Gen<void> {
    return this.m.write8(lin(a), v);
  }
  write16(a: Addr, v: number): Gen<void> {
    return this.m.write16(lin(a), v);
  }
  write32(a: Addr, v: number): Gen<void> {
    return this.m.write32(lin(a), v);
  }
  write64(a: Addr, v: Addr): Gen<void> {
    return this.m.write64(lin(a), typeof v === "bigint" ? v : u64(v));
  }
  readBytes(a: Addr, n: number): Gen<Uint8Array> {
    return this.m.readBytes(lin(a), n);
  }
  writeBytes(a: Addr, b: Uint8Array): Gen<void> {
    return this.m.writeBytes(lin(a), b);
  }
  readCString(a: Addr, max = 4096): Gen<string | null> {
    return this.m.readCString(lin(a), max);
  }

  /**
   * Calls guest code — an address, or a kernel/module symbol name resolved with
   * `kallsyms_lookup_name` — with up to six arguments. Resumes with RAX.
   */
  *call(target: Addr | string, ...args: Addr[]): Gen<bigint> {
    const t = typeof target === "string" ? yield* this.symbol(target) : u64(lin(target));
    if (t === 0n) throw new GuestLinuxError("NOT_FOUND", `unknown symbol ${String(target)} called from ${this.name}`);
    yield* this.m.probeCallSlot();
    return yield {
      kind: "call",
      target: t,
      args: args.map((v) => (typeof v === "bigint" ? v : u64(v))),
      resumeAt: u64(this.instance.stubs.resume),
    };
  }

  /**
   * Runs guest code with the given registers (numbers as in x86-core `REG`):
   * execution continues at `rip` and this coroutine resumes when that code
   * reaches a resume thunk (`RESUME_THUNK`) with RSP unchanged — e.g. a
   * code blob `vmcall; <resume thunk>`. Returns RAX; the other registers the
   * code left are in `k.cpu` until the next guest request.
   */
  *exec(rip: Addr, regs: Readonly<Record<number, Addr>> = {}): Gen<bigint> {
    const r: Record<number, bigint> = {};
    for (const [n, v] of Object.entries(regs)) r[Number(n)] = typeof v === "bigint" ? BigInt.asUintN(64, v) : u64(v);
    return yield { kind: "exec", rip: u64(lin(rip)), regs: r };
  }

  /** `kallsyms_lookup_name(name)` (a real call, cached per module): 0n when unknown. */
  *symbol(name: string): Gen<bigint> {
    const hit = this.symCache.get(name);
    if (hit !== undefined) return hit;
    const p = yield* this.pushString(name);
    yield* this.m.probeCallSlot();
    const v = yield {
      kind: "call",
      target: u64(this.mods.kernelSym("kallsyms_lookup_name")),
      args: [p],
      resumeAt: u64(this.instance.stubs.resume),
    };
    if (v !== 0n) this.symCache.set(name, v);
    return v;
  }

  /** Reserves `n` bytes in this function's stack frame (released when it returns). */
  alloca(n: number): bigint {
    const rsp = this.cpu.getRsp();
    const a = Math.floor((rsp - n) / 16) * 16;
    this.cpu.setRsp(a);
    return u64(a);
  }

  /** Copies a NUL-terminated string into this function's stack frame; returns its address. */
  *pushString(s: string): Gen<bigint> {
    const a = this.alloca(s.length + 1);
    yield* this.m.writeBytes(lin(a), bytesOf(s, true));
    return a;
  }

  /**
   * `printk(fmt, …)`: the format and any string arguments are placed on the
   * stack, numbers in registers (and on the stack beyond five), and the
   * kernel's printk is called.
   */
  *printk(fmt: string, ...args: (Addr | string)[]): Gen<bigint> {
    const fmtPtr = yield* this.pushString(fmt);
    const vals: bigint[] = [];
    for (const a of args)
      vals.push(typeof a === "string" ? yield* this.pushString(a) : typeof a === "bigint" ? a : u64(a));
    const regs = vals.slice(0, 5);
    const stack = vals.slice(5);
    if (stack.length > 0) {
      const base = this.alloca(8 * stack.length);
      for (let i = 0; i < stack.length; i++) yield* this.m.write64(lin(base) + 8 * i, stack[i]!);
    }
    yield* this.m.probeCallSlot();
    return yield {
      kind: "call",
      target: u64(this.mods.kernelSym("printk")),
      args: [fmtPtr, ...regs],
      resumeAt: u64(this.instance.stubs.resume),
    };
  }

  /** `current`: the running task's `task_struct` address (read through GS). */
  *current(): Gen<bigint> {
    return u64(yield* this.m.readPtr(this.cpu.segBase[5]! + PERCPU.current_task));
  }
}
