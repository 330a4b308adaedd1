import { expect, it } from "vitest";

// The example of README.md, kept runnable (the code between the markers is the README's).
it("README example: a hypercall handler answering a raw 64-bit guest", async () => {
  const lines: string[] = [];
  const console = { log: (s: string) => lines.push(s) };
  // --- README ---
  const { BitVisor, GENERAL_REG } = await import("./index");
  const { Machine } = await import("@visorlab/smp");
  const { CR0 } = await import("@visorlab/x86-core");
  const { Assembler, rax, rbx } = await import("@visorlab/x86-core/asm");
  const { PageTables, SELECTORS, TSS_SIZE, writeGdt, writeTss } = await import("@visorlab/x86-core/testing");

  const MiB = 1024 * 1024;
  const machine = new Machine({ cpus: 1, ramSize: 64 * MiB });
  const { mem } = machine;
  // A minimal 64-bit guest: GDT, TSS, identity-mapped 2 MiB pages, and code at 1 MiB.
  const gdtLimit = writeGdt(mem, 0x1000, { base: 0x3000 });
  writeTss(mem, 0x3000, { rsp: [0x90000] });
  mem.write(0x1000 + SELECTORS.TSS + 5, 1, 0x8b); // busy TSS, as after LTR
  const pt = new PageTables(mem, { base: 0x10000, limit: 0x20000 });
  pt.mapRange(0, 0, 48 * MiB, { size: 0x200000 });
  const name = 0x180000;
  mem.writeBytes(name, new TextEncoder().encode("hello\0"));
  const code = new Assembler()
    .mov(rax, 0) // call number 0: look "hello" up by name
    .mov(rbx, name)
    .vmcall()
    .mov(rbx, 41) // call it with RBX = 41
    .vmcall()
    .hlt()
    .assemble(0x100000n).bytes;
  mem.writeBytes(0x100000, code);
  const cpu = machine.cpus[0]!;
  Object.assign(cpu, { gdtrBase: 0x1000, gdtrLimit: gdtLimit, trSel: SELECTORS.TSS, trBase: 0x3000 });
  cpu.trLimit = TSS_SIZE - 1;
  cpu.sel[1] = SELECTORS.KERNEL_CS;
  cpu.sel[2] = SELECTORS.KERNEL_DS;
  cpu.cr3 = pt.cr3;
  cpu.cr0 = (cpu.cr0 | CR0.PG | CR0.WP) >>> 0;
  cpu.rip = 0x100000;
  cpu.setRsp(0x80000);

  const hv = new BitVisor({ machine, vmmBase: 48 * MiB, vmmSize: 16 * MiB });
  hv.vmmcalls.register("hello", ({ current, log }) => {
    // INPUT: RBX = a number. OUTPUT: RAX = RBX + 1.
    const n = current.readGeneralReg(GENERAL_REG.RBX);
    log.log(`hello ${n}`, current.stamp(), current.cpuIndex);
    current.writeGeneralReg(GENERAL_REG.RAX, n + 1n);
  });
  hv.launch();
  machine.run({ maxInstructions: 1_000_000 });
  console.log(hv.log.text().trim()); // bitvisor: 1 processor(s) in VMX non-root operation / hello 41
  console.log(`RAX = ${cpu.getReg64(GENERAL_REG.RAX)}`); // RAX = 42
  // --- end ---
  expect(lines).toEqual(["bitvisor: 1 processor(s) in VMX non-root operation\nhello 41", "RAX = 42"]);
});
