import { Cpu, PhysicalMemory } from "@visorlab/x86-core";
import { beforeEach, describe, expect, it } from "vitest";
import {
  BitvisorCoreError,
  CpuCurrent,
  drvhook,
  GENERAL_REG,
  GuestMemory,
  LogBuffer,
  VMMCALL_HANDLER_FAILED,
  VMMERR,
  VmmcallRegistry,
} from "./index";

const RAM = 64 * 1024 * 1024;
const VMM_BASE = 60 * 1024 * 1024;
const VMM_SIZE = 4 * 1024 * 1024;

/** Builds 4-level tables at physical 0x100000…; maps 4 KiB pages linear → physical with flags. */
class Tables {
  next = 0x101000;
  constructor(
    readonly mem: PhysicalMemory,
    readonly cr3 = 0x100000,
  ) {}
  private alloc(): number {
    const a = this.next;
    this.next += 0x1000;
    return a;
  }
  map(linear: bigint, phys: number, flags = 0x7): void {
    let table = this.cr3;
    for (let level = 4; level > 1; level--) {
      const idx = Number((linear >> BigInt(12 + 9 * (level - 1))) & 0x1ffn);
      const e = this.mem.read64(table + idx * 8);
      if ((e & 1n) === 0n) {
        const t = this.alloc();
        this.mem.write64(table + idx * 8, BigInt(t) | 0x7n);
        table = t;
      } else table = Number(e & 0xffffffff000n);
    }
    const idx = Number((linear >> 12n) & 0x1ffn);
    this.mem.write64(table + idx * 8, BigInt(phys) | BigInt(flags));
  }
  entry(linear: bigint): bigint {
    let table = this.cr3;
    for (let level = 4; level > 1; level--) {
      const idx = Number((linear >> BigInt(12 + 9 * (level - 1))) & 0x1ffn);
      table = Number(this.mem.read64(table + idx * 8) & 0xffffffff000n);
    }
    return this.mem.read64(table + Number((linear >> 12n) & 0x1ffn) * 8);
  }
}

function setup() {
  const mem = new PhysicalMemory({ ramSize: RAM });
  const cpu = new Cpu(mem);
  const tables = new Tables(mem);
  cpu.cr3 = tables.cr3;
  cpu.cr0 |= 2 ** 31 + (1 << 16); // PG, WP
  const current = new CpuCurrent(cpu);
  const gmm = new GuestMemory(mem, { ramSize: RAM, vmmBase: VMM_BASE, vmmSize: VMM_SIZE });
  const log = new LogBuffer();
  const reg = new VmmcallRegistry();
  const ctx = { current, gmm, log };
  const call = (rax: bigint, rbx = 0n) => {
    cpu.setReg64(GENERAL_REG.RAX, rax);
    cpu.setReg64(GENERAL_REG.RBX, rbx);
    reg.dispatch(ctx);
    return cpu.getReg64(GENERAL_REG.RAX);
  };
  const putString = (linear: bigint, phys: number, s: string) => {
    tables.map(linear & ~0xfffn, phys & ~0xfff);
    mem.writeBytes(phys, Uint8Array.from([...s].map((c) => c.charCodeAt(0))));
  };
  return { mem, cpu, tables, gmm, log, reg, call, putString };
}

