import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, KERNEL_VM, MAP, PROT } from "../src/index";
import { makeGuest } from "./helpers";

function scenario(seed: number, kaslr: boolean) {
  const { guest } = makeGuest({ seed, kaslr, ncpu: 2 });
  guest.installModule(
    defineModule({
      name: "hello",
      *init(k) {
        yield* k.printk("hello module at %p (core %p)\n", k.module, k.core);
        return 0;
      },
    }),
  );
  guest.installProgram(
    defineProgram({
      name: "work",
      *main(u, argv) {
        const p = yield* u.mmap(0, 8 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
        for (let i = 0; i < 8; i++) yield* u.write32(p + i * 4096, i);
        yield* u.printf("%s done\n", argv[1] ?? "");
        return 0;
      },
    }),
  );
  guest.boot();
  guest.spawn("/bin/insmod", { argv: ["insmod", "/lib/modules/hello.ko"] });
  guest.spawn("/bin/work", { argv: ["work", "a"], cpu: 1 });
  guest.spawn("/bin/work", { argv: ["work", "b"], cpu: 0 });
  const r = guest.runUntilIdle();
  expect(r.idle).toBe(true);
  return guest;
}

describe("determinism and KASLR", () => {
  it("two boots with the same seed give byte-identical dmesg (and the same instruction counts)", () => {
    const a = scenario(7, true);
    const b = scenario(7, true);
    expect(a.dmesg()).toBe(b.dmesg());
    expect(a.dmesg()).toContain("hello module at ffffffffc");
    expect(a.kernel.cpus.map((c) => c.instret)).toEqual(b.kernel.cpus.map((c) => c.instret));
    expect(a.consoleOutput()).toBe(b.consoleOutput());
  });

  it("without KASLR the kernel text is at 0xffffffff81000000, physically at 16 MiB", () => {
    const g = scenario(1, false);
    expect(g.layout.textBase).toBe(KERNEL_VM.START_KERNEL);
    expect(g.layout.physBase).toBe(0x1000000);
    expect(g.symbol("_text")).toBe(0xffffffff81000000n);
  });

  it("KASLR with another seed moves the kernel (2 MiB aligned, virtually and physically)", () => {
    const seen = new Set<bigint>();
    for (const seed of [1, 2, 3]) {
      const g = scenario(seed, true);
      const { textBase, physBase, kaslrOffset } = g.layout;
      expect(textBase % 0x200000n).toBe(0n);
      expect(physBase % 0x200000).toBe(0);
      expect(textBase).toBe(KERNEL_VM.START_KERNEL + kaslrOffset);
      expect(g.symbol("commit_creds") - textBase).toBe(g.symbol("commit_creds") - g.symbol("_text"));
      // The kernel text is really there: the translation of commit_creds lands in the 2 MiB-aligned image.
      const pa = g.translate(0, g.symbol("commit_creds"))!;
      expect(pa - physBase).toBe(Number(g.symbol("commit_creds") - textBase));
      seen.add(textBase);
    }
    expect(seen.size).toBe(3);
  });
});

describe("SMP", () => {
  it("runs processes on every vCPU, each through its own SYSCALL entry", () => {
    const { guest } = makeGuest({ ncpu: 3 });
    const cpus: number[] = [];
    guest.installProgram(
      defineProgram({
        name: "who",
        *main(u) {
          cpus.push(u.cpu.index);
          yield* u.printf("pid %d on cpu %d\n", yield* u.getpid(), u.cpu.index);
          return 0;
        },
      }),
    );
    guest.boot();
    const entry = Number(BigInt.asIntN(64, guest.symbol("entry_SYSCALL_64")));
    const counts = [0, 0, 0];
    guest.kernel.cpus.forEach((c, i) => {
      c.hookCode(entry, entry + 1, () => counts[i]!++);
    });
    const pids = [0, 1, 2].map((cpu) => guest.spawn("/bin/who", { cpu }));
    expect(guest.runUntilIdle().idle).toBe(true);
    expect(cpus.sort()).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      expect(guest.process(pids[i]!).output).toBe(`pid ${pids[i]} on cpu ${i}\n`);
      expect(counts[i]).toBeGreaterThanOrEqual(3); // getpid, write, exit_group
    }
  });
});
