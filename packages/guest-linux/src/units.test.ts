import { PhysicalMemory } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import { buildE820, E820_TYPE, formatE820 } from "./e820";
import { GuestLinuxError } from "./errors";
import { done, type Gen, runSync } from "./gen";
import { computeLayout, KERNEL_VM } from "./layout";
import { formatC } from "./libc";
import { PhysMem } from "./mem";
import { moduleImage, parseModuleImage } from "./module-def";
import { PageAllocator } from "./page-alloc";
import { pteToSwpEntry, swpEntryToPte } from "./pgtable";
import { timestampPrefix, vsnprintf } from "./printk";
import { SeededRandom } from "./rng";
import { Slab } from "./slab";

const MiB = 1024 * 1024;

function fmt(f: string, args: bigint[], strings: Record<number, string> = {}): string {
  const mem = new PhysicalMemory({ ramSize: 16 * MiB });
  for (const [addr, s] of Object.entries(strings)) mem.writeBytes(Number(addr), new TextEncoder().encode(`${s}\0`));
  const m = new PhysMem(mem, (lin) => lin);
  let i = 0;
  const next = (): Gen<bigint> => done(args[i++] ?? 0n);
  return runSync(vsnprintf(m, f, next, (v) => (v === 0x1000n ? "foo+0x0/0x10" : null)));
}

describe("vsnprintf (printk formats over guest memory)", () => {
  it("formats integers, strings from memory, pointers and widths as Linux does", () => {
    expect(fmt("%d %i %u", [-5n, 7n, 0xffffffffn])).toBe("-5 7 4294967295");
    expect(fmt("%x %X %lx %llx", [255n, 255n, 0xdeadbeefcafen, -1n])).toBe("ff FF deadbeefcafe ffffffffffffffff");
    expect(fmt("%08x|%-4d|%4d|%#x|%#o", [0x1234n, 5n, 5n, 0x1fn, 8n])).toBe("00001234|5   |   5|0x1f|010");
    expect(fmt("get_module(%s) = %p", [0x2000n, 0xffffffffc095b100n], { 8192: "testmod" })).toBe(
      "get_module(testmod) = ffffffffc095b100",
    );
    expect(fmt("%s %.3s %c%%", [0n, 0x2000n, 65n], { 8192: "abcdef" })).toBe("(null) abc A%");
    expect(fmt("%pS %pK %#p", [0x1000n, 0x2000n, 0x10n])).toBe("foo+0x0/0x10 0000000000002000 0x0000000000000010");
    expect(fmt("%ld %hd %hhx", [-1n, 0x12345n, 0x1ffn])).toBe("-1 9029 ff");
  });

  it("stamps lines like dmesg", () => {
    expect(timestampPrefix(0n)).toBe("[    0.000000] ");
    expect(timestampPrefix(57_012_967_123n)).toBe("[   57.012967] ");
  });
});

