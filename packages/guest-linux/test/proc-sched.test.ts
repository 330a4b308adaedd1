import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, MADV, MAP, NR, PROT, SIG } from "../src/index";
import { done, makeGuest } from "./helpers";

describe("/proc views", () => {
  it("/proc/modules and /proc/kallsyms show addresses to root and zeros to users", () => {
    const { guest } = makeGuest();
    guest.installModule(
      defineModule({
        name: "testmod",
        init: () => done(0),
      }),
    );
    const outs: Record<number, string[]> = {};
    guest.installProgram(
      defineProgram({
        name: "look",
        *main(u) {
          const me = yield* u.getuid();
          const mods = yield* u.readText("/proc/modules");
          const syms = yield* u.readText("/proc/kallsyms");
          outs[me] = [mods as string, syms as string];
          return 0;
        },
      }),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/testmod.ko"] });
    guest.run("/bin/look", { uid: 0 });
    guest.run("/bin/look", { uid: 1000 });
    const tm = guest.modules()[0]!;
    const core = tm.core.toString(16);
    expect(outs[0]![0]).toBe(`testmod ${tm.coreSize} 0 - Live 0x${core} (PO)\n`);
    expect(outs[1000]![0]).toBe(`testmod ${tm.coreSize} 0 - Live 0x0000000000000000 (PO)\n`);
    const cc = guest.symbol("commit_creds").toString(16);
    expect(outs[0]![1]).toContain(`${cc} T commit_creds\n`);
    expect(outs[0]![1]).toContain(`${guest.symbol("sys_call_table").toString(16)} R sys_call_table\n`);
    expect(outs[0]![1]).toContain(`${core} t init_module\t[testmod]\n`);
    expect(outs[1000]![1]).toContain("0000000000000000 T commit_creds\n");
    expect(outs[1000]![1]).not.toContain(cc);
  });
});

describe("syslog(2)", () => {
  it("SYSLOG_ACTION_READ_ALL returns the log buffer the kernel reads through its own mappings", () => {
    const { guest } = makeGuest();
    let text = "";
    guest.installProgram(
      defineProgram({
        name: "dmesg",
        *main(u) {
          const size = yield* u.sys(NR.syslog, 10, 0, 0);
          const buf = yield* u.malloc(size);
          const n = yield* u.sys(NR.syslog, 3, buf, size);
          text = new TextDecoder().decode(yield* u.readBytes(buf, n));
          return 0;
        },
      }),
    );
    guest.boot();
    const before = guest.dmesg();
    guest.run("/bin/dmesg");
    expect(text).toBe(before);
    expect(text.startsWith("[    0.000000] Linux version 4.4.0-visorlab")).toBe(true);
  });
});

describe("scheduling and signals", () => {
  it("the timer preempts a spinning process; kill(SIGKILL) from another process ends it", () => {
    const { guest } = makeGuest();
    guest.installProgram(
      defineProgram({
        name: "spin",
        code: { loop: { bytes: Uint8Array.of(0xeb, 0xfe) } }, // jmp $
        *main(u) {
          yield* u.call(u.code("loop"));
          return 0;
        },
      }),
    );
    let victim = 0;
    guest.installProgram(
      defineProgram({
        name: "killer",
        *main(u) {
          yield* u.printf("kill %d\n", yield* u.sys(NR.kill, victim, SIG.SIGKILL));
          return 0;
        },
      }),
    );
    guest.boot();
    victim = guest.spawn("/bin/spin");
    const k = guest.spawn("/bin/killer");
    const r = guest.runUntilIdle({ maxInstructions: 2_000_000, tickInstructions: 50_000 });
    expect(r.idle).toBe(true);
    expect(guest.process(k).output).toBe("kill 0\n");
    expect(guest.process(victim).exit).toEqual({ code: 0, signal: SIG.SIGKILL });
    expect(guest.kernel.sched.ticks[0]).toBeGreaterThan(0);
  });

  it("an NMI the guest receives is reported and the interrupted code continues", () => {
    const { guest, cpus } = makeGuest();
    guest.installProgram(
      defineProgram({
        name: "nmi",
        *main(u) {
          u.cpu.raiseNmi();
          yield* u.printf("still here\n");
          return 0;
        },
      }),
    );
    guest.boot();
    const p = guest.run("/bin/nmi");
    expect(p.output).toBe("still here\n");
    expect(guest.dmesg()).toContain("Uhhuh. NMI received for unknown reason 00 on CPU 0.");
    void cpus;
  });
});

describe("interrupt acknowledgement", () => {
  it("each CPU programs its own local APIC at start-up and acknowledges interrupts with EOI", () => {
    const { guest, mem } = makeGuest({ lapic: true, lapicTimerCount: 250000, ncpu: 2 });
    const writes: { offset: number; value: number; cpu: number | undefined }[] = [];
    mem.mapMmio(0xfee00000, 4096, {
      read: () => 0,
      write: (offset, _size, value, initiator) => {
        writes.push({ offset, value, cpu: initiator });
      },
    });
    guest.installProgram(
      defineProgram({
        name: "t",
        *main(u) {
          yield* u.getpid();
          return 0;
        },
      }),
    );
    guest.boot();
    const pid = guest.spawn("/bin/t");
    guest.tick(0);
    guest.runUntilIdle();
    expect(guest.process(pid).exit).toEqual({ code: 0, signal: 0 });
    for (const cpu of [0, 1])
      expect(writes.filter((w) => w.cpu === cpu && w.offset !== 0xb0).map((w) => [w.offset, w.value])).toEqual([
        [0xf0, 0x1ff],
        [0x3e0, 0xb],
        [0x320, 0x200ef],
        [0x380, 250000],
      ]);
    expect(writes.filter((w) => w.offset === 0xb0 && w.cpu === 0).length).toBeGreaterThanOrEqual(1);
  });
});

describe("kernel access to user memory", () => {
  it("write(2) from a swapped-out buffer faults it back in inside copy_from_user", () => {
    const { guest } = makeGuest();
    guest.installProgram(
      defineProgram({
        name: "swapwrite",
        *main(u) {
          const p = yield* u.mmap(0, 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
          yield* u.writeBytes(p, new TextEncoder().encode("from swap\n"));
          yield* u.madvise(p, 4096, MADV.PAGEOUT);
          yield* u.write(1, p, 10);
          return 0;
        },
      }),
    );
    guest.boot();
    expect(guest.run("/bin/swapwrite").output).toBe("from swap\n");
    expect(guest.swapStats()).toMatchObject({ out: 1, in: 1 });
  });

  it("set_memory_rw / set_memory_ro toggle the sys_call_table page", () => {
    const { guest } = makeGuest();
    const seen: bigint[] = [];
    guest.installModule(
      defineModule({
        name: "rw",
        license: "GPL",
        *init(k) {
          const slot = (yield* k.symbol("sys_call_table")) + BigInt(8 * NR.getpid);
          const page = slot & ~0xfffn;
          seen.push(yield* k.call("set_memory_rw", page, 1));
          const old = yield* k.read64(slot);
          yield* k.write64(slot, yield* k.symbol("sys_getuid"));
          seen.push(yield* k.call("set_memory_ro", page, 1));
          seen.push(old);
          return 0;
        },
      }),
    );
    let pid = -1;
    guest.installProgram(
      defineProgram({
        name: "gp",
        *main(u) {
          pid = yield* u.getpid();
          return 0;
        },
      }),
    );
    guest.boot();
    guest.run("/bin/insmod", { argv: ["insmod", "/lib/modules/rw.ko"] });
    expect(seen).toEqual([0n, 0n, guest.symbol("sys_getpid")]);
    guest.run("/bin/gp", { uid: 4321 });
    expect(pid).toBe(4321); // getpid now runs sys_getuid
  });
});
