import type { ThunkCoroutine, ThunkValue } from "@visorlab/x86-core";
import { VECTOR } from "@visorlab/x86-core";
import { Assembler } from "@visorlab/x86-core/asm";
import { ERRNO } from "./abi";
import { emitReplayStubs, REPLAY_STUBS } from "./entry-asm";
import { GuestLinuxError } from "./errors";
import { type Gen, u64 } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { type AccessStubs, bytesOf } from "./mem";
import { ModuleContext } from "./module-context";
import type { IoctlHandler, ModuleDefinition, ModuleFn, ModuleParamType } from "./module-def";
import { parseModuleImage } from "./module-def";
import { PGPROT } from "./pgtable";
import {
  EXTABLE_ENTRY,
  FOPS,
  KERNEL_PARAM,
  LIST_HEAD,
  MODULE_NAME_LEN,
  MODULE_STATE,
  MUTEX,
  STRUCT_MODULE,
} from "./structs";

/** A module loaded in the guest (the host's index of it; the guest's is its `struct module`). */
export interface LoadedModule {
  def: ModuleDefinition;
  name: string;
  core: number;
  coreSize: number;
  textSize: number;
  roSize: number;
  structModule: number;
  fnAddr: Map<string, number>;
  varAddr: Map<string, number>;
  codeAddr: Map<string, number>;
  params: Map<string, { addr: number; type: ModuleParamType }>;
  stubs: AccessStubs & { resume: number };
  symCache: Map<string, bigint>;
  taint: string;
  /** Symbols for /proc/kallsyms: name, address, type. */
  syms: { name: string; addr: number; type: "t" | "d" | "r" | "b" }[];
}

const GPL_COMPATIBLE = new Set([
  "GPL",
  "GPL v2",
  "GPL and additional rights",
  "Dual BSD/GPL",
  "Dual MIT/GPL",
  "Dual MPL/GPL",
]);

type Slot = { key: string; symbol: string };

const s64 = (v: bigint) => Number(BigInt.asIntN(64, v));

/**
 * Loadable modules (kernel/module.c of the 4.x era): `init_module` /
 * `finit_module` / `delete_module`, `struct module` in the module's own memory
 * linked into the `modules` list, `find_module` walking that list under
 * `module_mutex`, taints, parameters, module exception tables.
 */
export class Modules {
  private readonly defs = new Map<string, { def: ModuleDefinition; ids: Map<string, number> }>();
  readonly loaded: LoadedModule[] = [];
  private stubCode: { bytes: Uint8Array; offsets: Map<string, number> } | null = null;
  private printedOot = false;
  private lockdepOff = false;

  constructor(private readonly k: Kernel) {
    k.fn("find_module", (c, a) => this.findModuleCall(c, s64(a[0]!)), { exported: true });
    k.fn("mutex_lock", (c, a) => this.mutexLock(c, s64(a[0]!), false), { exported: true });
    k.fn("mutex_lock_interruptible", (c, a) => this.mutexLock(c, s64(a[0]!), true), { exported: true });
    k.fn("mutex_trylock", (c, a) => this.mutexTrylock(c, s64(a[0]!)), { exported: true });
    k.fn("mutex_unlock", (c, a) => this.mutexUnlock(c, s64(a[0]!)), { exported: true });
  }

  /** Registers a module definition so an image naming it can be loaded. */
  register(def: ModuleDefinition): void {
    if (!/^[A-Za-z0-9_-]{1,55}$/.test(def.name))
      throw new GuestLinuxError("INVALID_ARGUMENT", `bad module name ${JSON.stringify(def.name)}`);
    if (this.defs.has(def.name))
      throw new GuestLinuxError("ALREADY_EXISTS", `module ${def.name} is already registered`);
    this.defs.set(def.name, { def, ids: new Map() });
  }

  /** Address of a kernel symbol. */
  kernelSym(name: string): number {
    return this.k.sym(name);
  }

  /** The loaded module whose text contains `rip`. */
  instanceAt(rip: number): LoadedModule | undefined {
    return this.loaded.find((m) => rip >= m.core && rip < m.core + m.textSize);
  }

  /** The loaded module containing `addr` anywhere in its memory. */
  moduleAt(addr: number): LoadedModule | undefined {
    return this.loaded.find((m) => addr >= m.core && addr < m.core + m.coreSize);
  }

