import { CR0, CR4, EFER, loadCr0, loadCr3, loadCr4, MSR, SEG, writeMsr } from "@visorlab/x86-core";
import { NR_SYSCALLS } from "./abi";
import { rootCred } from "./cred";
import { E820_TYPE } from "./e820";
import { assembleEntry, IDT_VECTORS } from "./entry-asm";
import { GuestLinuxError } from "./errors";
import { type Gen, runSync, u64 } from "./gen";
import { ASM_RESERVE } from "./image";
import { KCtx, type Kernel } from "./kernel";
import { HPAGE_SIZE, IMAGE, PAGE_SIZE } from "./layout";
import { bytesOf } from "./mem";
import { _PAGE, PGPROT, tableIndex } from "./pgtable";
import { KernelLog, LOG_BUF_LEN } from "./printk";
import { EXTABLE_ENTRY, LIST_HEAD, MUTEX, PERCPU, SEL, TASK, THREAD_SIZE, TSS64 } from "./structs";
import { APIC_PHYS, APIC_VIRT } from "./traps";

/** RFLAGS bits SYSCALL clears (Linux: TF DF IF IOPL AC NT). */
const SYSCALL_MASK = 0x47700;

/** GDT of x86-64 Linux (arch/x86/kernel/cpu/common.c `gdt_page`), as raw descriptors. */
const GDT_ENTRIES: readonly bigint[] = [
  0n,
  0x00cf9b000000ffffn, // KERNEL32_CS
  0x00af9b000000ffffn, // KERNEL_CS (L = 1)
  0x00cf93000000ffffn, // KERNEL_DS
  0x00cffb000000ffffn, // USER32_CS
  0x00cff3000000ffffn, // USER_DS
  0x00affb000000ffffn, // USER_CS (L = 1)
  0n,
];

/**
 * Lays out the kernel image (after every subsystem has registered its
 * functions and data): data objects, rodata, the entry code, the exception
 * table, kallsyms; then writes text, rodata and data into physical memory
 * and builds the kernel page tables. Returns the address of each CPU's idle stack top.
 */
export function bootImage(k: Kernel): void {
  const img = k.image;
  const L = k.layout;
  if (!k.pages.reserve(L.physBase / PAGE_SIZE, IMAGE.SIZE / PAGE_SIZE))
    throw new GuestLinuxError("STATE", "the kernel image overlaps reserved memory");
  // ---- rodata
  const sct = img.allocRodata("sys_call_table", 8 * NR_SYSCALLS, PAGE_SIZE);
  const banner = `Linux version ${k.cfg.release} (visorlab@build) (gcc version 5.4.0 20160609) #1 SMP\n`;
  img.allocRodata("linux_banner", banner.length + 1, 16);
  // ---- entry code, then the exception table
  const entry = assembleEntry(u64(img.textBase), {
    sysCallTable: u64(sct),
    nrSyscalls: NR_SYSCALLS,
    fn: (name) => u64(img.addr(name)),
  });
  if (entry.bytes.length > ASM_RESERVE) throw new GuestLinuxError("STATE", "entry code outgrew its text reserve");
  entry.functions.forEach((f, i) => {
    const next = entry.functions[i + 1]?.addr ?? u64(img.textBase + entry.bytes.length);
    img.define(f.name, Number(BigInt.asIntN(64, f.addr)), "T", Number(next - f.addr), true);
  });
  for (const [alias, target] of [
    ["read_cr0", "native_read_cr0"],
    ["write_cr0", "native_write_cr0"],
    ["__flush_tlb_one", "__native_flush_tlb_single"],
  ] as const)
    img.define(alias, img.addr(target), "T", 8, true);
  const ext = [...entry.extable].sort((a, b) => (a.insn < b.insn ? -1 : 1));
  const exStart = img.allocRodata("__start___ex_table", ext.length * EXTABLE_ENTRY.SIZE, 8);
  img.define("__stop___ex_table", exStart + ext.length * EXTABLE_ENTRY.SIZE, "R", 0);
  k.kstubs = {
    read8: lab(entry.labels, "__kmem_read8"),
    read16: lab(entry.labels, "__kmem_read16"),
    read32: lab(entry.labels, "__kmem_read32"),
    read64: lab(entry.labels, "__kmem_read64"),
    write8: lab(entry.labels, "__kmem_write8"),
    write16: lab(entry.labels, "__kmem_write16"),
    write32: lab(entry.labels, "__kmem_write32"),
    write64: lab(entry.labels, "__kmem_write64"),
  };
  k.kresume = img.addr("thunk_resume");
  img.define("_text", img.textBase, "T", 0);
  img.define("_etext", img.textEnd, "T", 0);
  img.define("__start_rodata", img.rodataBase, "R", 0);
  const kallsyms = k.kallsyms.build(img);
  img.define("__end_rodata", img.rodataEnd, "R", 0);
  img.define("_edata", img.dataEnd, "D", 0);
  // ---- write the image
  const mem = k.mem;
  const textPhys = img.phys(img.textBase);
  mem.writeBytes(textPhys, entry.bytes);
  for (const [addr, id] of img.thunkAt)
    mem.writeBytes(
      img.phys(addr),
      Uint8Array.of(0x0f, 0xff, 0x05, id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff, id >>> 24),
    );
  mem.writeBytes(img.phys(sct), k.syscalls.tableBytes());
  mem.writeBytes(img.phys(img.addr("linux_banner")), bytesOf(banner, true));
  const exBytes = new Uint8Array(ext.length * EXTABLE_ENTRY.SIZE);
  const ev = new DataView(exBytes.buffer);
  ext.forEach((e, i) => {
    const at = exStart + i * EXTABLE_ENTRY.SIZE;
    ev.setInt32(i * 8, Number(BigInt.asIntN(64, e.insn)) - at, true);
    ev.setInt32(i * 8 + 4, Number(BigInt.asIntN(64, e.fixup)) - (at + 4), true);
  });
  mem.writeBytes(img.phys(exStart), exBytes);
  for (const t of kallsyms) mem.writeBytes(img.phys(t.addr), t.bytes);
  // ---- data initialisation
  const c = new KCtx(k, null);
  runSync(initData(k, c));
  // ---- page tables
  runSync(buildPageTables(k, c, entry.vectorStubs.size));
  // IDT gates
  const idt = img.addr("idt_table");
  for (const [vec, stub] of entry.vectorStubs) {
    const v = IDT_VECTORS.find((x) => x.vector === vec);
    const ist = vec === 2 ? 1 : vec === 8 ? 2 : (v?.ist ?? 0);
    const dpl = v?.dpl ?? 0;
    writeGate(mem, img.phys(idt + vec * 16), stub, SEL.KERNEL_CS, ist, dpl);
  }
}

