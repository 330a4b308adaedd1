import { Cpu, PhysicalMemory } from "@visorlab/x86-core";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CpuCurrent,
  fnv1a,
  GENERAL_REG,
  GuestMemory,
  LogBuffer,
  MEMRW,
  MemrwStats,
  registerMemrw,
  VMMERR,
  VmmcallRegistry,
} from "./index";

const RAM = 64 * 1024 * 1024;
const VMM_BASE = 60 * 1024 * 1024;
const VMM_SIZE = 4 * 1024 * 1024;
const enc = (s: string) => Uint8Array.from([...s].map((c) => c.charCodeAt(0)));

/** 4-level tables at physical 0x100000…, 4 KiB pages. */
function mapper(mem: PhysicalMemory, cr3: number) {
  let next = cr3 + 0x1000;
  return (linear: bigint, phys: number, flags = 0x7): number => {
    let table = cr3;
    for (let level = 4; level > 1; level--) {
      const idx = Number((linear >> BigInt(12 + 9 * (level - 1))) & 0x1ffn);
      const e = mem.read64(table + idx * 8);
      if ((e & 1n) === 0n) {
        const t = next;
        next += 0x1000;
        mem.write64(table + idx * 8, BigInt(t) | 0x7n);
        table = t;
      } else table = Number(e & 0xffffffff000n);
    }
    const at = table + Number((linear >> 12n) & 0x1ffn) * 8;
    mem.write64(at, BigInt(phys) | BigInt(flags));
    return at;
  };
}

function setup() {
  const mem = new PhysicalMemory({ ramSize: RAM });
  const cpu = new Cpu(mem);
  cpu.cr3 = 0x100000;
  cpu.cr0 |= 2 ** 31 + (1 << 16); // PG, WP
  const map = mapper(mem, cpu.cr3);
  const gmm = new GuestMemory(mem, { ramSize: RAM, vmmBase: VMM_BASE, vmmSize: VMM_SIZE });
  const log = new LogBuffer();
  const reg = new VmmcallRegistry();
  const stats = new MemrwStats();
  const nums = registerMemrw(reg, stats);
  const ctx = { current: new CpuCurrent(cpu), gmm, log };
  const call = (name: string, regs: { rbx?: bigint; rcx?: bigint; rdx?: bigint; rsi?: bigint; rdi?: bigint }) => {
    cpu.setReg64(GENERAL_REG.RAX, BigInt(nums[name as keyof typeof nums]));
    cpu.setReg64(GENERAL_REG.RBX, regs.rbx ?? 0n);
    cpu.setReg64(GENERAL_REG.RCX, regs.rcx ?? 0n);
    cpu.setReg64(GENERAL_REG.RDX, regs.rdx ?? 0n);
    cpu.setReg64(GENERAL_REG.RSI, regs.rsi ?? 0n);
    cpu.setReg64(GENERAL_REG.RDI, regs.rdi ?? 0n);
    const before = log.read().length;
    reg.dispatch(ctx);
    return {
      rax: cpu.getReg64(GENERAL_REG.RAX),
      lines: log
        .read()
        .slice(before)
        .map((l) => l.text),
    };
  };
  /** A digest of the RAM the tests use, page tables left out (successful walks set accessed bits, as BitVisor's). */
  const digest = () =>
    [
      [0, 0x100000],
      [0x200000, 0x1000000],
      [VMM_BASE - 0x1000, VMM_BASE + 0x2000],
    ].reduce((h, [a, b]) => Math.imul(h, 31) ^ fnv1a(mem.readBytes(a!, b! - a!)), 0);
  return { mem, cpu, map, gmm, log, reg, stats, nums, call, digest };
}