  /** Symbols of loaded modules (for /proc/kallsyms and kallsyms_lookup_name). */
  symbols(): { name: string; addr: bigint; type: string; module: string }[] {
    const out: { name: string; addr: bigint; type: string; module: string }[] = [];
    for (const m of this.loaded)
      for (const s of m.syms) out.push({ name: s.name, addr: u64(s.addr), type: s.type, module: m.name });
    return out;
  }

  /** `sym+0xoff/0xsize [module]` for an address inside a module, or null. */
  symbolize(addr: number): string | null {
    const m = this.moduleAt(addr);
    if (m === undefined) return null;
    let best: { name: string; addr: number } | null = null;
    for (const s of m.syms) if (s.addr <= addr && (best === null || s.addr > best.addr)) best = s;
    if (best === null) return null;
    return `${best.name}+0x${(addr - best.addr).toString(16)}/0x10 [${m.name}]`;
  }

  /** "Modules linked in:" of an oops. */
  linkedIn(): string {
    return this.loaded.map((m) => (m.taint === "" ? m.name : `${m.name}(${m.taint})`)).join(" ");
  }

  /** Taint flags of a loaded module ("O", "PO" …). */
  taintFlagsOf(name: string): string {
    return this.loaded.find((m) => m.name === name)?.taint ?? "";
  }

  // ---------------------------------------------------------------- struct mutex

  /**
   * `mutex_lock[_interruptible](lock)` over the `struct mutex` in guest memory:
   * takes it when `count` is 1; otherwise records a waiter and gives up the
   * CPU (`schedule`) until it is free. The interruptible form returns -EINTR
   * when a signal is pending.
   */
  *mutexLock(c: KCtx, lock: number, interruptible: boolean): Gen<number> {
    const m = c.m;
    for (;;) {
      const count = (yield* m.read32(lock + MUTEX.count)) | 0;
      if (count === 1) {
        yield* m.write32(lock + MUTEX.count, 0);
        yield* m.writePtr(lock + MUTEX.owner, yield* c.current());
        return 0;
      }
      if (c.frame === null) throw new GuestLinuxError("STATE", "mutex contended at boot");
      const t = yield* this.k.sched.cur(c);
      if (interruptible && t.pendingSignals.length > 0) return -ERRNO.EINTR;
      yield* m.write32(lock + MUTEX.count, -1);
      t.needResched = true;
      yield* c.callSym("schedule");
    }
  }

  private *mutexTrylock(c: KCtx, lock: number): Gen<number> {
    if (((yield* c.m.read32(lock + MUTEX.count)) | 0) !== 1) return 0;
    yield* c.m.write32(lock + MUTEX.count, 0);
    yield* c.m.writePtr(lock + MUTEX.owner, yield* c.current());
    return 1;
  }

  /** `mutex_unlock(lock)`. */
  *mutexUnlock(c: KCtx, lock: number): Gen<void> {
    yield* c.m.writePtr(lock + MUTEX.owner, 0);
    yield* c.m.write32(lock + MUTEX.count, 1);
  }

  // ---------------------------------------------------------------- find_module

  /** Walks the `modules` list in guest memory for a formed module called `name`; its address or 0. */
  *findModule(c: KCtx, name: string): Gen<number> {
    const m = c.m;
    const head = this.k.sym("modules");
    let node = yield* m.readPtr(head + LIST_HEAD.next);
    for (let guard = 0; node !== head && guard < 100000; guard++) {
      const mod = node - STRUCT_MODULE.list;
      if ((yield* m.read32(mod + STRUCT_MODULE.state)) !== MODULE_STATE.UNFORMED) {
        const n = yield* m.readCString(mod + STRUCT_MODULE.name, MODULE_NAME_LEN);
        if (n === name) return mod;
      }
      node = yield* m.readPtr(node + LIST_HEAD.next);
    }
    return 0;
  }

  /** `find_module(name)` as a kernel function: warns (while lock debugging is on) if `module_mutex` is not held. */
  private *findModuleCall(c: KCtx, namePtr: number): Gen<number> {
    const name = yield* c.m.readCString(namePtr, MODULE_NAME_LEN);
    if (name === null) return 0;
    const count = (yield* c.m.read32(this.k.sym("module_mutex") + MUTEX.count)) | 0;
    if (count === 1 && !this.lockdepOff)
      yield* c.printk(
        `\x014WARNING: CPU: ${c.cpu.index} at kernel/module.c:592 find_module_all: module_mutex not held\n`,
      );
    return yield* this.findModule(c, name);
  }

