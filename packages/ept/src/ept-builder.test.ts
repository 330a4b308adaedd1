import { EXIT_REASON, VMCS_FIELD as F } from "@visorlab/vmx";
import { PhysicalMemory, REG } from "@visorlab/x86-core";
import { describe, expect, it } from "vitest";
import {
  EPT,
  EPT_MEMORY_TYPE,
  EPT_PAGE,
  EPT_WALK_STATUS,
  EptBuilder,
  EptError,
  type EptWalk,
  eptCapabilities,
  eptPool,
  isValidEptp,
  leafBits,
  makeEptp,
  newEptWalk,
  walkEpt,
} from "./index";
import { eptMachine } from "./test-machine";

function builder(caps: ConstructorParameters<typeof EptBuilder>[1]["caps"] = {}) {
  const mem = new PhysicalMemory({ ramSize: 64 << 20 });
  const pool = eptPool(0x100_0000, 0x110_0000);
  return { mem, pool, b: new EptBuilder(mem, { allocate: pool.allocate, caps }) };
}

describe("EptBuilder: 4 KiB, 2 MiB and 1 GiB mappings, splits, permissions", () => {
  it("maps a 4 KiB page through four levels with one leaf-bits function", () => {
    const { b, pool } = builder();
    b.map(0x1234_5000, 0x0067_8000, EPT_PAGE.SIZE_4K, "r-x");
    expect(pool.used()).toBe(4); // PML4, PDPT, PD, PT
    const w = b.walk(0x1234_5abc);
    expect(w.status).toBe(EPT_WALK_STATUS.OK);
    expect(w.hpa).toBe(0x0067_8abc);
    expect(w.pageSize).toBe(4096);
    expect(w.level).toBe(1);
    expect(w.permissions).toBe(1 | 4 | 8); // r-x, user execute follows x
    expect(w.memoryType).toBe(EPT_MEMORY_TYPE.WB);
    expect(w.entryLo[3]! & 0xfff).toBe(leafBits("r-x"));
    expect(leafBits("r-x")).toBe(EPT.READ | EPT.EXECUTE | EPT.USER_EXECUTE | (6 << 3));
    expect(leafBits({ read: true, memoryType: EPT_MEMORY_TYPE.UC, ignorePat: true })).toBe(1 | 0x40);
  });

  it("maps 2 MiB and 1 GiB pages and splits them into 512 pages with the same rights", () => {
    const { b } = builder();
    b.map(0x4000_0000, 0x0, EPT_PAGE.SIZE_1G, "rw-");
    b.map(0x20_0000, 0x60_0000, EPT_PAGE.SIZE_2M, { read: true, execute: true, memoryType: EPT_MEMORY_TYPE.WT });
    const g = b.walk(0x4123_4567);
    expect([g.status, g.hpa, g.pageSize, g.level, g.permissions]).toEqual([0, 0x0123_4567, EPT_PAGE.SIZE_1G, 3, 3]);
    const m = b.walk(0x3f_fff0);
    expect([m.hpa, m.pageSize, m.level, m.memoryType]).toEqual([0x7f_fff0, EPT_PAGE.SIZE_2M, 2, EPT_MEMORY_TYPE.WT]);
    const probes = [0x20_0000, 0x20_1004, 0x2f_f008, 0x3f_ffff];
    const before = probes.map((a) => [b.walk(a).hpa, b.walk(a).permissions, b.walk(a).memoryType]);
    b.split(0x20_0000);
    const after = probes.map((a) => b.walk(a));
    expect(after.map((w) => [w.hpa, w.permissions, w.memoryType])).toEqual(before);
    expect(after.every((w) => w.pageSize === 4096 && w.level === 1)).toBe(true);
    // 1 GiB → 512 × 2 MiB → one of them → 512 × 4 KiB.
    b.split(0x4000_0000);
    expect(b.walk(0x4123_4567).pageSize).toBe(EPT_PAGE.SIZE_2M);
    b.split(0x4120_0000);
    expect(b.walk(0x4123_4567)).toMatchObject({ hpa: 0x0123_4567, pageSize: 4096, permissions: 3 });
    expect(b.walk(0x4140_0000)).toMatchObject({ hpa: 0x0140_0000, pageSize: EPT_PAGE.SIZE_2M });
    // Only the split page changes when one 4 KiB page loses a right.
    b.protect(0x2f_f000, "r--");
    expect(b.walk(0x2f_f000).permissions).toBe(1);
    expect(b.walk(0x2f_e000).permissions).toBe(1 | 4 | 8);
  });

  it("keeps A/D flags, memory type and frame through protect, and unmaps", () => {
    const { b, mem } = builder();
    b.map(0x5000, 0x9000, EPT_PAGE.SIZE_4K, "rwx");
    const leaf = b.leafOf(0x5000)!;
    mem.write(leaf.address, 4, mem.read(leaf.address, 4) | EPT.ACCESSED | EPT.DIRTY);
    b.protect(0x5000, "--x");
    expect(mem.read(leaf.address, 4)).toBe(
      0x9000 | EPT.EXECUTE | EPT.USER_EXECUTE | (6 << 3) | EPT.ACCESSED | EPT.DIRTY,
    );
    b.protect(0x5000, "---");
    expect(b.walk(0x5000).status).toBe(EPT_WALK_STATUS.NOT_PRESENT);
    b.protect(0x5000, "rw-"); // a "---" leaf keeps its frame
    expect(b.walk(0x5000).hpa).toBe(0x9000);
    b.unmap(0x5000);
    expect(b.leafOf(0x5000)).toBeNull();
    expect(() => b.protect(0x5000, "rwx")).toThrow(EptError);
  });

  it("respects the capabilities and reports misuse with typed errors", () => {
    const { b } = builder({ pages2M: false });
    expect(() => b.map(0x20_0000, 0x20_0000, EPT_PAGE.SIZE_2M, "rwx")).toThrow(/UNSUPPORTED/);
    expect(() => b.map(0x1001, 0, EPT_PAGE.SIZE_4K, "rwx")).toThrow(/INVALID_ARGUMENT/);
    expect(() => b.map(0, 0, EPT_PAGE.SIZE_4K, "rwz")).toThrow(EptError);
    b.mapRange(0, 0, 0x40_0000, "rwx", EPT_PAGE.SIZE_2M); // falls back to 4 KiB pages
    expect(b.walk(0x20_0000).pageSize).toBe(4096);
    expect(() => b.split(0x20_0000)).toThrow(/not mapped by a large page/);
    const small = new EptBuilder(new PhysicalMemory({ ramSize: 1 << 20 }), {
      allocate: eptPool(0x1000, 0x4000).allocate,
    });
    expect(() => small.map(0x4000_0000, 0, EPT_PAGE.SIZE_4K, "rwx")).toThrow(/POOL_EXHAUSTED/);
  });

  it("prints the tables for debugging", () => {
    const { b } = builder();
    b.map(0x20_0000, 0x20_0000, EPT_PAGE.SIZE_2M, "rwx");
    b.map(0x1000, 0x7000, EPT_PAGE.SIZE_4K, "r--");
    expect(b.format()).toBe(
      [
        "PML4E 0x000000000-0x7fffffffff table 0x001001000 rwxu -- @0x001000000 = 0x0000000001001407",
        "  PDPTE 0x000000000-0x03fffffff table 0x001002000 rwxu -- @0x001001000 = 0x0000000001002407",
        "    PDE   0x000000000-0x0001fffff table 0x001003000 rwxu -- @0x001002000 = 0x0000000001003407",
        "      PTE   0x000001000-0x000001fff -> 0x000007000 4K r--- WB -- @0x001003008 = 0x0000000000007031",
        "    PDE   0x000200000-0x0003fffff -> 0x000200000 2M rwxu WB -- @0x001002008 = 0x00000000002004b7",
      ].join("\n"),
    );
    expect(b.entries()).toHaveLength(5);
  });
});

