import { Cpu, type CpuOptions, CR0, SEG } from "../cpu";
import { X86CoreError } from "../errors";
import { PhysicalMemory } from "../phys-memory";
import { PageTables } from "./page-tables";

/**
 * A ready-to-run 64-bit machine for tests: GDT, IDT, TSS and identity-mapped
 * page tables in simulated memory, loaded into one processor the way a boot
 * loader leaves it (SDM vol. 3A, 10.8.5). Also the descriptor writers it is
 * built from, for tests that want their own layout.
 */

/** The memory the writers use (a `PhysicalMemory` is one). */
export interface TableMemory {
  write(addr: number, size: 1 | 2 | 4, value: number): void;
}

/**
 * Selectors of the GDT that {@link writeGdt} builds (a Linux-like order, so
 * one STAR value serves SYSCALL and SYSRET, see {@link STAR_FOR_GDT}).
 */
export const SELECTORS = {
  KERNEL_CS: 0x08,
  KERNEL_DS: 0x10,
  /** Index 3, RPL 3. */
  USER_DS: 0x1b,
  /** Index 4, RPL 3. */
  USER_CS: 0x23,
  /** Index 5–6 (a 16-byte descriptor). */
  TSS: 0x28,
} as const;

/** IA32_STAR for {@link SELECTORS}: SYSCALL loads CS 0x08 / SS 0x10; SYSRET loads CS 0x23 / SS 0x1B. */
export const STAR_FOR_GDT = (0x10n << 48n) | (0x08n << 32n);

/** Bytes of the GDT {@link writeGdt} writes (its limit is one less). */
export const GDT_SIZE = 7 * 8;
/** Bytes of a 64-bit TSS (its limit is one less). */
export const TSS_SIZE = 0x68;

/**
 * A code or data segment descriptor (SDM vol. 3A, 3.4.5) as two dwords:
 * base 0, limit 0xFFFFF with G = 1; code is 64-bit (L = 1), data has D/B = 1.
 */
export function segmentDescriptor(opts: {
  code: boolean;
  dpl: number;
  present?: boolean;
  conforming?: boolean;
}): [number, number] {
  const type = opts.code ? 0xb | (opts.conforming ? 4 : 0) : 0x3; // accessed execute/read; accessed read/write
  const access = type | 0x10 | ((opts.dpl & 3) << 5) | ((opts.present ?? true) ? 0x80 : 0);
  const flags = opts.code ? 0xa : 0xc; // G + L, or G + D/B
  return [0x0000ffff, (access << 8) | (0xf << 16) | (flags << 20)];
}

/**
 * A 16-byte system descriptor (LDT type 2, available TSS type 9, busy TSS type B)
 * with a byte-granular limit, as four dwords (SDM vol. 3A, 7.2.3).
 */
export function systemDescriptor(type: number, base: number, limit: number, dpl = 0): [number, number, number, number] {
  const lo = base >>> 0;
  const hi = Math.floor(base / 2 ** 32) >>> 0;
  const w0 = ((limit & 0xffff) | ((lo & 0xffff) << 16)) >>> 0;
  const w1 =
    (((lo >>> 16) & 0xff) |
      ((type & 0xf) << 8) |
      ((dpl & 3) << 13) |
      0x8000 |
      (limit & 0xf0000) |
      (lo & 0xff000000)) >>>
    0;
  return [w0, w1, hi, 0];
}

function writeDwords(mem: TableMemory, addr: number, dwords: readonly number[]): void {
  dwords.forEach((d, k) => {
    mem.write(addr + 4 * k, 4, d >>> 0);
  });
}

/**
 * Writes the GDT of {@link SELECTORS} at `base`: null, kernel code and data
 * (DPL 0), user data and code (DPL 3), and an available 64-bit TSS
 * descriptor for `tss`. Returns the GDTR limit.
 */
export function writeGdt(mem: TableMemory, base: number, tss: { base: number; limit?: number }): number {
  writeDwords(mem, base, [0, 0]);
  writeDwords(mem, base + 0x08, segmentDescriptor({ code: true, dpl: 0 }));
  writeDwords(mem, base + 0x10, segmentDescriptor({ code: false, dpl: 0 }));
  writeDwords(mem, base + 0x18, segmentDescriptor({ code: false, dpl: 3 }));
  writeDwords(mem, base + 0x20, segmentDescriptor({ code: true, dpl: 3 }));
  writeDwords(mem, base + 0x28, systemDescriptor(0x9, tss.base, tss.limit ?? TSS_SIZE - 1));
  return GDT_SIZE - 1;
}