function lab(labels: Map<string, bigint>, name: string): number {
  return Number(BigInt.asIntN(64, labels.get(name)!));
}

/** Writes a 64-bit interrupt gate (SDM vol. 3A, 6.14.1). */
function writeGate(mem: Kernel["mem"], pa: number, target: bigint, sel: number, ist: number, dpl: number): void {
  const t = BigInt.asUintN(64, target);
  const lo = Number(t & 0xffffn) | (sel << 16);
  const mid = (ist & 7) | (0xe << 8) | (dpl << 13) | (1 << 15) | (Number((t >> 16n) & 0xffffn) << 16);
  mem.write(pa, 4, lo >>> 0);
  mem.write(pa + 4, 4, mid >>> 0);
  mem.write(pa + 8, 4, Number((t >> 32n) & 0xffffffffn));
  mem.write(pa + 12, 4, 0);
}

/** Allocates the kernel's static data (called before the entry code is assembled). */
export function allocData(k: Kernel): void {
  const img = k.image;
  img.allocData("init_task", TASK.SIZE, 64, true);
  img.allocData("init_cred", 0xa8, 64, true);
  img.allocData("modules", LIST_HEAD.SIZE, 16);
  img.allocData("module_mutex", MUTEX.SIZE, 16, true);
  img.allocData("jiffies", 8, 8, true);
  img.allocData("idt_table", 4096, 4096);
  for (const cpu of k.cpus) img.allocData(`per_cpu_area_${cpu.index}`, PERCPU.SIZE, 4096);
  img.allocData("log_first_idx", 4, 4);
  img.allocData("log_next_idx", 4, 4);
  img.allocData("log_first_seq", 8, 8);
  img.allocData("log_next_seq", 8, 8);
  img.allocData("__log_buf", LOG_BUF_LEN, 4096, false, "b");
  const sym = (n: string) => img.addr(n);
  k.log = new KernelLog({
    logBuf: sym("__log_buf"),
    firstIdx: sym("log_first_idx"),
    nextIdx: sym("log_next_idx"),
    firstSeq: sym("log_first_seq"),
    nextSeq: sym("log_next_seq"),
  });
}