describe("VmmcallRegistry (BitVisor core/vmmcall.c)", () => {
  let m: ReturnType<typeof setup>;
  beforeEach(() => {
    m = setup();
  });

  it("registers get_vmmcall_number first and numbers the rest in order", () => {
    expect(m.reg.register("drvhook", drvhook)).toBe(1);
    expect(m.reg.register("other", () => {})).toBe(2);
    expect(m.reg.names()).toEqual(["get_vmmcall_number", "drvhook", "other"]);
  });

  it("looks a name up through the guest's page tables with call number 0", () => {
    m.reg.register("a", () => {});
    m.reg.register("drvhook", drvhook);
    m.putString(0xffff880000123ff8n, 0x223ff8, "drvhook\0"); // the name is on one page
    expect(m.call(0n, 0xffff880000123ff8n)).toBe(2n);
    // The lookup set the accessed bit on the leaf, as BitVisor's get_pte does.
    expect(m.tables.entry(0xffff880000123000n) & 0x20n).toBe(0x20n);
  });

  it("reads a name that crosses a page boundary into a physically distant page", () => {
    m.reg.register("drvhook", drvhook);
    m.tables.map(0x400000n, 0x300000);
    m.tables.map(0x401000n, 0x500000);
    m.mem.writeBytes(0x300ffc, Uint8Array.from([0x64, 0x72, 0x76, 0x68])); // "drvh"
    m.mem.writeBytes(0x500000, Uint8Array.from([0x6f, 0x6f, 0x6b, 0])); // "ook\0"
    expect(m.call(0n, 0x400ffcn)).toBe(1n);
  });

  it("returns 0 for an unknown name, an unmapped pointer, a missing NUL and a name running into an unmapped page", () => {
    m.reg.register("drvhook", drvhook);
    m.putString(0x600000n, 0x600000, "nosuch\0");
    expect(m.call(0n, 0x600000n)).toBe(0n);
    expect(m.call(0n, 0x7770000n)).toBe(0n);
    m.putString(0x610000n, 0x610000, "x".repeat(300));
    expect(m.call(0n, 0x610000n)).toBe(0n);
    m.putString(0x620ffcn, 0x620ffc, "drvh"); // next page unmapped
    expect(m.call(0n, 0x620ffcn)).toBe(0n);
    // 255 characters + NUL is the longest name that can be looked up.
    const long = "n".repeat(255);
    m.reg.register(long, () => {});
    m.putString(0x630000n, 0x630000, `${long}\0`);
    expect(m.call(0n, 0x630000n)).toBe(2n);
    expect(m.call(0n, 0x8000000000000000n)).toBe(0n); // non-canonical
  });

  it("returns 0 with no side effect for an empty or out-of-range number", () => {
    m.reg.register("drvhook", drvhook);
    m.cpu.setReg64(GENERAL_REG.RCX, 0x1234n);
    expect(m.call(2n)).toBe(0n);
    expect(m.call(127n)).toBe(0n);
    expect(m.call(0xffffffffffffffffn)).toBe(0n);
    expect(m.cpu.getReg64(GENERAL_REG.RCX)).toBe(0x1234n);
    expect(m.log.read()).toEqual([]);
  });

  it("runs drvhook: logs the address from RBX and returns 0", () => {
    const n = m.reg.register("drvhook", drvhook);
    expect(m.call(BigInt(n), 0xffffffffc0959000n)).toBe(0n);
    expect(m.log.read().map((l) => l.text)).toEqual(["k2e: driver has loaded at 0xffffffffc0959000"]);
  });

  it("contains a throwing handler and keeps serving the next call", () => {
    m.reg.register("boom", () => {
      throw new Error("kaboom");
    });
    const n = m.reg.register("drvhook", drvhook);
    expect(m.call(1n)).toBe(VMMCALL_HANDLER_FAILED);
    expect(m.log.read()[0]?.text).toBe("vmmcall: handler boom failed: kaboom");
    expect(m.call(BigInt(n), 0x10n)).toBe(0n);
    expect(m.log.read()[1]?.text).toBe("k2e: driver has loaded at 0x10");
  });

  it("refuses registrations past its capacity, duplicates and bad names with typed errors", () => {
    const small = new VmmcallRegistry(3);
    small.register("a", () => {});
    small.register("b", () => {});
    const full = (() => {
      try {
        small.register("c", () => {});
      } catch (e) {
        return e;
      }
    })();
    expect(full).toBeInstanceOf(BitvisorCoreError);
    expect((full as BitvisorCoreError).code).toBe("REGISTRY_FULL");
    expect(() => small.register("a", () => {})).toThrow(/DUPLICATE_NAME/);
    expect(() => m.reg.register("", () => {})).toThrow(/INVALID_ARGUMENT/);
    expect(() => m.reg.register("x".repeat(256), () => {})).toThrow(/INVALID_ARGUMENT/);
  });
});