describe("memory map and layout", () => {
  it("builds an e820 map with the hypervisor's region reserved", () => {
    const map = buildE820(256 * MiB, { base: 192 * MiB, size: 64 * MiB });
    expect(map).toEqual([
      { start: 0, end: 0x9fc00, type: E820_TYPE.RAM },
      { start: 0x9fc00, end: 0x100000, type: E820_TYPE.RESERVED },
      { start: 0x100000, end: 192 * MiB, type: E820_TYPE.RAM },
      { start: 192 * MiB, end: 256 * MiB, type: E820_TYPE.RESERVED },
    ]);
    expect(formatE820(map)[3]).toBe("BIOS-e820: [mem 0x0000000000100000-0x000000000bffffff] usable");
    expect(() => buildE820(256 * MiB, { base: 255 * MiB, size: 2 * MiB })).toThrow(GuestLinuxError);
  });

  it("places the kernel at 16 MiB / 0xffffffff81000000, or at seeded 2 MiB-aligned slots with KASLR", () => {
    const usable = [{ start: 0x100000, end: 1024 * MiB }];
    const plain = computeLayout({
      ramSize: 1024 * MiB,
      directMapBase: KERNEL_VM.DIRECT_MAP_LEGACY,
      kaslr: false,
      usable,
      rng: new SeededRandom(1),
    });
    expect(plain.physBase).toBe(16 * MiB);
    expect(BigInt.asUintN(64, BigInt(plain.textVirt))).toBe(0xffffffff81000000n);
    expect(BigInt.asUintN(64, BigInt(plain.pageOffset))).toBe(0xffff880000000000n);
    const a = computeLayout({
      ramSize: 1024 * MiB,
      directMapBase: KERNEL_VM.DIRECT_MAP,
      kaslr: true,
      usable,
      rng: new SeededRandom(5),
    });
    const b = computeLayout({
      ramSize: 1024 * MiB,
      directMapBase: KERNEL_VM.DIRECT_MAP,
      kaslr: true,
      usable,
      rng: new SeededRandom(5),
    });
    expect(a).toEqual(b);
    expect(a.physBase % (2 * MiB)).toBe(0);
    expect(a.kaslrOffset % (2 * MiB)).toBe(0);
    expect(a.textVirt + 6 * MiB).toBeLessThanOrEqual(
      Number(BigInt.asIntN(64, KERNEL_VM.START_KERNEL_MAP)) + 1024 * MiB,
    );
    expect(() =>
      computeLayout({
        ramSize: 64 * MiB,
        directMapBase: 0xffff800000000000n,
        kaslr: false,
        usable,
        rng: new SeededRandom(1),
      }),
    ).toThrow(GuestLinuxError);
  });
});

describe("allocators", () => {
  it("hands out contiguous aligned runs and scattered single pages, deterministically", () => {
    const map = buildE820(64 * MiB, null);
    const pa = new PageAllocator(map, new SeededRandom(9));
    pa.reserve(0, 256);
    const run = pa.allocContig(2);
    expect(run % 4).toBe(0);
    expect(pa.isAllocated(run + 3)).toBe(true);
    const pb = new PageAllocator(map, new SeededRandom(9));
    pb.reserve(0, 256);
    pb.allocContig(2);
    let prev = -1;
    for (let i = 0; i < 200; i++) {
      const p = pa.allocScattered(prev);
      expect(pb.allocScattered(prev)).toBe(p);
      expect(Math.abs(p - prev)).not.toBe(1);
      prev = p;
    }
    const before = pa.freePages;
    pa.freeRange(run, 2);
    expect(pa.freePages).toBe(before + 4);
  });

  it("kmalloc returns direct-map objects of the right class; kfree rejects foreign pointers", () => {
    const pa = new PageAllocator(buildE820(64 * MiB, null), new SeededRandom(1));
    pa.reserve(0, 256);
    const slab = new Slab(pa, -0x777800000000);
    const a = slab.kmalloc(100);
    const b = slab.kmalloc(100);
    expect(slab.ksize(a)).toBe(128);
    expect(Math.abs(a - b)).toBe(128);
    expect(Math.floor(a / 4096)).toBe(Math.floor(b / 4096));
    const big = slab.kmalloc(20000);
    expect(slab.ksize(big)).toBe(32768);
    expect(slab.kfree(a)).toBe(true);
    expect(slab.kfree(a)).toBe(false);
    expect(slab.kfree(12345)).toBe(false);
    expect(slab.kmalloc(0)).toBe(16);
  });
});

describe("formats", () => {
  it("round-trips module images and swap entries", () => {
    const img = moduleImage({ name: "testmod", license: "GPL" }, "4.4.0 SMP");
    expect(parseModuleImage(img)).toEqual({ name: "testmod", license: "GPL", vermagic: "4.4.0 SMP" });
    expect(parseModuleImage(new Uint8Array(100))).toBeNull();
    const pte = swpEntryToPte(3, 0x1234);
    expect(pte & 1n).toBe(0n);
    expect(pteToSwpEntry(pte)).toEqual({ type: 3, offset: 0x1234 });
    expect(pteToSwpEntry(0n)).toBeNull();
    expect(formatC("%d-%05x-%s-%-3c|%p", [-3, 0xab, "s", 65, 4096n])).toBe("-3-000ab-s-A  |0x1000");
  });
});