/** An IDT gate (SDM vol. 3A, 6.14.1). */
export interface GateOptions {
  /** Handler address (a signed canonical number). */
  target: number;
  /** Code-segment selector; default {@link SELECTORS.KERNEL_CS}. */
  selector?: number;
  /** Interrupt gate (clears IF, the default) or trap gate; or a raw 4-bit type to make a bad gate. */
  type?: "interrupt" | "trap" | number;
  /** Gate DPL (who may use INT n); default 0. */
  dpl?: number;
  /** IST index 1–7, or 0 (default) for the TSS RSP of the new CPL. */
  ist?: number;
  /** P; default true. */
  present?: boolean;
}

/** Writes the 16-byte gate of `vector` in the IDT at `idtBase`. */
export function writeIdtGate(mem: TableMemory, idtBase: number, vector: number, g: GateOptions): void {
  const t = g.target;
  const lo = t >>> 0;
  const hi = Math.floor(t / 2 ** 32) >>> 0;
  const type = g.type === undefined || g.type === "interrupt" ? 0xe : g.type === "trap" ? 0xf : g.type & 0xf;
  const w0 = ((lo & 0xffff) | ((g.selector ?? SELECTORS.KERNEL_CS) << 16)) >>> 0;
  const w1 =
    ((lo & 0xffff0000) |
      ((g.present ?? true) ? 0x8000 : 0) |
      ((g.dpl ?? 0) << 13) |
      (type << 8) |
      ((g.ist ?? 0) & 7)) >>>
    0;
  writeDwords(mem, idtBase + vector * 16, [w0, w1, hi, 0]);
}

/** Writes a 64-bit TSS (SDM vol. 3A, 8.7): RSP0–RSP2 at +4, IST1–IST7 at +0x24, I/O map base at +0x66. */
export function writeTss(
  mem: TableMemory,
  base: number,
  stacks: { rsp?: readonly number[]; ist?: readonly number[] },
): void {
  for (let k = 0; k < TSS_SIZE; k += 4) mem.write(base + k, 4, 0);
  const put = (off: number, v: number) => writeDwords(mem, base + off, [v >>> 0, Math.floor(v / 2 ** 32) >>> 0]);
  (stacks.rsp ?? []).forEach((v, k) => {
    put(4 + 8 * k, v);
  });
  (stacks.ist ?? []).forEach((v, k) => {
    put(0x24 + 8 * k, v);
  });
  mem.write(base + 0x66, 2, TSS_SIZE); // no I/O permission bitmap
}

/**
 * Physical layout of {@link longModeMachine}. Everything below
 * `IDENTITY_END` is identity-mapped for the supervisor; the user region is
 * identity-mapped with U/S = 1.
 */
export const LONG_MODE_LAYOUT = {
  GDT: 0x1000,
  IDT: 0x2000,
  TSS: 0x3000,
  /** 256 handler stubs of 16 bytes: vector v's handler is `HLT` at `HANDLERS + 16·v`. */
  HANDLERS: 0x4000,
  PAGE_TABLES: 0x10000,
  PAGE_TABLES_END: 0x40000,
  KERNEL_CODE: 0x40000,
  /** TSS.RSP0. */
  KERNEL_STACK_TOP: 0x60000,
  /** TSS.IST1. */
  IST1_TOP: 0x70000,
  KERNEL_DATA: 0x80000,
  IDENTITY_END: 0x100000,
  USER_CODE: 0x400000,
  USER_DATA: 0x420000,
  USER_STACK_TOP: 0x440000,
  USER_END: 0x440000,
} as const;

/** What {@link longModeMachine} returns. */
export interface LongModeMachine {
  /** The machine's physical memory (tables, stubs and code live here, identity-mapped). */
  mem: PhysicalMemory;
  /** The processor, at CPL 0 with paging on. */
  cpu: Cpu;
  /** The page tables (CR3 = `pt.cr3`); tests may edit and extend them. */
  pt: PageTables;
}