function* initData(k: Kernel, c: KCtx): Gen<void> {
  const m = c.m;
  const mods = k.sym("modules");
  yield* m.writePtr(mods + LIST_HEAD.next, mods);
  yield* m.writePtr(mods + LIST_HEAD.prev, mods);
  const mx = k.sym("module_mutex");
  yield* m.write32(mx + MUTEX.count, 1);
  yield* m.writePtr(mx + MUTEX.wait_list + LIST_HEAD.next, mx + MUTEX.wait_list);
  yield* m.writePtr(mx + MUTEX.wait_list + LIST_HEAD.prev, mx + MUTEX.wait_list);
  yield* k.creds.writeCred(c, k.sym("init_cred"), rootCred());
  yield* m.write32(k.sym("init_cred"), 4);
}

function* buildPageTables(k: Kernel, c: KCtx, _n: number): Gen<void> {
  const L = k.layout;
  const pgd = yield* k.getZeroedPagePhys(c);
  k.swapperPgd = pgd;
  const pt = c.pageTables();
  // Pre-allocate the PUD pages of the kernel half in use, so every address space shares them.
  for (const lin of [L.pageOffset, L.vmallocStart, L.textVirt]) {
    const slot = k.physToVirt(pgd) + tableIndex(lin, 4) * 8;
    if (((yield* c.m.read64(slot)) & _PAGE.PRESENT) === 0n)
      yield* c.m.write64(slot, BigInt(yield* k.getZeroedPagePhys(c)) | PGPROT.KERNPG_TABLE);
  }
  // Direct map: usable RAM in 2 MiB pages (4 KiB at the edges of reserved memory). The kernel
  // image's text and rodata alias is read-only; nothing in the direct map is executable.
  const ram = k.mem.ramSize;
  const usable = (pa: number) =>
    k.e820.some(
      (e) => (e.type === E820_TYPE.RAM || pa < 0x100000) && pa >= e.start - (e.start % PAGE_SIZE) && pa < e.end,
    );
  const roLo = L.physBase;
  const roHi = L.physBase + IMAGE.DATA_OFFSET;
  for (let pa = 0; pa < ram; pa += HPAGE_SIZE) {
    const prot = pa >= roLo && pa < roHi ? PGPROT.KERNEL_RO : PGPROT.KERNEL;
    let all = true;
    let any = false;
    for (let p = pa; p < pa + HPAGE_SIZE && p < ram; p += PAGE_SIZE) {
      if (usable(p)) any = true;
      else all = false;
    }
    if (all && pa + HPAGE_SIZE <= ram) yield* pt.map2m(pgd, L.pageOffset + pa, pa, prot, PGPROT.KERNPG_TABLE);
    else if (any)
      for (let p = pa; p < pa + HPAGE_SIZE && p < ram; p += PAGE_SIZE)
        if (usable(p)) yield* pt.map4k(pgd, L.pageOffset + p, p, prot, PGPROT.KERNPG_TABLE);
  }
  // Kernel image: text as one 2 MiB page (read + execute), rodata read-only, data no-execute.
  const img = k.image;
  yield* pt.map2m(pgd, img.textBase, L.physBase, PGPROT.KERNEL_RX, PGPROT.KERNPG_TABLE);
  const pages = img.regionPages();
  for (let i = 0; i < pages.rodata; i++)
    yield* pt.map4k(
      pgd,
      img.rodataBase + i * PAGE_SIZE,
      img.phys(img.rodataBase) + i * PAGE_SIZE,
      PGPROT.KERNEL_RO,
      PGPROT.KERNPG_TABLE,
    );
  for (let i = 0; i < pages.data; i++)
    yield* pt.map4k(
      pgd,
      img.dataBase + i * PAGE_SIZE,
      img.phys(img.dataBase) + i * PAGE_SIZE,
      PGPROT.KERNEL,
      PGPROT.KERNPG_TABLE,
    );
  if (k.cfg.lapic) {
    const apic = Number(BigInt.asIntN(64, APIC_VIRT));
    yield* pt.map4k(pgd, apic, APIC_PHYS, PGPROT.KERNEL | _PAGE.PCD | _PAGE.PWT, PGPROT.KERNPG_TABLE);
  }
}

/**
 * Per-CPU setup and the hand-over to the processors (what the boot loader and
 * the early kernel leave behind): per-CPU area with GDT and TSS (RSP0 and IST
 * stacks for NMI and double fault), the IDT, paging on with the kernel page
 * tables, the SYSCALL MSRs, GS pointing at the per-CPU area, and RIP in the
 * idle loop on the CPU's idle task stack.
 */
