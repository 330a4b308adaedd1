import { PF_ERR } from "@visorlab/x86-core";
import { SIG, TASK_SIZE_MAX } from "./abi";
import { type Gen, hex16 } from "./gen";
import type { KCtx, Kernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { _PAGE, tableIndex } from "./pgtable";
import type { Task } from "./sched";
import { EXTABLE_ENTRY, PT_REGS, STRUCT_MODULE } from "./structs";

/** Fixmap address of the local APIC registers (`FIX_APIC_BASE`). */
export const APIC_VIRT = 0xffffffffff5fb000n;
/** Physical base of the xAPIC. */
export const APIC_PHYS = 0xfee00000;
/** xAPIC register offsets (SDM vol. 3A, table 10-1). */
export const APIC_REG = { EOI: 0xb0, SVR: 0xf0, LVT_TIMER: 0x320, TIMER_INITIAL: 0x380, TIMER_DIVIDE: 0x3e0 } as const;

/** Trap names as Linux's `do_error_trap` prints them, and the signal each sends to user mode. */
const TRAPS: Record<number, { name: string; str: string; sig: number }> = {
  0: { name: "do_divide_error", str: "divide error", sig: SIG.SIGFPE },
  1: { name: "do_debug", str: "debug", sig: SIG.SIGTRAP },
  3: { name: "do_int3", str: "int3", sig: SIG.SIGTRAP },
  4: { name: "do_overflow", str: "overflow", sig: SIG.SIGSEGV },
  5: { name: "do_bounds", str: "bounds", sig: SIG.SIGSEGV },
  6: { name: "do_invalid_op", str: "invalid opcode", sig: SIG.SIGILL },
  7: { name: "do_device_not_available", str: "device not available", sig: SIG.SIGSEGV },
  9: { name: "do_coprocessor_segment_overrun", str: "coprocessor segment overrun", sig: SIG.SIGFPE },
  10: { name: "do_invalid_TSS", str: "invalid TSS", sig: SIG.SIGSEGV },
  11: { name: "do_segment_not_present", str: "segment not present", sig: SIG.SIGBUS },
  12: { name: "do_stack_segment", str: "stack segment", sig: SIG.SIGBUS },
  13: { name: "do_general_protection", str: "general protection", sig: SIG.SIGSEGV },
  16: { name: "do_coprocessor_error", str: "coprocessor error", sig: SIG.SIGFPE },
  17: { name: "do_alignment_check", str: "alignment check", sig: SIG.SIGBUS },
  18: { name: "do_machine_check", str: "machine check", sig: SIG.SIGBUS },
  19: { name: "do_simd_coprocessor_error", str: "simd exception", sig: SIG.SIGFPE },
};

const s64 = (v: bigint) => Number(BigInt.asIntN(64, v));

/**
 * Exception and interrupt handlers (arch/x86/kernel/traps.c, arch/x86/mm/fault.c):
 * each gets `(regs, vector, cr2)` from its entry stub and returns 0 to go back
 * to the interrupted code or 1 when the current task is dead (the stub then
 * switches away for good).
 */
export class Traps {
  private oopsCount = 0;
  /** Taint letters accumulated (`P`, `O`, `E`, `D` …). */
  readonly taints = new Set<string>();

  constructor(private readonly k: Kernel) {
    k.fn("do_page_fault", (c, a) => this.doPageFault(c, s64(a[0]!), s64(a[2]!)));
    for (const [vec, t] of Object.entries(TRAPS))
      k.fn(t.name, (c, a) => this.doTrap(c, s64(a[0]!), Number(vec)), { local: Number(vec) !== 13 });
    k.fn("do_nmi", (c) => this.doNmi(c));
    k.fn("do_double_fault", (c, a) => this.doDoubleFault(c, s64(a[0]!)));
    k.fn("do_IRQ", (c, a) => this.doIrq(c, Number(a[1]!)));
    k.fn("smp_call_function_interrupt", (c) => this.callFunctionIrq(c));
    k.fn("smp_spurious_interrupt", () => 0);
    k.fn("setup_local_APIC", (c) => this.setupLocalApic(c));
    k.fn("search_exception_tables", (c, a) => this.searchExtables(c, s64(a[0]!)), { exported: true });
  }

  /** Acknowledges an interrupt at the local APIC (EOI) when the machine has one. */
  *ackIrq(c: KCtx): Gen<void> {
    if (this.k.cfg.lapic) yield* c.m.write32(s64(APIC_VIRT) + APIC_REG.EOI, 0);
  }

  /**
   * `setup_local_APIC`, run by each CPU on itself at start-up: software-enables
   * its xAPIC with spurious vector 0xff and, if configured, starts the
   * periodic timer on the local timer vector (divide by 1).
   */
  private *setupLocalApic(c: KCtx): Gen<void> {
    if (!this.k.cfg.lapic) return;
    const base = s64(APIC_VIRT);
    yield* c.m.write32(base + APIC_REG.SVR, 0x100 | 0xff);
    if (this.k.cfg.lapicTimerCount > 0) {
      yield* c.m.write32(base + APIC_REG.TIMER_DIVIDE, 0xb);
      yield* c.m.write32(base + APIC_REG.LVT_TIMER, (1 << 17) | 0xef);
      yield* c.m.write32(base + APIC_REG.TIMER_INITIAL, this.k.cfg.lapicTimerCount);
    }
  }

  /**
   * `search_exception_tables(ip)`: the fixup address for a faulting instruction,
   * from the kernel's `__ex_table` and every loaded module's `extable` (read
   * from guest memory, walking the `modules` list), or 0.
   */
  *searchExtables(c: KCtx, ip: number): Gen<number> {
    const m = c.m;
    const start = this.k.sym("__start___ex_table");
    const stop = this.k.sym("__stop___ex_table");
    const scan = function* (base: number, n: number): Gen<number> {
      for (let i = 0; i < n; i++) {
        const e = base + i * EXTABLE_ENTRY.SIZE;
        const insn = e + ((yield* m.read32(e + EXTABLE_ENTRY.insn)) | 0);
        if (insn === ip) return e + EXTABLE_ENTRY.fixup + ((yield* m.read32(e + EXTABLE_ENTRY.fixup)) | 0);
      }
      return 0;
    };
    const f = yield* scan(start, (stop - start) / EXTABLE_ENTRY.SIZE);
    if (f !== 0) return f;
    const head = this.k.sym("modules");
    let node = yield* m.readPtr(head);
    for (let guard = 0; node !== head && guard < 4096; guard++) {
      const mod = node - STRUCT_MODULE.list;
      const n = yield* m.read32(mod + STRUCT_MODULE.num_exentries);
      if (n > 0) {
        const r = yield* scan(yield* m.readPtr(mod + STRUCT_MODULE.extable), n);
        if (r !== 0) return r;
      }
      node = yield* m.readPtr(node);
    }
    return 0;
  }

  /** `fixup_exception`: moves regs->ip to the fixup when there is one. */
  private *fixup(c: KCtx, regs: number): Gen<boolean> {
    const ip = yield* c.m.readPtr(regs + PT_REGS.ip);
    const f = yield* this.searchExtables(c, ip);
    if (f === 0) return false;
    yield* c.m.writePtr(regs + PT_REGS.ip, f);
    return true;
  }

  private *doPageFault(c: KCtx, regs: number, address: number): Gen<number> {
    const m = c.m;
    const err = Number((yield* m.read64(regs + PT_REGS.orig_ax)) & 0xffffn);
    const t = yield* this.k.sched.cur(c);
    const fromUser = (err & PF_ERR.U) !== 0;
    if (address >= 0 && address < TASK_SIZE_MAX && t.mm !== null) {
      const sp = yield* m.readPtr(regs + PT_REGS.sp);
      const r = yield* this.k.mmsys.handleFault(c, t.mm, address, err, sp);
      if (r === "ok") return 0;
      if (r === "oom") {
        yield* c.printk(`Out of memory: Kill process ${t.pid} (${t.comm})`);
        yield* this.k.signals.exitTask(c, t, 0, SIG.SIGKILL);
        return 1;
      }
      if (fromUser) {
        // bad_area: SIGSEGV, logged when the task has no handler (show_unhandled_signals).
        const ip = yield* m.readPtr(regs + PT_REGS.ip);
        if (this.k.signals.unhandled(t, SIG.SIGSEGV))
          yield* c.printk(
            `\x016${t.comm}[${t.pid}]: segfault at ${hexn(address)} ip ${hex16(ip)} sp ${hex16(sp)} error ${err.toString(16)}${this.vmaSuffix(t, ip)}\n`,
          );
        this.k.signals.send(t, SIG.SIGSEGV, { code: 1, addr: address, trapno: 14, err });
        return 0;
      }
    } else if (fromUser) {
      const ip = yield* m.readPtr(regs + PT_REGS.ip);
      const sp = yield* m.readPtr(regs + PT_REGS.sp);
      if (this.k.signals.unhandled(t, SIG.SIGSEGV))
        yield* c.printk(
          `\x016${t.comm}[${t.pid}]: segfault at ${hexn(address)} ip ${hex16(ip)} sp ${hex16(sp)} error ${err.toString(16)}${this.vmaSuffix(t, ip)}\n`,
        );
      this.k.signals.send(t, SIG.SIGSEGV, { code: 1, addr: address, trapno: 14, err });
      return 0;
    }
    // no_context: a kernel-mode fault. An exception-table fixup makes it an error return.
    if (yield* this.fixup(c, regs)) return 0;
    const what = address >= 0 && address < PAGE_SIZE ? "kernel NULL pointer dereference" : "kernel paging request";
    yield* c.printk(`\x011BUG: unable to handle ${what} at ${hex16(address)}\n`);
    const ip = yield* m.readPtr(regs + PT_REGS.ip);
    yield* c.printk(`\x011IP: [<${hex16(ip)}>] ${this.k.symbolize(ip)}\n`);
    yield* this.dumpPagetable(c, address);
    return yield* this.oopsEnd(c, regs, t, `Oops: ${err.toString(16).padStart(4, "0")}`);
  }

  private *dumpPagetable(c: KCtx, address: number): Gen<void> {
    const cr3 = c.cpu.cr3;
    let table = Math.floor(cr3 / PAGE_SIZE) * PAGE_SIZE;
    const names = ["PGD", "PUD", "PMD", "PTE"];
    let line = "";
    for (let level = 4; level >= 1; level--) {
      const e = yield* c.m.read64(this.k.physToVirt(table) + tableIndex(address, level) * 8);
      line += `${line === "" ? "" : " "}${names[4 - level]} ${e.toString(16)}`;
      if (!(e & _PAGE.PRESENT) || (level > 1 && e & _PAGE.PSE)) break;
      table = Number(e & 0x000ffffffffff000n);
    }
    yield* c.printk(`\x011${line} \n`);
  }

  /** Prints the rest of an oops, taints the kernel and kills the current task. Returns 1. */
  private *oopsEnd(c: KCtx, regs: number, t: Task, head: string): Gen<number> {
    const m = c.m;
    this.oopsCount++;
    yield* c.printk(`\x014${head} [#${this.oopsCount}] SMP \n`);
    yield* c.printk(`\x014Modules linked in: ${this.k.modules.linkedIn()}\n`);
    const taint = this.taintString();
    yield* c.printk(
      `\x014CPU: ${c.cpu.index} PID: ${t.pid} Comm: ${t.comm} ${taint === "" ? "Not tainted" : `Tainted: ${taint}`} ${this.k.cfg.release} #1\n`,
    );
    const g = function* (off: number): Gen<string> {
      return hex16(yield* m.read64(regs + off));
    };
    const ip = yield* m.readPtr(regs + PT_REGS.ip);
    const cs = yield* m.read64(regs + PT_REGS.cs);
    yield* c.printk(
      `\x014RIP: ${cs.toString(16).padStart(4, "0")}:[<${hex16(ip)}>]  [<${hex16(ip)}>] ${this.k.symbolize(ip)}\n`,
    );
    const ss = yield* m.read64(regs + PT_REGS.ss);
    const flags = yield* m.read64(regs + PT_REGS.flags);
    yield* c.printk(
      `\x014RSP: ${ss.toString(16).padStart(4, "0")}:${yield* g(PT_REGS.sp)}  EFLAGS: ${flags.toString(16).padStart(8, "0")}\n`,
    );
    yield* c.printk(`\x014RAX: ${yield* g(PT_REGS.ax)} RBX: ${yield* g(PT_REGS.bx)} RCX: ${yield* g(PT_REGS.cx)}\n`);
    yield* c.printk(`\x014RDX: ${yield* g(PT_REGS.dx)} RSI: ${yield* g(PT_REGS.si)} RDI: ${yield* g(PT_REGS.di)}\n`);
    yield* c.printk(`\x014---[ end trace ${hex16(BigInt(this.oopsCount) * 0x9e3779b97f4a7c15n)} ]---\n`);
    this.taints.add("D");
    yield* this.k.signals.exitTask(c, t, 0, SIG.SIGKILL);
    return 1;
  }

  /** The taint string (`P`/`G`, `O`, `E`, `D` …) as Linux prints it after "Tainted: ". */
  taintString(): string {
    if (this.taints.size === 0) return "";
    const order = ["P", "F", "S", "R", "M", "B", "U", "D", "A", "W", "C", "I", "O", "E", "L", "K"];
    let s = this.taints.has("P") ? "P" : "G";
    for (const l of order.slice(1)) s += this.taints.has(l) ? l : " ";
    return s.trimEnd();
  }

  private vmaSuffix(t: Task, ip: number): string {
    const v = t.mm?.find(ip);
    if (v === undefined || !v.file) return "";
    // print_vma_addr prints the basename of the mapped file.
    return ` in ${v.name.slice(v.name.lastIndexOf("/") + 1)}[${v.start.toString(16)}+${(v.end - v.start).toString(16)}]`;
  }

  private *doTrap(c: KCtx, regs: number, vector: number): Gen<number> {
    const m = c.m;
    const info = TRAPS[vector]!;
    const t = yield* this.k.sched.cur(c);
    const cs = Number((yield* m.read64(regs + PT_REGS.cs)) & 3n);
    const err = Number((yield* m.read64(regs + PT_REGS.orig_ax)) & 0xffffffffn) | 0;
    const ip = yield* m.readPtr(regs + PT_REGS.ip);
    if (cs === 3) {
      if (this.k.signals.unhandled(t, info.sig)) {
        const sp = yield* m.readPtr(regs + PT_REGS.sp);
        const e = Math.max(err, 0);
        const line =
          vector === 13
            ? `${t.comm}[${t.pid}] general protection ip:${ip.toString(16)} sp:${sp.toString(16)} error:${e.toString(16)}`
            : `${t.comm}[${t.pid}] trap ${info.str} ip:${ip.toString(16)} sp:${sp.toString(16)} error:${e.toString(16)}`;
        yield* c.printk(`\x016traps: ${line}${this.vmaSuffix(t, ip)}\n`);
      }
      this.k.signals.send(t, info.sig, { code: vector === 6 ? 2 : 0, addr: ip, trapno: vector, err: Math.max(err, 0) });
      return 0;
    }
    if (vector === 3 || vector === 1) return 0;
    if (yield* this.fixup(c, regs)) return 0;
    const e = Math.max(err, 0);
    return yield* this.oopsEnd(c, regs, t, `${info.str}: ${e.toString(16).padStart(4, "0")}`);
  }

  private *doNmi(c: KCtx): Gen<number> {
    yield* c.printk(`\x013Uhhuh. NMI received for unknown reason 00 on CPU ${c.cpu.index}.\n`);
    yield* c.printk("\x013Do you have a strange power saving mode enabled?\n");
    yield* c.printk("\x013Dazed and confused, but trying to continue\n");
    return 0;
  }

  private *doDoubleFault(c: KCtx, regs: number): Gen<number> {
    const err = yield* c.m.read64(regs + PT_REGS.orig_ax);
    yield* c.printk(`\x010PANIC: double fault, error_code: 0x${err.toString(16)}\n`);
    yield* c.printk("\x010Kernel panic - not syncing: Machine halted.\n");
    return 0;
  }

  private *doIrq(c: KCtx, vector: number): Gen<number> {
    yield* this.ackIrq(c);
    yield* c.printk(`\x012do_IRQ: ${c.cpu.index}.${vector} No irq handler for vector\n`);
    return 0;
  }

  private *callFunctionIrq(c: KCtx): Gen<number> {
    yield* this.ackIrq(c);
    return 0;
  }
}

function hexn(v: number): string {
  return BigInt.asUintN(64, BigInt(v)).toString(16);
}
