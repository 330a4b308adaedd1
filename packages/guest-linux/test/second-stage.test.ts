import type { SecondStage } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { defineModule, defineProgram, MADV, MAP, O, PM, PROT, SEEK } from "../src/index";
import { makeGuest } from "./helpers";

/**
 * Like a hypervisor's lazily built EPT: the first access to every physical
 * page ends execution (an "EPT violation" exit) before the instruction
 * retires; the driver maps the page and resumes. Every TypeScript access that
 * hits such a page is replayed on a real instruction, so the guest must behave
 * exactly as without the second stage.
 */
function workload(lazy: boolean) {
  const { guest, cpus } = makeGuest({ ncpu: 2 });
  const mapped = new Set<number>();
  let exits = 0;
  const where = new Set<string>();
  if (lazy)
    for (const cpu of cpus) {
      const stage: SecondStage = {
        translate(gpa) {
          const pfn = Math.floor(gpa / 4096);
          if (!mapped.has(pfn)) cpu.exit({ pfn });
          return gpa;
        },
      };
      cpu.secondStage = stage;
    }
  const seen: string[] = [];
  guest.installModule(
    defineModule({
      name: "probe",
      license: "GPL",
      vars: { buf: 64 },
      *init(k) {
        yield* k.write64(k.var("buf"), 0x1122334455667788n);
        const mutex = yield* k.symbol("module_mutex");
        yield* k.call("mutex_lock", mutex);
        const me = yield* k.call("find_module", yield* k.pushString("probe"));
        yield* k.call("mutex_unlock", mutex);
        yield* k.printk(
          "probe: self %s, buf %llx\n",
          me === k.module ? "found" : "missing",
          yield* k.read64(k.var("buf")),
        );
        return 0;
      },
    }),
  );
  guest.installProgram(
    defineProgram({
      name: "mem",
      *main(u) {
        const p = yield* u.mmap(0, 16 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
        for (let i = 0; i < 16; i++) yield* u.write32(p + i * 4096, i * 3);
        yield* u.madvise(p, 8 * 4096, MADV.PAGEOUT);
        let sum = 0;
        for (let i = 0; i < 16; i++) sum += yield* u.read32(p + i * 4096);
        const fd = yield* u.open("/proc/self/pagemap", O.RDONLY);
        const buf = yield* u.malloc(16 * 8);
        yield* u.lseek(fd, (p / 4096) * 8, SEEK.SET);
        yield* u.read(fd, buf, 16 * 8);
        let present = 0;
        for (let i = 0; i < 16; i++) if ((yield* u.read64(buf + BigInt(8 * i))) & PM.PRESENT) present++;
        yield* u.printf("sum %d present %d\n", sum, present);
        seen.push(`sum ${sum} present ${present}`);
        return 0;
      },
    }),
  );
  guest.boot();
  guest.spawn("/bin/insmod", { argv: ["insmod", "/lib/modules/probe.ko"] });
  guest.spawn("/bin/mem", { cpu: 1 });
  for (let guard = 0; guard < 100000; guard++) {
    const r = guest.runUntilIdle();
    if (r.stop?.reason.reason === "exit") {
      exits++;
      where.add(guest.kernel.symbolize(cpus[r.stop.cpu]!.rip).replace(/\+.*/, ""));
      mapped.add((r.stop.reason.payload as { pfn: number }).pfn);
      continue;
    }
    expect(r.idle).toBe(true);
    break;
  }
  const log = guest
    .dmesg()
    .split("\n")
    .map((l) => l.slice(15));
  return { guest, exits, where, seen, log, console: guest.consoleOutput() };
}

describe("under a lazily mapping second stage (EPT-like exits on first touch)", () => {
  it("behaves exactly as without it", () => {
    const plain = workload(false);
    const lazy = workload(true);
    expect(plain.exits).toBe(0);
    expect(lazy.exits).toBeGreaterThan(50);
    expect(lazy.seen).toEqual(["sum 360 present 16"]);
    expect(lazy.seen).toEqual(plain.seen);
    expect(lazy.console).toBe(plain.console);
    expect(lazy.log).toEqual(plain.log);
    expect(lazy.log).toContain("probe: self found, buf 1122334455667788");
    // Some exits were taken by the replay of a TypeScript access on the kernel's replay stubs.
    expect(lazy.where.has("__kmem_replay")).toBe(true);
  });
});