describe("GuestMemory (read_linearaddr / write_linearaddr / mapmem_gphys)", () => {
  it("reads and writes through the guest's tables, sets A/D bits, and reports errors without faults", () => {
    const m = setup();
    m.tables.map(0x1000000n, 0x200000, 0x7);
    m.tables.map(0x1001000n, 0x201000, 0x5); // read-only
    const paging = new CpuCurrent(m.cpu).paging();
    expect(m.gmm.writeLinear(paging, 0x1000010n, 8, 0x1122334455667788n)).toBe(VMMERR.SUCCESS);
    expect(m.mem.read64(0x200010)).toBe(0x1122334455667788n);
    expect(m.tables.entry(0x1000000n) & 0x60n).toBe(0x60n);
    expect(m.gmm.readLinear(paging, 0x1000014n, 4)).toEqual({ err: VMMERR.SUCCESS, value: 0x11223344n });
    expect(m.gmm.writeLinear(paging, 0x1001000n, 1, 1n)).toBe(VMMERR.PAGE_NOT_ACCESSIBLE);
    expect(m.gmm.readLinear(paging, 0x1002000n, 1).err).toBe(VMMERR.PAGE_NOT_PRESENT);
    // A write across into a read-only page writes nothing at all.
    expect(m.gmm.writeLinear(paging, 0x1000ffcn, 8, 0xffffffffffffffffn)).toBe(VMMERR.PAGE_NOT_ACCESSIBLE);
    expect(m.mem.read(0x200ffc, 4)).toBe(0);
    // Reserved bit in a leaf.
    m.tables.map(0x1003000n, 0x203000, 0x7);
    const leafAddr = (() => {
      let table = m.tables.cr3;
      for (let level = 4; level > 1; level--) {
        const idx = Number((0x1003000n >> BigInt(12 + 9 * (level - 1))) & 0x1ffn);
        table = Number(m.mem.read64(table + idx * 8) & 0xffffffff000n);
      }
      return table + 3 * 8;
    })();
    m.mem.write64(leafAddr, m.mem.read64(leafAddr) | (1n << 51n));
    expect(m.gmm.readLinear(paging, 0x1003000n, 1).err).toBe(VMMERR.PAGE_BAD_RESERVED_BIT);
  });

  it("copies page-wise across physically scattered pages and stops at a missing page", () => {
    const m = setup();
    m.tables.map(0x2000000n, 0x340000);
    m.tables.map(0x2001000n, 0x120000);
    m.mem.writeBytes(0x340ffe, Uint8Array.from([1, 2]));
    m.mem.writeBytes(0x120000, Uint8Array.from([3, 4]));
    const paging = new CpuCurrent(m.cpu).paging();
    const r = m.gmm.copyFromLinear(paging, 0x2000ffen, 4);
    expect(r.err).toBe(VMMERR.SUCCESS);
    expect([...r.bytes]).toEqual([1, 2, 3, 4]);
    const partial = m.gmm.copyFromLinear(paging, 0x2001ffen, 4);
    expect(partial.err).toBe(VMMERR.PAGE_NOT_PRESENT);
    expect(partial.copied).toBe(2);
  });

  it("mapmem_gphys maps guest RAM but never the VMM region or beyond RAM", () => {
    const m = setup();
    const map = m.gmm.mapmemGphys(0x5000n, 3n);
    expect(map).not.toBeNull();
    map?.write(0, Uint8Array.from([0x61, 0x62, 0x63]));
    expect([...m.mem.readBytes(0x5000, 3)]).toEqual([0x61, 0x62, 0x63]);
    expect(m.gmm.mapmemGphys(BigInt(VMM_BASE), 16n)).toBeNull();
    expect(m.gmm.mapmemGphys(BigInt(VMM_BASE - 8), 16n)).toBeNull();
    expect(m.gmm.mapmemGphys(BigInt(RAM), 1n)).toBeNull();
    expect(m.gmm.mapmemGphys(0x1000n, 0n)).toBeNull();
    expect(m.gmm.mapmemGphys(0x1000n, 1n << 40n)).toBeNull();
    expect(() => map?.read(2, 2)).toThrow(BitvisorCoreError);
  });
});