export function* bootCpus(k: Kernel, c: KCtx): Gen<void> {
  const m = c.m;
  const img = k.image;
  for (const cpu of k.cpus) {
    const i = cpu.index;
    const pc = img.addr(`per_cpu_area_${i}`);
    const idle = k.sched.idle[i]!;
    const tss = pc + PERCPU.TSS_OFFSET;
    const gdt = pc + PERCPU.GDT_OFFSET;
    yield* m.writePtr(pc + PERCPU.this_cpu_off, pc);
    yield* m.writePtr(pc + PERCPU.current_task, idle.addr);
    yield* m.writePtr(pc + PERCPU.top_of_stack, idle.stack + THREAD_SIZE);
    yield* m.write32(pc + PERCPU.cpu_number, i);
    yield* m.writePtr(pc + PERCPU.tss, tss);
    yield* m.writePtr(pc + PERCPU.idle_task, idle.addr);
    // TSS: RSP0 = idle stack (updated on every switch), IST1 = NMI stack, IST2 = double-fault stack.
    yield* m.writePtr(tss + TSS64.rsp0, idle.stack + THREAD_SIZE);
    for (const ist of [1, 2]) {
      const pfn = k.pages.allocContig(1);
      yield* m.writePtr(tss + TSS64.ist1 + (ist - 1) * 8, k.physToVirt(pfn * PAGE_SIZE) + 2 * PAGE_SIZE);
    }
    yield* m.write16(tss + TSS64.iomap_base, TSS64.SIZE);
    GDT_ENTRIES.forEach((d, j) => {
      k.mem.write64(img.phys(gdt + j * 8), d);
    });
    // 64-bit TSS descriptor (busy, type 0xB) in entries 8–9.
    const tb = BigInt.asUintN(64, BigInt(tss));
    const lo = BigInt(TSS64.SIZE - 1) | ((tb & 0xffffffn) << 16n) | (0x8bn << 40n) | (((tb >> 24n) & 0xffn) << 56n);
    k.mem.write64(img.phys(gdt + 64), lo);
    k.mem.write64(img.phys(gdt + 72), tb >> 32n);
    // ---- processor state
    cpu.setCpl(0);
    cpu.efer = EFER.LME | EFER.LMA | EFER.SCE | EFER.NXE;
    loadCr4(cpu, CR4.PAE | CR4.PGE | CR4.OSFXSR | CR4.OSXMMEXCPT, 0);
    loadCr0(cpu, (CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.PG) >>> 0, 0);
    loadCr3(cpu, k.swapperPgd, 0);
    cpu.gdtrBase = gdt;
    cpu.gdtrLimit = 16 * 8 - 1;
    cpu.idtrBase = img.addr("idt_table");
    cpu.idtrLimit = 4095;
    cpu.trSel = SEL.TSS;
    cpu.trBase = tss;
    cpu.trLimit = TSS64.SIZE - 1;
    cpu.trAttr = 0x8b;
    for (let s = 0; s < 6; s++) {
      cpu.sel[s] = 0;
      cpu.segBase[s] = 0;
      cpu.segLimit[s] = 0xffffffff;
      cpu.segAttr[s] = 0xc093;
    }
    cpu.sel[SEG.CS] = SEL.KERNEL_CS;
    cpu.segAttr[SEG.CS] = 0xa09b;
    cpu.sel[SEG.SS] = SEL.KERNEL_DS;
    const wr = (msr: number, v: bigint) => {
      if (!writeMsr(cpu, msr, v)) throw new GuestLinuxError("STATE", `WRMSR 0x${msr.toString(16)} refused at boot`);
    };
    wr(MSR.IA32_EFER, BigInt(EFER.LME | EFER.SCE | EFER.NXE));
    wr(MSR.IA32_STAR, (BigInt(SEL.USER32_CS) << 48n) | (BigInt(SEL.KERNEL_CS) << 32n));
    wr(MSR.IA32_LSTAR, u64(img.addr("entry_SYSCALL_64")));
    wr(MSR.IA32_FMASK, BigInt(SYSCALL_MASK));
    wr(MSR.IA32_GS_BASE, u64(pc));
    wr(MSR.IA32_KERNEL_GS_BASE, 0n);
    wr(MSR.IA32_FS_BASE, 0n);
    cpu.setRflags(0x2);
    cpu.rip = img.addr("start_secondary");
    cpu.setRsp(idle.stack + THREAD_SIZE);
    cpu.halted = false;
    cpu.tlb.flushAll();
  }
}