  // ---------------------------------------------------------------- loading

  private *lockModules(c: KCtx): Gen<void> {
    yield* this.mutexLock(c, this.k.sym("module_mutex"), false);
  }
  private *unlockModules(c: KCtx): Gen<void> {
    yield* this.mutexUnlock(c, this.k.sym("module_mutex"));
  }

  private stubs(): { bytes: Uint8Array; offsets: Map<string, number> } {
    if (this.stubCode === null) {
      const a = new Assembler();
      emitReplayStubs(a, "");
      const out = a.assemble(0n);
      const offsets = new Map<string, number>();
      for (const [l, v] of out.labels) offsets.set(l, Number(v));
      this.stubCode = { bytes: out.bytes, offsets };
    }
    return this.stubCode;
  }

  private slotsOf(def: ModuleDefinition): Slot[] {
    const slots: Slot[] = [];
    if (def.init !== undefined || def.chardev !== undefined) slots.push({ key: "init", symbol: "init_module" });
    if (def.exit !== undefined || def.chardev !== undefined) slots.push({ key: "exit", symbol: "cleanup_module" });
    for (const f of Object.keys(def.functions ?? {})) slots.push({ key: `fn:${f}`, symbol: f });
    const cd = def.chardev;
    if (cd !== undefined) {
      for (const op of ["open", "release", "read", "write"] as const)
        if (cd[op] !== undefined) slots.push({ key: `fops:${op}`, symbol: `${cd.name}_${op}` });
      if (cd.ioctl !== undefined) {
        slots.push({ key: "fops:ioctl", symbol: `${cd.name}_ioctl` });
        if (typeof cd.ioctl !== "function")
          for (const cmd of Object.keys(cd.ioctl))
            slots.push({ key: `ioctl:${cmd}`, symbol: `${cd.name}_ioctl_${cmd}` });
      }
    }
    return slots;
  }

  private thunkId(name: string, slot: Slot): number {
    const entry = this.defs.get(name)!;
    let id = entry.ids.get(slot.key);
    if (id === undefined) {
      id = this.k.thunks.register(`${name}:${slot.symbol}`, (cpu, frame): ThunkValue | ThunkCoroutine => {
        const inst = this.instanceAt(cpu.insnStart);
        // A module function runs at CPL 0 from its own text; anywhere else the escape is a #UD.
        if (inst === undefined || cpu.cpl !== 0) return cpu.fault(VECTOR.UD);
        const args = [7, 6, 2, 1, 8, 9].map((r) => cpu.getReg64(r));
        return this.runSlot(new ModuleContext(this, inst, frame), slot.key, args) as ThunkCoroutine;
      });
      entry.ids.set(slot.key, id);
    }
    return id;
  }

  private *runSlot(k: ModuleContext, key: string, a: bigint[]): Gen<ThunkValue> {
    const def = k.instance.def;
    const cd = def.chardev;
    if (key === "init") {
      if (cd !== undefined) {
        const major = s64(
          yield* k.call(
            "__register_chrdev",
            cd.major ?? 0,
            0,
            256,
            k.instance.varAddr.get("__chrdev_name")!,
            k.var("__fops"),
          ),
        );
        if (major < 0) return major;
        yield* k.write32(k.var("__chrdev_major"), major);
      }
      const r = def.init !== undefined ? yield* def.init(k) : 0;
      const rv = typeof r === "bigint" ? Number(BigInt.asIntN(32, r)) : (r ?? 0);
      if (rv < 0 && cd !== undefined)
        yield* k.call("__unregister_chrdev", yield* k.read32(k.var("__chrdev_major")), 0, 256);
      return rv;
    }
    if (key === "exit") {
      if (def.exit !== undefined) yield* def.exit(k);
      if (cd !== undefined) yield* k.call("__unregister_chrdev", yield* k.read32(k.var("__chrdev_major")), 0, 256);
      return 0;
    }
    if (key.startsWith("fn:")) return (yield* def.functions![key.slice(3)]!(k, ...a)) ?? 0;
    if (key === "fops:ioctl") {
      const [file, cmd, arg] = [a[0]!, Number(a[1]! & 0xffffffffn), a[2]!];
      const h = cd!.ioctl!;
      if (typeof h === "function") return yield* h(k, cmd, arg, file);
      if ((h as Record<number, IoctlHandler>)[cmd] === undefined) return -ERRNO.ENOTTY;
      return yield* k.call(k.fn(`${cd!.name}_ioctl_${cmd}`), file, cmd, arg);
    }
    if (key.startsWith("ioctl:")) {
      const h = (cd!.ioctl as Record<number, IoctlHandler>)[Number(key.slice(6))]!;
      return yield* h(k, Number(a[1]! & 0xffffffffn), a[2]!, a[0]!);
    }
    if (key.startsWith("fops:")) {
      const op = key.slice(5) as "open" | "release" | "read" | "write";
      return (yield* (cd![op] as ModuleFn)(k, ...a)) ?? 0;
    }
    return -ERRNO.ENOSYS;
  }

