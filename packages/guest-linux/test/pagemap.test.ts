import { describe, expect, it } from "vitest";
import { defineProgram, MADV, MAP, O, PM, PROT, SEEK } from "../src/index";
import { makeGuest } from "./helpers";

interface Report {
  base: bigint;
  entries: bigint[];
  reads: number[];
}

/** Maps 4 pages, touches 3 of them, reads their pagemap entries with lseek + read. */
function pagemapProgram(report: Report) {
  return defineProgram({
    name: "pm",
    *main(u) {
      const base = yield* u.mmap(0, 4 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
      report.base = BigInt(base);
      for (const i of [0, 1, 3]) yield* u.write32(base + i * 4096, 0x1000 + i);
      const fd = yield* u.open("/proc/self/pagemap", O.RDONLY);
      report.reads.push(fd);
      report.reads.push(yield* u.lseek(fd, (base / 4096) * 8, SEEK.SET));
      const buf = yield* u.malloc(32);
      report.reads.push(yield* u.read(fd, buf, 32));
      for (let i = 0; i < 4; i++) report.entries.push(yield* u.read64(buf + BigInt(8 * i)));
      // Unaligned offsets and sizes are rejected, as in fs/proc/task_mmu.c.
      report.reads.push(yield* u.read(fd, buf, 7));
      yield* u.lseek(fd, 3, SEEK.SET);
      report.reads.push(yield* u.read(fd, buf, 8));
      return 0;
    },
  });
}

describe("/proc/self/pagemap", () => {
  for (const uid of [0, 1000]) {
    it(`reports present pages ${uid === 0 ? "with their PFNs (root)" : "with PFN 0 (unprivileged)"}`, () => {
      const { guest } = makeGuest();
      const report: Report = { base: 0n, entries: [], reads: [] };
      guest.installProgram(pagemapProgram(report));
      guest.boot();
      const pid = guest.spawn("/bin/pm", { uid });
      // Run until the program has read its entries but before it exits: check against its live page tables.
      let pfns: (number | null)[] = [];
      const off = guest.onPrintk(() => {});
      guest.runUntilIdle();
      off();
      void pid;
      expect(report.reads[0]).toBe(3);
      expect(report.reads[1]).toBe(Number((report.base / 4096n) * 8n));
      expect(report.reads[2]).toBe(32);
      expect(report.reads[3]).toBe(-22);
      expect(report.reads[4]).toBe(-22);
      pfns = report.entries.map((e) => Number(e & PM.PFRAME_MASK));
      const present = report.entries.map((e) => (e & PM.PRESENT) !== 0n);
      expect(present).toEqual([true, true, false, true]);
      for (let i = 0; i < 4; i++) {
        const e = report.entries[i]!;
        expect(e & PM.SWAP).toBe(0n);
        expect(e & PM.FILE).toBe(0n);
        expect((e & PM.SOFT_DIRTY) !== 0n).toBe(true);
        expect((e & PM.MMAP_EXCLUSIVE) !== 0n).toBe(present[i]);
      }
      if (uid !== 0) expect(pfns).toEqual([0, 0, 0, 0]);
      else {
        expect(pfns[2]).toBe(0);
        expect(pfns[0]).not.toBe(0);
        // The program's pages hold what it wrote: check the PFNs against physical memory.
        for (const i of [0, 1, 3]) expect(guest.kernel.mem.read(pfns[i]! * 4096, 4)).toBe(0x1000 + i);
      }
    });
  }

  it("agrees with the page tables while the process lives", () => {
    const { guest } = makeGuest();
    const seen: { va: bigint; entry: bigint }[] = [];
    let pid = 0;
    guest.installProgram(
      defineProgram({
        name: "pm2",
        *main(u) {
          const p = yield* u.malloc(3 * 4096);
          for (let i = 0; i < 3; i++) yield* u.write8(p + BigInt(i * 4096), 1);
          const fd = yield* u.open("/proc/self/pagemap");
          const buf = yield* u.malloc(8);
          for (let i = 0; i < 3; i++) {
            const va = p + BigInt(i * 4096);
            yield* u.lseek(fd, (va / 4096n) * 8n, SEEK.SET);
            yield* u.read(fd, buf, 8);
            seen.push({ va, entry: yield* u.read64(buf) });
          }
          // Stop here (the test checks the page tables), then exit.
          yield* u.syscall(34 /* pause: ENOSYS here */);
          const walk = seen.map((s) => guest.translate(pid, s.va));
          for (let i = 0; i < 3; i++) expect(Number(seen[i]!.entry & PM.PFRAME_MASK) * 4096).toBe(walk[i]! & ~0xfff);
          return 0;
        },
      }),
    );
    guest.boot();
    pid = guest.spawn("/bin/pm2");
    guest.runUntilIdle();
    expect(guest.process(pid).exit).toEqual({ code: 0, signal: 0 });
    expect(seen.length).toBe(3);
  });
});

describe("swap", () => {
  it("swaps out an unlocked page and brings it back on the next touch; mlock keeps pages resident", () => {
    const { guest } = makeGuest();
    const log: string[] = [];
    const state: bigint[][] = [];
    guest.installProgram(
      defineProgram({
        name: "sw",
        *main(u) {
          const a = yield* u.mmap(0, 2 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
          const b = yield* u.mmap(0, 2 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
          yield* u.write32(a, 0xaaaa5555);
          yield* u.write32(a + 4096, 0x12345678);
          yield* u.write32(b, 0xbbbb0000);
          yield* u.write32(b + 4096, 0xbbbb0001);
          log.push(`mlock ${yield* u.mlock(b, 2 * 4096)}`);
          const fd = yield* u.open("/proc/self/pagemap");
          const buf = yield* u.malloc(16);
          const entries = function* (va: number) {
            yield* u.lseek(fd, (va / 4096) * 8, SEEK.SET);
            yield* u.read(fd, buf, 16);
            return [yield* u.read64(buf), yield* u.read64(buf + 8n)];
          };
          log.push(`pageout a ${yield* u.madvise(a, 2 * 4096, MADV.PAGEOUT)}`);
          log.push(`pageout b ${yield* u.madvise(b, 2 * 4096, MADV.PAGEOUT)}`);
          state.push(yield* entries(a), yield* entries(b));
          // Touch the first page of a: it comes back from swap with its contents.
          log.push(`a[0] ${(yield* u.read32(a)).toString(16)}`);
          state.push(yield* entries(a));
          log.push(`a[1] ${(yield* u.read32(a + 4096)).toString(16)}`);
          log.push(`b ${(yield* u.read32(b)).toString(16)} ${(yield* u.read32(b + 4096)).toString(16)}`);
          return 0;
        },
      }),
    );
    guest.boot();
    const p = guest.run("/bin/sw");
    expect(p.exit).toEqual({ code: 0, signal: 0 });
    expect(log).toEqual([
      "mlock 0",
      "pageout a 0",
      "pageout b 0",
      "a[0] aaaa5555",
      "a[1] 12345678",
      "b bbbb0000 bbbb0001",
    ]);
    const [aOut, bOut, aBack] = state as [bigint[], bigint[], bigint[]];
    for (const e of aOut) {
      expect(e & PM.PRESENT).toBe(0n);
      expect(e & PM.SWAP).toBe(PM.SWAP);
      expect(e & 0x1fn).toBe(0n); // swap type 0
      expect((e & PM.PFRAME_MASK) >> 5n).toBeGreaterThan(0n); // swap offset
    }
    for (const e of bOut) {
      expect(e & PM.PRESENT).toBe(PM.PRESENT);
      expect(e & PM.SWAP).toBe(0n);
    }
    expect(aBack[0]! & PM.PRESENT).toBe(PM.PRESENT);
    expect(aBack[1]! & PM.SWAP).toBe(PM.SWAP);
    const s = guest.swapStats();
    expect(s.out).toBe(2);
    expect(s.in).toBe(2);
  });

  it("reclaims under memory pressure, never taking mlocked pages", () => {
    const { guest } = makeGuest({
      ram: 64 * 1024 * 1024,
      reserved: null,
      swap: { minFreePages: 15000, reclaimBatch: 64 },
    });
    const out: string[] = [];
    guest.installProgram(
      defineProgram({
        name: "hog",
        *main(u) {
          const locked = yield* u.mmap(0, 8 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
          yield* u.mlock(locked, 8 * 4096);
          const free = yield* u.mmap(0, 8 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
          for (let i = 0; i < 8; i++) {
            yield* u.write32(locked + i * 4096, i);
            yield* u.write32(free + i * 4096, 100 + i);
          }
          // Allocate until the kernel must reclaim.
          const big = yield* u.mmap(0, 1200 * 4096, PROT.READ | PROT.WRITE, MAP.PRIVATE | MAP.ANONYMOUS);
          for (let i = 0; i < 1200; i++) yield* u.write8(big + i * 4096, 1);
          const fd = yield* u.open("/proc/self/pagemap");
          const buf = yield* u.malloc(64);
          yield* u.lseek(fd, (locked / 4096) * 8, SEEK.SET);
          yield* u.read(fd, buf, 64);
          let lockedPresent = 0;
          for (let i = 0; i < 8; i++) if ((yield* u.read64(buf + BigInt(8 * i))) & PM.PRESENT) lockedPresent++;
          yield* u.lseek(fd, (free / 4096) * 8, SEEK.SET);
          yield* u.read(fd, buf, 64);
          let freeSwapped = 0;
          for (let i = 0; i < 8; i++) if ((yield* u.read64(buf + BigInt(8 * i))) & PM.SWAP) freeSwapped++;
          let sum = 0;
          for (let i = 0; i < 8; i++) sum += yield* u.read32(free + i * 4096);
          out.push(`${lockedPresent} ${freeSwapped} ${sum}`);
          return 0;
        },
      }),
    );
    guest.boot();
    const p = guest.run("/bin/hog");
    expect(p.exit).toEqual({ code: 0, signal: 0 });
    const [lockedPresent, freeSwapped, sum] = out[0]!.split(" ").map(Number);
    expect(lockedPresent).toBe(8);
    expect(freeSwapped).toBeGreaterThan(0);
    expect(sum).toBe(8 * 100 + 28);
    expect(guest.swapStats().out).toBeGreaterThan(0);
  });
});