describe("memrw handlers (SEEDS S3/S4)", () => {
  let m: ReturnType<typeof setup>;
  beforeEach(() => {
    m = setup();
  });

  it("memrw_regs logs RBX/RCX/RDX and returns 10", () => {
    expect(m.nums).toEqual({
      memrw_regs: 1,
      memrw_gphys: 2,
      memrw_gphys_pages: 3,
      memrw_linear_b: 4,
      memrw_linear_copy: 5,
    });
    const r = m.call(MEMRW.REGS, { rbx: 1n, rcx: 2n, rdx: 0xffffffffffffffffn });
    expect(r).toEqual({ rax: 10n, lines: ["rbx = 1", "rcx = 2", "rdx = -1"] });
  });

  it("memrw_gphys logs the string and writes foo over it", () => {
    m.mem.writeBytes(0x345678, enc("abc\0"));
    const r = m.call(MEMRW.GPHYS, { rbx: 0x345678n, rcx: 1024n });
    expect(r).toEqual({ rax: 0n, lines: ["[vmmcall memrw_gphys] buf = abc"] });
    expect(m.mem.readBytes(0x345678, 4)).toEqual(enc("foo\0"));
  });

  it.each([
    ["the VMM region", BigInt(VMM_BASE + 0x1000), 16n],
    ["a range running into the VMM region", BigInt(VMM_BASE - 8), 16n],
    ["beyond RAM", BigInt(RAM + 0x1000), 16n],
    ["a huge length", 0x345000n, 1n << 40n],
    ["length 0", 0x345000n, 0n],
    ["a negative address", 0xfffffffffffff000n, 16n],
  ])("memrw_gphys returns 1 and changes nothing for %s", (_what, gpa, len) => {
    m.mem.writeBytes(0x345000, enc("abc\0"));
    const before = m.digest();
    const r = m.call(MEMRW.GPHYS, { rbx: gpa, rcx: len });
    expect(r.rax).toBe(1n);
    expect(r.lines).toEqual([
      `[vmmcall memrw_gphys] mapmem_gphys error: ${BigInt.asIntN(64, gpa)}, ${BigInt.asIntN(64, len)}`,
    ]);
    expect(m.digest()).toBe(before);
  });

  it("mapmem_gphys maps guest page 0 as BitVisor does, but memrw_gphys refuses it", () => {
    expect(m.gmm.mapmemGphys(0x10n, 4n)).not.toBeNull();
    m.mem.writeBytes(0x10, enc("IVT\0"));
    const before = m.digest();
    const r = m.call(MEMRW.GPHYS, { rbx: 0x10n, rcx: 4096n });
    expect(r.rax).toBe(1n);
    expect(r.lines).toEqual(["[vmmcall memrw_gphys] refusing guest page 0: 16, 4096 (a PFN hidden by pagemap?)"]);
    expect(m.digest()).toBe(before);
  });

  it("memrw_gphys_pages reads and writes a buffer across two scattered pages", () => {
    // "ab" at the end of 0x400000's page, "cdef\0" at the start of 0x700000.
    m.mem.writeBytes(0x400ffe, enc("ab"));
    m.mem.writeBytes(0x700000, enc("cdef\0"));
    const r = m.call(MEMRW.GPHYS_PAGES, { rbx: 0x400ffen, rcx: 7n, rdx: 0x700000n });
    expect(r).toEqual({
      rax: 0n,
      lines: ["[vmmcall memrw_gphys_pages] 0x400ffe(2) 0x700000(5)", "[vmmcall memrw_gphys_pages] buf = abcdef"],
    });
    expect(m.mem.readBytes(0x400ffe, 2)).toEqual(enc("fo"));
    expect(m.mem.readBytes(0x700000, 5)).toEqual(enc("o\0ef\0"));
    // memrw_gphys, given only the first address, reads the physically next page instead.
    m.mem.writeBytes(0x400ffe, enc("ab"));
    m.mem.writeBytes(0x401000, enc("XY\0"));
    expect(m.call(MEMRW.GPHYS, { rbx: 0x400ffen, rcx: 7n }).lines).toEqual(["[vmmcall memrw_gphys] buf = abXY"]);
  });

  it.each([
    ["a missing second page", { rbx: 0x400ffen, rcx: 7n }],
    ["an unaligned second page", { rbx: 0x400ffen, rcx: 7n, rdx: 0x700010n }],
    ["a second page in the VMM region", { rbx: 0x400ffen, rcx: 7n, rdx: BigInt(VMM_BASE) }],
    ["page 0", { rbx: 0x400ffen, rcx: 7n, rdx: 0n }],
    ["too many pages", { rbx: 0x400ffen, rcx: 3n * 4096n + 8n, rdx: 0x700000n, rsi: 0x800000n, rdi: 0x900000n }],
    ["length 0", { rbx: 0x400ffen, rcx: 0n }],
  ])("memrw_gphys_pages returns 1 and changes nothing for %s", (_what, regs) => {
    m.mem.writeBytes(0x400ffe, enc("ab"));
    m.mem.writeBytes(0x700000, enc("cdef\0"));
    const before = m.digest();
    const r = m.call(MEMRW.GPHYS_PAGES, regs);
    expect(r.rax).toBe(1n);
    expect(r.lines).toHaveLength(1);
    expect(m.digest()).toBe(before);
  });

  it("memrw_linear_b and memrw_linear_copy read through the guest's page tables and write foo", () => {
    m.map(0x7f0000001000n, 0x500000);
    m.mem.writeBytes(0x500010, enc("abc\0"));
    const b = m.call(MEMRW.LINEAR_B, { rbx: 0x7f0000001010n, rcx: 3n });
    expect(b.rax).toBe(0n);
    expect(b.lines.slice(0, 3)).toEqual([
      "[vmmcall memrw_linear_b] a",
      "[vmmcall memrw_linear_b] b",
      "[vmmcall memrw_linear_b] c",
    ]);
    expect(b.lines[3]).toMatch(
      /^\[vmmcall memrw_linear_b\] 3 bytes byte-wise: fnv1a 0x[0-9a-f]{8}, 6 page walks, \d+ guest-memory accesses$/,
    );
    expect(m.mem.readBytes(0x500010, 3)).toEqual(enc("foo"));
    m.mem.writeBytes(0x500010, enc("abc\0"));
    const c = m.call(MEMRW.LINEAR_COPY, { rbx: 0x7f0000001010n, rcx: 3n });
    expect(c.rax).toBe(0n);
    expect(c.lines[0]).toBe("[vmmcall memrw_linear_copy] buf = abc");
    expect(c.lines[1]).toMatch(/3 bytes page-wise: fnv1a 0x[0-9a-f]{8}, 2 page walks, /);
    expect(c.lines[1]!.split("fnv1a")[1]!.slice(0, 11)).toBe(b.lines[3]!.split("fnv1a")[1]!.slice(0, 11));
  });

  it("the page-wise copy reads the same bytes as the byte-wise loop with far fewer walks", () => {
    const pages = [0x500000, 0x900000, 0x300000];
    for (const [i, p] of pages.entries()) m.map(0x7f0000010000n + BigInt(i * 4096), p);
    const data = Uint8Array.from({ length: 3 * 4096 }, (_, i) => (i * 7 + 1) & 0xff);
    for (const [i, p] of pages.entries()) m.mem.writeBytes(p, data.subarray(i * 4096, (i + 1) * 4096));
    const b = m.call(MEMRW.LINEAR_B, { rbx: 0x7f0000010000n, rcx: BigInt(data.length) });
    for (const [i, p] of pages.entries()) m.mem.writeBytes(p, data.subarray(i * 4096, (i + 1) * 4096));
    const c = m.call(MEMRW.LINEAR_COPY, { rbx: 0x7f0000010000n, rcx: BigInt(data.length) });
    const sum = `fnv1a 0x${fnv1a(data).toString(16).padStart(8, "0")}`;
    expect(b.lines.at(-1)).toContain(sum);
    expect(c.lines.at(-1)).toContain(sum);
    expect(m.stats.byteWise).toMatchObject({ calls: 1, bytes: data.length, walks: data.length + 4 });
    expect(m.stats.pageWise).toMatchObject({ calls: 1, bytes: data.length, walks: 4 });
    expect(m.stats.byteWise.accesses).toBeGreaterThan(20 * m.stats.pageWise.accesses);
  });

  it.each([MEMRW.LINEAR_B, MEMRW.LINEAR_COPY])(
    "%s returns an error and writes nothing for a not-present page, with no #PF",
    (name) => {
      m.map(0x7f0000001000n, 0x500000);
      m.map(0x7f0000002000n, 0x600000, 0x6); // not present (a swapped-out PTE keeps P clear)
      m.mem.writeBytes(0x500ffe, enc("ab"));
      const before = m.digest();
      const cr2 = m.cpu.cr2;
      const r = m.call(name, { rbx: 0x7f0000001ffen, rcx: 4n });
      expect(r.rax).toBe(BigInt(VMMERR.PAGE_NOT_PRESENT));
      const fn = name === MEMRW.LINEAR_B ? "read_linearaddr_b" : "copy_from_linear";
      expect(r.lines).toEqual([`[vmmcall ${name}] ${fn} 0x7f0000002000: page not present (err 1)`]);
      expect(m.digest()).toBe(before);
      expect(m.cpu.cr2).toBe(cr2);
      // Unmapped, non-canonical, VMM region, bad length.
      expect(m.call(name, { rbx: 0x10n, rcx: 4n }).rax).toBe(BigInt(VMMERR.PAGE_NOT_PRESENT));
      expect(m.call(name, { rbx: 0x800000000000n, rcx: 4n }).rax).toBe(BigInt(VMMERR.NONCANONICAL));
      m.map(0x7f0000003000n, VMM_BASE);
      expect(m.call(name, { rbx: 0x7f0000003000n, rcx: 4n }).rax).toBe(BigInt(VMMERR.NOT_GUEST_RAM));
      expect(m.call(name, { rbx: 0x7f0000001000n, rcx: 0n }).rax).toBe(BigInt(VMMERR.BAD_RANGE));
      expect(m.call(name, { rbx: 0x7f0000001000n, rcx: 1n << 40n }).rax).toBe(BigInt(VMMERR.BAD_RANGE));
      expect(m.digest()).toBe(before);
    },
  );

  it.each([MEMRW.LINEAR_B, MEMRW.LINEAR_COPY])("%s writes no byte when the reply's page is read-only", (name) => {
    m.map(0x7f0000001000n, 0x500000);
    m.map(0x7f0000002000n, 0x600000, 0x5); // present, user, read-only
    m.mem.writeBytes(0x500ffe, enc("ab"));
    m.mem.writeBytes(0x600000, enc("c\0"));
    const r = m.call(name, { rbx: 0x7f0000001ffen, rcx: 4n });
    expect(r.rax).toBe(BigInt(VMMERR.PAGE_NOT_ACCESSIBLE));
    expect(m.mem.readBytes(0x500ffe, 2)).toEqual(enc("ab"));
    expect(m.mem.readBytes(0x600000, 2)).toEqual(enc("c\0"));
  });
});