  /**
   * `load_module` + `do_init_module`: checks the image, allocates the module's
   * memory with `module_alloc` (scattered pages in the module area), writes
   * text (thunks, replay stubs, code), rodata and data (`struct module`,
   * `file_operations`, parameters, variables), links the module into `modules`
   * under `module_mutex`, applies the parameters, write-protects text and
   * rodata, and calls its init through the pointer in `struct module`.
   * Returns 0 or −errno.
   */
  *load(c: KCtx, image: Uint8Array, args: string): Gen<number> {
    const hdr = parseModuleImage(image);
    if (hdr === null) return -ERRNO.ENOEXEC;
    const entry = this.defs.get(hdr.name);
    if (entry === undefined) return -ERRNO.ENOEXEC;
    const want = this.vermagic();
    if (hdr.vermagic !== want) {
      yield* c.printk(`\x013${hdr.name}: version magic '${hdr.vermagic}' should be '${want}'\n`);
      return -ERRNO.ENOEXEC;
    }
    const def = entry.def;
    const name = def.name;
    yield* this.lockModules(c);
    if ((yield* this.findModule(c, name)) !== 0) {
      yield* this.unlockModules(c);
      return -ERRNO.EEXIST;
    }
    // ---- layout
    const slots = this.slotsOf(def);
    const st = this.stubs();
    let text = slots.length * 16;
    const stubOff = text;
    text += st.bytes.length;
    const codeOff = new Map<string, number>();
    for (const [n, blob] of Object.entries(def.code ?? {})) {
      text = Math.ceil(text / 16) * 16;
      codeOff.set(n, text);
      text += blob.bytes.length;
    }
    const textSize = Math.ceil(text / PAGE_SIZE) * PAGE_SIZE;
    const strings: string[] = [name, `license=${hdr.license}`, `vermagic=${want}`, ...Object.keys(def.params ?? {})];
    if (def.chardev !== undefined) strings.push(def.chardev.name);
    const strOff = new Map<string, number>();
    let ro = 0;
    for (const s of strings) {
      if (!strOff.has(s)) {
        strOff.set(s, ro);
        ro += s.length + 1;
      }
    }
    ro = Math.ceil(ro / 8) * 8;
    const extable: { insn: number; fixup: number }[] = [];
    for (const [n, blob] of Object.entries(def.code ?? {}))
      for (const e of blob.extable ?? [])
        extable.push({ insn: codeOff.get(n)! + e.insn, fixup: codeOff.get(n)! + e.fixup });
    const extOff = ro;
    ro += extable.length * EXTABLE_ENTRY.SIZE;
    const roSize = Math.ceil(ro / PAGE_SIZE) * PAGE_SIZE;
    const params = Object.entries(def.params ?? {});
    let data = STRUCT_MODULE.SIZE;
    const fopsOff = data;
    data += FOPS.SIZE;
    const kpOff = data;
    data += params.length * KERNEL_PARAM.SIZE;
    const paramOff = data;
    data += params.length * 8;
    const varOff = new Map<string, number>();
    const vars: [string, number][] = [...Object.entries(def.vars ?? {}), ["__chrdev_major", 8]];
    for (const [n, size] of vars) {
      data = Math.ceil(data / 8) * 8;
      varOff.set(n, data);
      data += Math.max(1, size);
    }
    const dataSize = Math.ceil(data / PAGE_SIZE) * PAGE_SIZE;
    const coreSize = textSize + roSize + dataSize;
    const core = yield* this.k.vmalloc(c, coreSize, "module", PGPROT.KERNEL_EXEC);
    if (core === 0) {
      yield* this.unlockModules(c);
      return -ERRNO.ENOMEM;
    }
    const roBase = core + textSize;
    const dataBase = roBase + roSize;
    const mod = dataBase;
    const m = c.m;
    // ---- text
    const inst: LoadedModule = {
      def,
      name,
      core,
      coreSize,
      textSize,
      roSize: textSize + roSize,
      structModule: mod,
      fnAddr: new Map(),
      varAddr: new Map(),
      codeAddr: new Map(),
      params: new Map(),
      stubs: {
        resume: core + stubOff + st.offsets.get("resume")!,
        ...(Object.fromEntries(
          REPLAY_STUBS.map((s) => [s, core + stubOff + st.offsets.get(s)!]),
        ) as unknown as AccessStubs),
      },
      symCache: new Map(),
      taint: "",
      syms: [],
    };
    const textBytes = new Uint8Array(textSize);
    slots.forEach((s, i) => {
      const id = this.thunkId(name, s);
      textBytes.set([0x0f, 0xff, 0x05, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24], i * 16);
      const addr = core + i * 16;
      if (s.key.startsWith("fn:")) inst.fnAddr.set(s.key.slice(3), addr);
      else inst.fnAddr.set(s.symbol, addr);
      inst.syms.push({ name: s.symbol, addr, type: "t" });
    });
    textBytes.set(st.bytes, stubOff);
    for (const [n, off] of codeOff) {
      textBytes.set(def.code![n]!.bytes, off);
      inst.codeAddr.set(n, core + off);
      inst.syms.push({ name: n, addr: core + off, type: "t" });
    }
    yield* m.writeBytes(core, textBytes);
    // ---- rodata
    const roBytes = new Uint8Array(roSize);
    for (const [s, off] of strOff) roBytes.set(bytesOf(s, true), off);
    const rv = new DataView(roBytes.buffer);
    extable.forEach((e, i) => {
      const at = roBase + extOff + i * EXTABLE_ENTRY.SIZE;
      rv.setInt32(extOff + i * 8, core + e.insn - at, true);
      rv.setInt32(extOff + i * 8 + 4, core + e.fixup - (at + 4), true);
    });
    yield* m.writeBytes(roBase, roBytes);
    // ---- data: struct module, fops, parameters, variables
    yield* m.fill(dataBase, dataSize, 0);
    for (const [n, off] of varOff) {
      inst.varAddr.set(n, dataBase + off);
      if (!n.startsWith("__")) inst.syms.push({ name: n, addr: dataBase + off, type: "d" });
    }
    inst.varAddr.set("__fops", dataBase + fopsOff);
    if (def.chardev !== undefined) inst.varAddr.set("__chrdev_name", roBase + strOff.get(def.chardev.name)!);
    inst.syms.push({ name: "__this_module", addr: mod, type: "d" });
    yield* m.write32(mod + STRUCT_MODULE.state, MODULE_STATE.UNFORMED);
    const nameBytes = new Uint8Array(MODULE_NAME_LEN);
    nameBytes.set(bytesOf(name));
    yield* m.writeBytes(mod + STRUCT_MODULE.name, nameBytes);
    yield* m.writePtr(mod + STRUCT_MODULE.kp, params.length > 0 ? dataBase + kpOff : 0);
    yield* m.write32(mod + STRUCT_MODULE.num_kp, params.length);
    yield* m.write32(mod + STRUCT_MODULE.num_exentries, extable.length);
    yield* m.writePtr(mod + STRUCT_MODULE.extable, extable.length > 0 ? roBase + extOff : 0);
    yield* m.writePtr(mod + STRUCT_MODULE.init, inst.fnAddr.get("init_module") ?? 0);
    yield* m.writePtr(mod + STRUCT_MODULE.exit, inst.fnAddr.get("cleanup_module") ?? 0);
    yield* m.writePtr(mod + STRUCT_MODULE.module_core, core);
    yield* m.write32(mod + STRUCT_MODULE.core_size, coreSize);
    yield* m.write32(mod + STRUCT_MODULE.core_text_size, textSize);
    yield* m.write32(mod + STRUCT_MODULE.core_ro_size, textSize + roSize);
    for (const l of [STRUCT_MODULE.source_list, STRUCT_MODULE.target_list]) {
      yield* m.writePtr(mod + l + LIST_HEAD.next, mod + l);
      yield* m.writePtr(mod + l + LIST_HEAD.prev, mod + l);
    }
    if (def.chardev !== undefined) {
      const fops = dataBase + fopsOff;
      yield* m.writePtr(fops + FOPS.owner, mod);
      const op = (k: string, off: number) =>
        inst.fnAddr.has(k) ? m.writePtr(fops + off, inst.fnAddr.get(k)!) : none();
      yield* op(`${def.chardev.name}_open`, FOPS.open);
      yield* op(`${def.chardev.name}_release`, FOPS.release);
      yield* op(`${def.chardev.name}_read`, FOPS.read);
      yield* op(`${def.chardev.name}_write`, FOPS.write);
      yield* op(`${def.chardev.name}_ioctl`, FOPS.unlocked_ioctl);
    }
    params.forEach(([pn, type], i) => {
      inst.params.set(pn, { addr: dataBase + paramOff + i * 8, type });
    });
    for (let i = 0; i < params.length; i++) {
      const kp = dataBase + kpOff + i * KERNEL_PARAM.SIZE;
      yield* m.writePtr(kp + KERNEL_PARAM.name, roBase + strOff.get(params[i]![0])!);
      yield* m.writePtr(kp + KERNEL_PARAM.mod, mod);
      yield* m.write16(kp + KERNEL_PARAM.perm, 0o444);
      yield* m.writePtr(kp + KERNEL_PARAM.arg, dataBase + paramOff + i * 8);
    }
    // list_add_rcu(&mod->list, &modules)
    const head = this.k.sym("modules");
    const first = yield* m.readPtr(head + LIST_HEAD.next);
    yield* m.writePtr(mod + STRUCT_MODULE.list + LIST_HEAD.next, first);
    yield* m.writePtr(mod + STRUCT_MODULE.list + LIST_HEAD.prev, head);
    yield* m.writePtr(first + LIST_HEAD.prev, mod + STRUCT_MODULE.list);
    yield* m.writePtr(head + LIST_HEAD.next, mod + STRUCT_MODULE.list);
    this.loaded.push(inst);
    yield* this.unlockModules(c);
    // ---- parameters (parse_args)
    const pr = yield* this.applyParams(c, inst, args);
    if (pr < 0) {
      yield* this.unlink(c, inst);
      return pr;
    }
    // ---- taints
    if (!this.printedOot) {
      this.printedOot = true;
      yield* c.printk(`\x014${name}: loading out-of-tree module taints kernel.\n`);
    }
    this.k.traps.taints.add("O");
    let taint = "O";
    if (!GPL_COMPATIBLE.has(hdr.license)) {
      yield* c.printk(
        `\x014${name}: module license '${hdr.license === "" ? "unspecified" : hdr.license}' taints kernel.\n`,
      );
      if (!this.lockdepOff) {
        this.lockdepOff = true;
        yield* c.printk("\x014Disabling lock debugging due to kernel taint\n");
      }
      this.k.traps.taints.add("P");
      taint = "PO";
    }
    inst.taint = taint;
    // ---- RONX: text read-only + executable, rodata read-only, data no-execute
    for (let off = 0; off < coreSize; off += PAGE_SIZE) {
      const prot = off < textSize ? PGPROT.KERNEL_RX : off < textSize + roSize ? PGPROT.KERNEL_RO : PGPROT.KERNEL;
      yield* this.k.pageattr.setProt(c, core + off, prot);
    }
    yield* m.write32(mod + STRUCT_MODULE.state, MODULE_STATE.COMING);
    // ---- do_init_module
    const init = yield* m.readPtr(mod + STRUCT_MODULE.init);
    let ret = 0;
    if (init !== 0) ret = Number(BigInt.asIntN(32, yield* c.call(init)));
    if (ret < 0) {
      yield* m.write32(mod + STRUCT_MODULE.state, MODULE_STATE.GOING);
      yield* this.unlink(c, inst);
      return ret;
    }
    if (ret > 0)
      yield* c.printk(`\x014${name}: 'init'->init suspiciously returned ${ret}, it should follow 0/-E convention\n`);
    yield* m.write32(mod + STRUCT_MODULE.state, MODULE_STATE.LIVE);
    return 0;
  }

