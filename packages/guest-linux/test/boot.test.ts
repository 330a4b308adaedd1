import { Cpu, PhysicalMemory, ThunkTable } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defineProgram, GuestLinux } from "../src/index";

function machine(ncpu = 1, ram = 256 * 1024 * 1024) {
  const mem = new PhysicalMemory({ ramSize: ram });
  const thunks = new ThunkTable();
  const cpus = Array.from({ length: ncpu }, (_, i) => new Cpu(mem, { index: i, thunks }));
  return { mem, thunks, cpus };
}

describe("boot", () => {
  it("boots and idles", () => {
    const m = machine();
    const g = new GuestLinux({ ...m }).boot();
    const r = g.runUntilIdle({ maxInstructions: 100000 });
    expect(r.idle).toBe(true);
    expect(r.stop).toBeNull();
    const d = g.dmesg();
    expect(d.split("\n")[0]).toBe(
      "[    0.000000] Linux version 4.4.0-visorlab (visorlab@build) (gcc version 5.4.0 20160609) #1 SMP",
    );
    expect(d).toContain("BIOS-e820: [mem 0x000000000c000000-0x000000000fffffff] reserved");
    // Every CPU idles in the idle loop, halted, at CPL 0 on the kernel page tables.
    const cpu = m.cpus[0]!;
    expect(cpu.halted).toBe(true);
    expect(cpu.cpl).toBe(0);
    expect(cpu.cr3).toBe(g.layout.swapperPgd);
  });
  it("runs hello", () => {
    const m = machine();
    const g = new GuestLinux({ ...m });
    g.installProgram(
      defineProgram({
        name: "hello",
        *main(u) {
          yield* u.printf("hello from pid %d\n", yield* u.getpid());
          return 3;
        },
      }),
    );
    g.boot();
    const entry = Number(BigInt.asIntN(64, g.symbol("entry_SYSCALL_64")));
    const sysret: number[] = [];
    let syscalls = 0;
    m.cpus[0]!.hookCode(entry, entry + 1, (cpu) => {
      syscalls++;
      sysret.push(Number(cpu.getReg64(0)));
    });
    const p = g.run("/bin/hello");
    expect(p.output).toBe("hello from pid 100\n");
    expect(p.exit).toEqual({ code: 3, signal: 0 });
    // getpid, brk (printf's buffer), write, exit_group: each entered the kernel through SYSCALL.
    expect(sysret).toEqual([39, 12, 1, 231]);
    expect(syscalls).toBe(4);
    // Only the kernel worker's coroutine still waits (in schedule); the dead process left none behind.
    expect(m.thunks.pending).toBe(1);
  });
});