describe("GuestMemory walks 2- and 3-level tables too (BitVisor's cpu_mmu.c)", () => {
  it("32-bit paging: 4 KiB through a page table, 4 MiB with CR4.PSE, A/D set, R/W honoured", () => {
    const mem = new PhysicalMemory({ ramSize: RAM });
    const gmm = new GuestMemory(mem, { ramSize: RAM, vmmBase: VMM_BASE, vmmSize: VMM_SIZE });
    const pd = 0x10000;
    const pt = 0x11000;
    mem.write(pd + (0x400000 >>> 22) * 4, 4, pt | 0x7); // PDE → page table
    mem.write(pt + ((0x401000 >>> 12) & 0x3ff) * 4, 4, 0x300000 | 0x5); // read-only page
    mem.write(pd + (0x800000 >>> 22) * 4, 4, 0xc00000 | 0x87); // 4 MiB page
    const paging = { cr0: 0x80010001, cr3: pd, cr4: 0x10, efer: 0 }; // PG|WP|PE, PSE
    expect(gmm.translate(paging, 0x401234n)).toEqual({ err: VMMERR.SUCCESS, gpa: 0x300234 });
    expect(mem.read(pt + 4, 4) & 0x20).toBe(0x20);
    expect(gmm.translate(paging, 0x401234n, { write: true }).err).toBe(VMMERR.PAGE_NOT_ACCESSIBLE);
    expect(gmm.translate(paging, 0x923456n, { write: true })).toEqual({ err: VMMERR.SUCCESS, gpa: 0xd23456 });
    expect(mem.read(pd + 2 * 4, 4) & 0x60).toBe(0x60);
    expect(gmm.translate(paging, 0x1000n).err).toBe(VMMERR.PAGE_NOT_PRESENT);
    // The linear address is 32 bits wide: the high half is dropped, as in BitVisor's u32 linear.
    expect(gmm.translate(paging, 0x1_0040_1234n)).toEqual({ err: VMMERR.SUCCESS, gpa: 0x300234 });
  });

  it("PAE paging: PDPTEs from CR3[31:5], 2 MiB and 4 KiB pages, XD with EFER.NXE, reserved PDPTE bits", () => {
    const mem = new PhysicalMemory({ ramSize: RAM });
    const gmm = new GuestMemory(mem, { ramSize: RAM, vmmBase: VMM_BASE, vmmSize: VMM_SIZE });
    const pdpt = 0x20020; // 32-byte aligned
    const pd = 0x21000;
    const pt = 0x22000;
    mem.write64(pdpt + 1 * 8, BigInt(pd) | 1n); // 1 GiB..2 GiB
    mem.write64(pd + 0 * 8, BigInt(pt) | 0x7n);
    mem.write64(pt + 5 * 8, 0x345000n | 0x7n | (1n << 63n)); // XD
    mem.write64(pd + 1 * 8, 0x600000n | 0x87n); // 2 MiB page
    const paging = { cr0: 0x80000001, cr3: pdpt, cr4: 0x20, efer: 0x800 }; // PAE, NXE
    expect(gmm.translate(paging, 0x40005abcn)).toEqual({ err: VMMERR.SUCCESS, gpa: 0x345abc });
    expect(gmm.translate(paging, 0x40005abcn, { exec: true }).err).toBe(VMMERR.PAGE_NOT_EXECUTABLE);
    expect(gmm.translate(paging, 0x40212345n)).toEqual({ err: VMMERR.SUCCESS, gpa: 0x612345 });
    mem.write64(pdpt, 0x30000n | 0x3n); // R/W is reserved in a PAE PDPTE
    expect(gmm.translate(paging, 0x1000n).err).toBe(VMMERR.PAGE_BAD_RESERVED_BIT);
  });
});