  /** The `vermagic` string modules must carry. */
  vermagic(): string {
    return `${this.k.cfg.release} SMP mod_unload modversions`;
  }

  private *applyParams(c: KCtx, inst: LoadedModule, args: string): Gen<number> {
    const m = c.m;
    for (const tok of args.split(/\s+/).filter((t) => t !== "")) {
      const eq = tok.indexOf("=");
      const key = (eq < 0 ? tok : tok.slice(0, eq)).replace(/-/g, "_");
      let val = eq < 0 ? null : tok.slice(eq + 1);
      if (val !== null && val.length >= 2 && val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1);
      const p = inst.params.get(key);
      if (p === undefined) {
        // Linux ≥ 4.x (unknown_module_param_cb): warn and load the module anyway.
        yield* c.printk(`\x014${inst.name}: unknown parameter '${key}' ignored\n`);
        continue;
      }
      if (p.type === "string") {
        if (val === null) return -ERRNO.EINVAL;
        const s = this.k.slab.kmalloc(val.length + 1);
        yield* m.writeBytes(s, bytesOf(val, true));
        yield* m.writePtr(p.addr, s);
      } else if (p.type === "int") {
        if (val === null || !/^-?(0x[0-9a-f]+|[0-9]+)$/i.test(val)) return -ERRNO.EINVAL;
        yield* m.write32(p.addr, Number(val) | 0);
      } else {
        const b = val === null || /^(1|y|Y|true)$/.test(val) ? 1 : /^(0|n|N|false)$/.test(val) ? 0 : -1;
        if (b < 0) return -ERRNO.EINVAL;
        yield* m.write32(p.addr, b);
      }
    }
    return 0;
  }