describe("EPTP format and the pure walk", () => {
  it("validates EPTPs against the capabilities", () => {
    const caps = eptCapabilities(eptMachine().vcpu.profile, 46);
    expect(isValidEptp(makeEptp(0x9000), caps)).toBe(true);
    expect(makeEptp(0x9000)).toBe(0x901e);
    expect(makeEptp(0x9000, { memoryType: 0, accessedDirty: true })).toBe(0x9058);
    expect(isValidEptp(0x9018, caps)).toBe(true); // UC
    expect(isValidEptp(0x901c, caps)).toBe(false); // WT is not allowed for paging structures
    expect(isValidEptp(0x9016, caps)).toBe(false); // walk length 3
    expect(isValidEptp(0x909e, caps)).toBe(false); // bit 7
    expect(isValidEptp(0x911e, caps)).toBe(false); // bit 8
    expect(isValidEptp(2 ** 46 + 0x1e, caps)).toBe(false);
    expect(isValidEptp(0x905e, { ...caps, accessedDirty: false })).toBe(false);
    expect(isValidEptp(0x901e, { ...caps, writeBack: false })).toBe(false);
  });

  it("reports the walk's end: not present, misconfigured", () => {
    const { b, mem } = builder();
    const caps = {
      executeOnly: false,
      pages2M: true,
      pages1G: true,
      accessedDirty: true,
      uncacheable: true,
      writeBack: true,
      walkLength4: true,
      maxPhysAddr: 46,
    };
    expect(walkEpt(mem, b.pml4, 0x1000, caps, false)).toMatchObject({
      status: EPT_WALK_STATUS.NOT_PRESENT,
      level: 4,
      permissions: 0,
    });
    b.map(0x1000, 0x1000, EPT_PAGE.SIZE_4K, "--x");
    expect(walkEpt(mem, b.pml4, 0x1000, caps, false)).toMatchObject({
      status: EPT_WALK_STATUS.MISCONFIGURED,
      level: 1,
    });
    expect(walkEpt(mem, b.pml4, 0x1000, { ...caps, executeOnly: true }, false)).toMatchObject({
      status: 0,
      permissions: 4 | 8,
    });
  });
});