/**
 * Builds a processor in 64-bit mode at CPL 0 with paging on (CR0.PG, CR0.WP,
 * 4-level tables), GDTR/IDTR/TR loaded from the tables of
 * {@link LONG_MODE_LAYOUT}, every IDT vector an interrupt gate (DPL 0) to its
 * HLT stub, RSP at KERNEL_STACK_TOP and RIP at KERNEL_CODE.
 */
export function longModeMachine(opts: { ramSize?: number; cpu?: CpuOptions } = {}): LongModeMachine {
  const L = LONG_MODE_LAYOUT;
  const ramSize = opts.ramSize ?? 16 * 1024 * 1024;
  if (ramSize < L.USER_END)
    throw new X86CoreError("INVALID_ARGUMENT", "longModeMachine needs at least 4.25 MiB of RAM", { ramSize });
  const mem = new PhysicalMemory({ ramSize });
  const gdtLimit = writeGdt(mem, L.GDT, { base: L.TSS });
  writeTss(mem, L.TSS, { rsp: [L.KERNEL_STACK_TOP], ist: [L.IST1_TOP] });
  for (let v = 0; v < 256; v++) {
    mem.write(L.HANDLERS + 16 * v, 1, 0xf4);
    writeIdtGate(mem, L.IDT, v, { target: L.HANDLERS + 16 * v });
  }
  const pt = new PageTables(mem, { base: L.PAGE_TABLES, limit: L.PAGE_TABLES_END });
  pt.mapRange(0x1000, 0x1000, L.IDENTITY_END - 0x1000);
  pt.mapRange(L.USER_CODE, L.USER_CODE, L.USER_END - L.USER_CODE, { user: true });

  const cpu = new Cpu(mem, opts.cpu);
  cpu.gdtrBase = L.GDT;
  cpu.gdtrLimit = gdtLimit;
  cpu.idtrBase = L.IDT;
  cpu.idtrLimit = 256 * 16 - 1;
  // TR as LTR leaves it: busy TSS (the GDT descriptor marked busy too).
  mem.write(L.GDT + SELECTORS.TSS + 5, 1, 0x8b);
  cpu.trSel = SELECTORS.TSS;
  cpu.trBase = L.TSS;
  cpu.trLimit = TSS_SIZE - 1;
  cpu.trAttr = 0x8b;
  cpu.sel[SEG.CS] = SELECTORS.KERNEL_CS;
  cpu.sel[SEG.SS] = SELECTORS.KERNEL_DS;
  cpu.cr3 = pt.cr3;
  cpu.cr0 = (cpu.cr0 | CR0.PG | CR0.WP) >>> 0;
  cpu.tlb.flushAll();
  cpu.rip = L.KERNEL_CODE;
  cpu.setRsp(L.KERNEL_STACK_TOP);
  return { mem, cpu, pt };
}

/**
 * Puts the processor at CPL 3 in the user segments of {@link SELECTORS}
 * (as if after SYSRET or IRETQ), with RIP and RSP given and not halted;
 * RFLAGS.IF is set unless `interrupts` is false.
 */
export function enterUserMode(cpu: Cpu, rip: number, rsp: number, interrupts = true): void {
  cpu.sel[SEG.CS] = SELECTORS.USER_CS;
  cpu.segAttr[SEG.CS] = 0xa0fb;
  cpu.sel[SEG.SS] = SELECTORS.USER_DS;
  cpu.segAttr[SEG.SS] = 0xc0f3;
  cpu.setCpl(3);
  cpu.halted = false;
  cpu.rip = rip;
  cpu.setRsp(rsp);
  const f = cpu.getRflags();
  cpu.setRflags(interrupts ? f | 0x200 : f & ~0x200);
}

/** Address of the HLT stub that handles `vector` in {@link longModeMachine}; after it halts, RIP is this + 1. */
export function handlerStub(vector: number): number {
  return LONG_MODE_LAYOUT.HANDLERS + 16 * vector;
}

/** Reads `count` qwords at physical address `addr` (identity-mapped in {@link longModeMachine}). */
export function readQwords(mem: PhysicalMemory, addr: number, count: number): bigint[] {
  return Array.from({ length: count }, (_, k) => mem.read64(addr + 8 * k));
}