  /** Removes a module from the list and frees its memory. */
  private *unlink(c: KCtx, inst: LoadedModule): Gen<void> {
    yield* this.lockModules(c);
    const m = c.m;
    const node = inst.structModule + STRUCT_MODULE.list;
    const next = yield* m.readPtr(node + LIST_HEAD.next);
    const prev = yield* m.readPtr(node + LIST_HEAD.prev);
    yield* m.writePtr(prev + LIST_HEAD.next, next);
    yield* m.writePtr(next + LIST_HEAD.prev, prev);
    yield* this.unlockModules(c);
    for (const p of inst.params.values())
      if (p.type === "string") {
        const s = yield* m.readPtr(p.addr);
        if (s !== 0) this.k.slab.kfree(s);
      }
    this.loaded.splice(this.loaded.indexOf(inst), 1);
    yield* this.k.vfree(c, inst.core);
  }

  /** `delete_module(name, flags)` after the capability check and the name copy. */
  *unload(c: KCtx, name: string): Gen<number> {
    const r = yield* this.mutexLock(c, this.k.sym("module_mutex"), true);
    if (r !== 0) return r;
    const mod = yield* this.findModule(c, name);
    if (mod === 0) {
      yield* this.unlockModules(c);
      return -ERRNO.ENOENT;
    }
    const m = c.m;
    const state = yield* m.read32(mod + STRUCT_MODULE.state);
    const init = yield* m.readPtr(mod + STRUCT_MODULE.init);
    const exit = yield* m.readPtr(mod + STRUCT_MODULE.exit);
    const refs = yield* m.read32(mod + STRUCT_MODULE.refcnt);
    if (state !== MODULE_STATE.LIVE || (init !== 0 && exit === 0)) {
      yield* this.unlockModules(c);
      return -ERRNO.EBUSY;
    }
    if (refs !== 0) {
      yield* this.unlockModules(c);
      return -ERRNO.EAGAIN;
    }
    yield* m.write32(mod + STRUCT_MODULE.state, MODULE_STATE.GOING);
    yield* this.unlockModules(c);
    if (exit !== 0) yield* c.call(exit);
    const inst = this.loaded.find((x) => x.structModule === mod);
    if (inst !== undefined) yield* this.unlink(c, inst);
    return 0;
  }
}

function* none(): Gen<void> {}