describe("walkEpt into a reused result", () => {
  it("gives what a fresh walk gives, whatever the previous walk left in it", () => {
    const { b, mem } = builder();
    b.map(0x1234_5000, 0x0067_8000, EPT_PAGE.SIZE_4K, "r-x");
    b.map(0x4000_0000, 0x20_0000, EPT_PAGE.SIZE_2M, "rw-");
    b.map(0x8000_0000, 0, EPT_PAGE.SIZE_1G, "rwx");
    b.map(0x1000, 0x1000, EPT_PAGE.SIZE_4K, "--x"); // misconfigured without execute-only
    const caps = {
      executeOnly: false,
      pages2M: true,
      pages1G: true,
      accessedDirty: true,
      uncacheable: true,
      writeBack: true,
      walkLength4: true,
      maxPhysAddr: 46,
    };
    const out = newEptWalk();
    const trimmed = (w: EptWalk) => ({
      ...w,
      entryAddrs: w.entryAddrs.slice(0, w.levels),
      entryLo: w.entryLo.slice(0, w.levels),
      entryHi: w.entryHi.slice(0, w.levels),
    });
    // 4 levels, then 3, 2, a misconfiguration, a not-present PML4E (1 level), and 4 again.
    for (const gpa of [0x1234_5abc, 0x4001_2345, 0x8123_4567, 0x1000, 0x80_0000_0000, 0x1234_5000]) {
      const fresh = walkEpt(mem, b.pml4, gpa, caps, false);
      expect(fresh.entryAddrs.length).toBe(fresh.levels);
      expect(walkEpt(mem, b.pml4, gpa, caps, false, out)).toBe(out);
      expect(trimmed(out)).toEqual(fresh);
    }
  });
});

describe("SEEDS S5: a 4 KiB edit inside a 2 MiB EPT page needs a split and INVEPT", () => {
  it("protecting the 2 MiB leaf removes X from the whole 2 MiB; after a split only the one page loses it", () => {
    // Kernel text in a 2 MiB-aligned region at 0x400000, mapped by a 2 MiB R/W/X EPT page.
    const m = eptMachine({ code: [0xff, 0xd3, 0xeb, 0xfe] }); // call rbx ; jmp $
    const target = 0x40_3000; // "commit_creds"
    m.pt.map(target, target);
    m.pt.map(target + 0x1000, target + 0x1000);
    m.mem.writeBytes(target, Uint8Array.from([0xc3])); // ret
    m.mem.writeBytes(target + 0x1000, Uint8Array.from([0xc3]));
    expect(m.ept.walk(target).pageSize).toBe(EPT_PAGE.SIZE_2M);
    m.ept.split(target);
    m.ept.protect(target, "rw-");
    expect(m.ept.walk(target + 0x1000).permissions & 4).toBe(4);
    m.cpu.setReg64(REG.RBX, BigInt(target + 0x1000));
    m.vcpu.vmlaunch();
    expect(m.vcpu.runGuest(10).reason).toBe("budget"); // the neighbour still executes
    const m2 = eptMachine({ code: [0xff, 0xd3, 0xeb, 0xfe] });
    m2.pt.map(target, target);
    m2.mem.writeBytes(target, Uint8Array.from([0xc3]));
    m2.ept.split(target);
    m2.ept.protect(target, "rw-");
    m2.cpu.setReg64(REG.RBX, BigInt(target));
    m2.vcpu.vmlaunch();
    m2.vcpu.runGuest(10);
    expect(m2.vcpu.lastExit.exitReason).toBe(EXIT_REASON.EPT_VIOLATION);
    expect(m2.vcpu.readField(F.GUEST_PHYSICAL_ADDRESS)).toBe(target);
    expect(m2.vcpu.lastExit.qualification).toBe(0x19c);
  });
});
