import type { Machine } from "@visorlab/smp";
import { type Cpu, CR0, SEG } from "@visorlab/x86-core";
import { PageTables, SELECTORS, TSS_SIZE, writeGdt, writeIdtGate, writeTss } from "@visorlab/x86-core/testing";

/** Where {@link longModeGuest} puts processor i's code: `GUEST_CODE + i · 4 KiB`. */
export const GUEST_CODE = 0x100000;

/**
 * Test support (not exported from the package): puts every processor of
 * `machine` in 64-bit mode at CPL 0 over identity-mapped 2 MiB pages of the
 * first `mappedBytes` of RAM, with a GDT, a TSS, HLT stubs for the first 32
 * vectors, RIP at GUEST_CODE + i·4 KiB and its own stack.
 */
export function longModeGuest(machine: Machine, mappedBytes: number): void {
  const mem = machine.mem;
  const gdtLimit = writeGdt(mem, 0x1000, { base: 0x3000 });
  writeTss(mem, 0x3000, { rsp: [0x90000], ist: [0xa0000] });
  for (let v = 0; v < 32; v++) {
    mem.write(0x4000 + 16 * v, 1, 0xf4);
    writeIdtGate(mem, 0x2000, v, { target: 0x4000 + 16 * v });
  }
  mem.write(0x1000 + SELECTORS.TSS + 5, 1, 0x8b); // busy TSS, as after LTR
  const pt = new PageTables(mem, { base: 0x10000, limit: 0x40000 });
  pt.mapRange(0, 0, mappedBytes, { size: 0x200000 });
  for (const cpu of machine.cpus) setup(cpu, pt.cr3, gdtLimit);
}

function setup(cpu: Cpu, cr3: number, gdtLimit: number): void {
  cpu.gdtrBase = 0x1000;
  cpu.gdtrLimit = gdtLimit;
  cpu.idtrBase = 0x2000;
  cpu.idtrLimit = 32 * 16 - 1;
  cpu.trSel = SELECTORS.TSS;
  cpu.trBase = 0x3000;
  cpu.trLimit = TSS_SIZE - 1;
  cpu.trAttr = 0x8b;
  cpu.sel[SEG.CS] = SELECTORS.KERNEL_CS;
  cpu.sel[SEG.SS] = SELECTORS.KERNEL_DS;
  for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS]) cpu.sel[s] = SELECTORS.KERNEL_DS;
  cpu.cr3 = cr3;
  cpu.cr0 = (cpu.cr0 | CR0.PG | CR0.WP) >>> 0;
  cpu.tlb.flushAll();
  cpu.rip = GUEST_CODE + cpu.index * 0x1000;
  cpu.setRsp(0x80000 - cpu.index * 0x8000);
}
