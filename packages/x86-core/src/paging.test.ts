import { describe, expect, it } from "vitest";
import { Assembler, byte, cr0, cr3, cr4, eax, ecx, qword, rax, rcx, rdx } from "./asm/index";
import { CR0, CR4, EFER } from "./cpu";
import { hasErrorCode } from "./faults";
import { MSR, writeMsr } from "./msr";
import { newPageWalk, type PageWalk, PF_ERR, walkPageTables } from "./paging";
import {
  handlerStub,
  LONG_MODE_LAYOUT as L,
  type LongModeMachine,
  longModeMachine,
  PT,
  readQwords,
  writeIdtGate,
} from "./testing/index";

// Long-mode paging as the processor sees it (SDM vol. 3A, chapter 4): #PF error
// codes and CR2, accessed/dirty bits, the protection rules (R/W with CR0.WP,
// U/S, NX, SMEP, SMAP), large pages, and the TLB's architectural staleness.
// Code runs on testing/long-mode.ts; a fault halts in its vector's HLT stub.

/** A linear region with its own PML4 entry, so its paging structures start with A = 0. */
const FRESH = 0x5000_0000_0000;
/** Physical frames the tests map. */
const FRAME_A = L.KERNEL_DATA + 0x10000;
const FRAME_B = L.KERNEL_DATA + 0x20000;

type Outcome = { done: true } | { done: false; vector: number; error: number | null; cr2: number; rip: number };

function machine(): LongModeMachine {
  const m = longModeMachine();
  writeIdtGate(m.mem, L.IDT, 0x80, { target: handlerStub(0x80), dpl: 3 }); // "done" from ring 3
  return m;
}

/**
 * Runs `build`'s code at CPL 0 (KERNEL_CODE) or CPL 3 (USER_CODE) to its end,
 * or to the first exception, and reports which.
 */
function exec(m: LongModeMachine, cpl: 0 | 3, build: (a: Assembler) => unknown): Outcome {
  const { cpu, mem } = m;
  const at = cpl === 0 ? L.KERNEL_CODE : L.USER_CODE;
  const a = new Assembler();
  build(a);
  if (cpl === 0) a.hlt();
  else a.int(0x80);
  mem.writeBytes(at, a.assemble(BigInt(at)).bytes);
  cpu.halted = false;
  if (cpl === 3) {
    cpu.sel[1] = 0x23;
    cpu.segAttr[1] = 0xa0fb;
    cpu.sel[2] = 0x1b;
    cpu.segAttr[2] = 0xc0f3;
    cpu.setCpl(3);
    cpu.setRsp(L.USER_STACK_TOP);
  } else {
    cpu.sel[1] = 0x08;
    cpu.segAttr[1] = 0xa09b;
    cpu.setCpl(0);
    cpu.setRsp(L.KERNEL_STACK_TOP);
  }
  cpu.rip = at;
  const r = cpu.run({ maxInstructions: 1000 });
  expect(r.reason).toBe("halt");
  const v = (cpu.rip - 1 - L.HANDLERS) / 16;
  if (cpu.rip < L.HANDLERS || cpu.rip > L.HANDLERS + 0x1000) return { done: true };
  if (v === 0x80) return { done: true };
  const withErr = hasErrorCode(v);
  const frame = readQwords(mem, cpu.getRsp(), 2);
  return {
    done: false,
    vector: v,
    error: withErr ? Number(frame[0]) : null,
    cr2: cpu.cr2,
    rip: Number(frame[withErr ? 1 : 0]),
  };
}

function pf(error: number, cr2: number): { done: false; vector: 14; error: number; cr2: number } {
  return { done: false, vector: 14, error, cr2 };
}

const P = PF_ERR.P;
const W = PF_ERR.W;
const U = PF_ERR.U;
const RSVD = PF_ERR.RSVD;
const ID = PF_ERR.ID;

describe("#PF error codes and CR2", () => {
  it("not present: read, write, user read, user write, fetch (I/D with NXE)", () => {
    const m = machine();
    const hole = FRESH + 0x3000; // nothing mapped there
    m.pt.map(FRESH, FRAME_A);
    const cases: [0 | 3, (a: Assembler) => unknown, number][] = [
      [0, (a) => a.mov(rax, hole + 8).mov(rcx, qword(rax)), 0],
      [0, (a) => a.mov(rax, hole + 8).mov(qword(rax), rcx), W],
      [3, (a) => a.mov(rax, hole + 8).mov(rcx, qword(rax)), U],
      [3, (a) => a.mov(rax, hole + 8).mov(qword(rax), rcx), W | U],
      [0, (a) => a.mov(rax, hole + 8).jmp(rax), ID],
      [3, (a) => a.mov(rax, hole + 8).jmp(rax), U | ID],
    ];
    for (const [cpl, build, error] of cases) expect(exec(m, cpl, build)).toMatchObject(pf(error, hole + 8));
  });

  it("protection: user access to a supervisor page, user write to a read-only page, supervisor write with CR0.WP", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A); // supervisor, writable
    m.pt.map(FRESH + 0x1000, FRAME_B, { user: true, writable: false });
    const sup = FRESH + 0x10;
    const ro = FRESH + 0x1010;
    expect(exec(m, 3, (a) => a.mov(rax, sup).mov(rcx, qword(rax)))).toMatchObject(pf(P | U, sup));
    expect(exec(m, 3, (a) => a.mov(rax, sup).mov(qword(rax), rcx))).toMatchObject(pf(P | W | U, sup));
    expect(exec(m, 3, (a) => a.mov(rax, ro).mov(rcx, qword(rax)))).toEqual({ done: true });
    expect(exec(m, 3, (a) => a.mov(rax, ro).mov(qword(rax), rcx))).toMatchObject(pf(P | W | U, ro));
    expect(exec(m, 0, (a) => a.mov(rax, ro).mov(qword(rax), rcx))).toMatchObject(pf(P | W, ro)); // CR0.WP = 1
  });

  it("the rights of every level combine: U/S = 0 or R/W = 0 in an upper entry restricts the leaf", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { user: true });
    m.pt.map(FRESH + 0x20_0000, FRAME_B, { user: true });
    m.pt.clearBits(FRESH, 2, PT.US); // PDE of the first 2 MiB: supervisor
    m.pt.clearBits(FRESH + 0x20_0000, 2, PT.RW); // PDE of the second: read-only
    expect(exec(m, 3, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toMatchObject(pf(P | U, FRESH));
    expect(exec(m, 3, (a) => a.mov(rax, FRESH + 0x20_0000).mov(rcx, qword(rax)))).toEqual({ done: true });
    expect(exec(m, 3, (a) => a.mov(rax, FRESH + 0x20_0000).mov(qword(rax), rcx))).toMatchObject(
      pf(P | W | U, FRESH + 0x20_0000),
    );
  });

  it("RSVD: a reserved physical-address bit at each level, PS in a PML4E, and reserved bits of large pages", () => {
    const bit46 = 1n << 46n; // MAXPHYADDR = 46: bits 51:46 are reserved
    for (const level of [4, 3, 2, 1] as const) {
      const m = machine();
      m.pt.map(FRESH, FRAME_A);
      m.pt.setBits(FRESH, level, bit46);
      expect(
        exec(m, 0, (a) => a.mov(rax, FRESH + 0x40).mov(rcx, qword(rax))),
        `level ${level}`,
      ).toMatchObject(pf(P | RSVD, FRESH + 0x40));
      expect(
        exec(m, 3, (a) => a.mov(rax, FRESH + 0x40).mov(qword(rax), rcx)),
        `level ${level}`,
      ).toMatchObject(pf(P | RSVD | W | U, FRESH + 0x40));
      expect(
        exec(m, 0, (a) => a.mov(rax, FRESH + 0x40).jmp(rax)),
        `level ${level}`,
      ).toMatchObject(pf(P | RSVD | ID, FRESH + 0x40));
    }
    const m = machine();
    m.pt.map(FRESH, FRAME_A);
    m.pt.setBits(FRESH, 4, PT.PS);
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toMatchObject(pf(P | RSVD, FRESH));
    const big = machine();
    big.pt.map(FRESH, 0x20_0000, { size: 0x20_0000 });
    big.pt.setBits(FRESH, 2, 1n << 13n); // bits 20:13 of a 2 MiB PDE are reserved
    expect(exec(big, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toMatchObject(pf(P | RSVD, FRESH));
    const huge = machine();
    huge.pt.map(FRESH, 0, { size: 0x4000_0000 });
    huge.pt.setBits(FRESH, 3, 1n << 29n); // bits 29:13 of a 1 GiB PDPTE are reserved
    expect(exec(huge, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toMatchObject(pf(P | RSVD, FRESH));
  });

  it("XD: with EFER.NXE a fetch faults P | I/D; without NXE bit 63 is reserved (no I/D bit without NXE or SMEP)", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { noExec: true });
    m.mem.write(FRAME_A, 1, 0xc3);
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toEqual({ done: true }); // data is fine
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).jmp(rax))).toMatchObject({ ...pf(P | ID, FRESH), rip: FRESH });
    m.pt.map(FRESH + 0x1000, FRAME_B, { noExec: true, user: true });
    expect(exec(m, 3, (a) => a.mov(rax, FRESH + 0x1000).jmp(rax))).toMatchObject(pf(P | U | ID, FRESH + 0x1000));
    // Clear EFER.NXE with WRMSR: the walk's meaning changes, and the TLB is flushed.
    expect(
      exec(m, 0, (a) =>
        a.mov(ecx, MSR.IA32_EFER).rdmsr().and(eax, ~EFER.NXE).wrmsr().mov(rax, FRESH).mov(rcx, qword(rax)),
      ),
    ).toMatchObject(pf(P | RSVD, FRESH));
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).jmp(rax))).toMatchObject(pf(P | RSVD, FRESH));
  });

  it("SMEP: a supervisor fetch from a user page faults P | I/D", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { user: true });
    m.mem.write(FRAME_A, 1, 0xf4); // HLT
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).jmp(rax))).toEqual({ done: true });
    expect(m.cpu.rip).toBe(FRESH + 1);
    expect(exec(m, 0, (a) => a.mov(rax, cr4).or(rax, CR4.SMEP).mov(cr4, rax).mov(rax, FRESH).jmp(rax))).toMatchObject(
      pf(P | ID, FRESH),
    );
    expect(exec(m, 3, (a) => a.mov(rax, FRESH).jmp(rax))).toMatchObject({ done: false, vector: 13 }); // user HLT runs: #GP
  });

  it("SMAP: supervisor data access to a user page faults unless RFLAGS.AC (STAC/CLAC)", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { user: true });
    m.mem.write(FRAME_A + 8, 4, 0x1234_5678);
    const smap = (a: Assembler) => a.mov(rax, cr4).or(rax, CR4.SMAP).mov(cr4, rax);
    expect(
      exec(m, 0, (a) =>
        smap(a)
          .mov(rax, FRESH + 8)
          .mov(rcx, qword(rax)),
      ),
    ).toMatchObject(pf(P, FRESH + 8));
    expect(exec(m, 0, (a) => a.mov(rax, FRESH + 8).mov(qword(rax), rcx))).toMatchObject(pf(P | W, FRESH + 8));
    expect(
      exec(m, 0, (a) =>
        a
          .db([0x0f, 0x01, 0xcb])
          .mov(rax, FRESH + 8)
          .mov(rdx, qword(rax)),
      ),
    ).toEqual({
      done: true,
    }); // STAC
    expect(m.cpu.getReg64(2)).toBe(0x1234_5678n);
    expect(
      exec(m, 0, (a) =>
        a
          .db([0x0f, 0x01, 0xca])
          .mov(rax, FRESH + 8)
          .mov(rdx, qword(rax)),
      ),
    ).toMatchObject(pf(P, FRESH + 8)); // CLAC
    expect(exec(m, 3, (a) => a.mov(rax, FRESH + 8).mov(rdx, qword(rax)))).toEqual({ done: true }); // user: no SMAP
  });
});

describe("accessed and dirty bits", () => {
  it("a read sets A at every level; a write also sets D in the leaf only", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A);
    const flags = () => ([4, 3, 2, 1] as const).map((l) => m.pt.readEntry(FRESH, l) & (PT.A | PT.D));
    expect(flags()).toEqual([0n, 0n, 0n, 0n]);
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toEqual({ done: true });
    expect(flags()).toEqual([PT.A, PT.A, PT.A, PT.A]);
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(qword(rax), rcx))).toEqual({ done: true });
    expect(flags()).toEqual([PT.A, PT.A, PT.A, PT.A | PT.D]);
  });

  it("a 2 MiB leaf gets A and D in the PDE; a 1 GiB leaf in the PDPTE", () => {
    const m = machine();
    m.pt.map(FRESH, 0x20_0000, { size: 0x20_0000 });
    m.pt.map(FRESH + 0x4000_0000, 0, { size: 0x4000_0000 });
    exec(m, 0, (a) => a.mov(rax, FRESH + 0x1000).mov(qword(rax), rcx));
    expect([4, 3, 2].map((l) => m.pt.readEntry(FRESH, l as 4 | 3 | 2) & (PT.A | PT.D))).toEqual([
      PT.A,
      PT.A,
      PT.A | PT.D,
    ]);
    exec(m, 0, (a) => a.mov(rax, FRESH + 0x4000_0000 + L.KERNEL_DATA).mov(rcx, qword(rax)));
    expect(m.pt.readEntry(FRESH + 0x4000_0000, 3) & (PT.A | PT.D)).toBe(PT.A);
  });

  it("a write through a translation cached by a read still walks to set D", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { accessed: true });
    exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)));
    expect(m.pt.readEntry(FRESH, 1) & PT.D).toBe(0n);
    exec(m, 0, (a) => a.mov(rax, FRESH).mov(qword(rax), rcx));
    expect(m.pt.readEntry(FRESH, 1) & PT.D).toBe(PT.D);
  });

  it("a faulting write leaves D clear", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { writable: false });
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(qword(rax), rcx))).toMatchObject(pf(P | W, FRESH));
    expect(m.pt.readEntry(FRESH, 1) & PT.D).toBe(0n);
  });
});

describe("CR0.WP", () => {
  it("with WP = 0 the supervisor writes read-only pages (user and supervisor); MOV CR0 takes effect at once", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { writable: false });
    m.pt.map(FRESH + 0x1000, FRAME_B, { writable: false, user: true });
    const clearWp = (a: Assembler) => a.mov(rax, cr0).and(rax, ~CR0.WP).mov(cr0, rax);
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toEqual({ done: true }); // cache a read
    expect(
      exec(m, 0, (a) =>
        clearWp(a)
          .mov(rdx, 0x77)
          .mov(rax, FRESH)
          .mov(qword(rax), rdx)
          .mov(rax, FRESH + 0x1000)
          .mov(qword(rax), rdx),
      ),
    ).toEqual({ done: true });
    expect(m.mem.read(FRAME_A, 4)).toBe(0x77);
    expect(m.mem.read(FRAME_B, 4)).toBe(0x77);
    expect(exec(m, 3, (a) => a.mov(rax, FRESH + 0x1000).mov(qword(rax), rdx))).toMatchObject(
      pf(P | W | U, FRESH + 0x1000),
    );
    expect(
      exec(m, 0, (a) => a.mov(rax, cr0).or(rax, CR0.WP).mov(cr0, rax).mov(rax, FRESH).mov(qword(rax), rdx)),
    ).toMatchObject(pf(P | W, FRESH));
  });
});

describe("large pages", () => {
  it("2 MiB and 1 GiB pages translate with the PAT bit (bit 12) set, which is not an address bit", () => {
    const m = machine();
    m.pt.map(0x1000_0000, 0x20_0000, { size: 0x20_0000, pat: true });
    m.pt.map(0x4000_0000, 0, { size: 0x4000_0000, pat: true });
    expect(m.pt.readEntry(0x1000_0000, 2) & PT.PAT_LARGE).toBe(PT.PAT_LARGE);
    m.mem.write(0x20_0000 + 0x1_2344, 4, 0xcafe_f00d);
    m.mem.write(L.KERNEL_DATA + 0x40, 4, 0x0bad_beef);
    expect(
      exec(m, 0, (a) =>
        a
          .mov(rax, 0x1000_0000 + 0x1_2344)
          .mov(rcx, qword(rax))
          .mov(rax, 0x4000_0000 + L.KERNEL_DATA + 0x40)
          .mov(rdx, qword(rax)),
      ),
    ).toEqual({ done: true });
    expect(m.cpu.getReg64(1) & 0xffff_ffffn).toBe(0xcafe_f00dn);
    expect(m.cpu.getReg64(2) & 0xffff_ffffn).toBe(0x0bad_beefn);
    expect(m.cpu.peekTranslate(0x4000_0000 + 0x3456_789)).toBe(0x3456_789);
  });
});

describe("TLB", () => {
  it("a stale translation survives a page-table edit until INVLPG", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A);
    m.mem.write(FRAME_A, 4, 0xaaaa);
    m.mem.write(FRAME_B, 4, 0xbbbb);
    const read = (a: Assembler) => a.mov(rax, FRESH).mov(rcx, qword(rax));
    exec(m, 0, read);
    expect(m.cpu.getReg64(1)).toBe(0xaaaan);
    m.pt.map(FRESH, FRAME_B);
    exec(m, 0, read);
    expect(m.cpu.getReg64(1)).toBe(0xaaaan); // stale
    exec(m, 0, (a) => a.mov(rax, FRESH).invlpg(byte(rax)).mov(rcx, qword(rax)));
    expect(m.cpu.getReg64(1)).toBe(0xbbbbn);
    m.pt.unmap(FRESH);
    exec(m, 0, read);
    expect(m.cpu.getReg64(1)).toBe(0xbbbbn); // still cached though not present
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).invlpg(byte(rax)).mov(rcx, qword(rax)))).toMatchObject(pf(0, FRESH));
  });

  it("INVLPG of any address inside a 2 MiB page drops the whole mapping", () => {
    const m = machine();
    m.pt.map(FRESH, 0x20_0000, { size: 0x20_0000 });
    m.mem.write(0x20_0000 + 0x10_0000, 4, 0x1111);
    m.mem.write(0x40_0000 + 0x10_0000, 4, 0x2222);
    exec(m, 0, (a) => a.mov(rax, FRESH + 0x10_0000).mov(rcx, qword(rax)));
    m.pt.map(FRESH, 0x40_0000, { size: 0x20_0000 });
    exec(m, 0, (a) => a.mov(rax, FRESH + 0x10_0000).mov(rcx, qword(rax)));
    expect(m.cpu.getReg64(1)).toBe(0x1111n);
    exec(m, 0, (a) =>
      a
        .mov(rax, FRESH + 0x1000)
        .invlpg(byte(rax))
        .mov(rax, FRESH + 0x10_0000)
        .mov(rcx, qword(rax)),
    );
    expect(m.cpu.getReg64(1)).toBe(0x2222n);
  });

  it("MOV to CR3 drops non-global translations; global ones survive it but not INVLPG or a CR4.PGE toggle", () => {
    const m = machine();
    const G = FRESH;
    const N = FRESH + 0x1000;
    m.pt.map(G, FRAME_A, { global: true });
    m.pt.map(N, FRAME_A);
    m.mem.write(FRAME_A, 4, 0xaaaa);
    m.mem.write(FRAME_B, 4, 0xbbbb);
    const readBoth = (a: Assembler) => a.mov(rax, G).mov(rcx, qword(rax)).mov(rax, N).mov(rdx, qword(rax));
    const reloadCr3 = (a: Assembler) => a.mov(rax, cr3).mov(cr3, rax);
    const regs = () => [m.cpu.getReg64(1), m.cpu.getReg64(2)];
    exec(m, 0, (a) => readBoth(a.mov(rax, cr4).or(rax, CR4.PGE).mov(cr4, rax)));
    m.pt.map(G, FRAME_B, { global: true });
    m.pt.map(N, FRAME_B);
    exec(m, 0, (a) => readBoth(reloadCr3(a)));
    expect(regs()).toEqual([0xaaaan, 0xbbbbn]);
    exec(m, 0, (a) => readBoth(a.mov(rax, G).invlpg(byte(rax))));
    expect(regs()).toEqual([0xbbbbn, 0xbbbbn]);
    m.pt.map(G, FRAME_A, { global: true });
    exec(m, 0, (a) => readBoth(reloadCr3(a)));
    expect(regs()).toEqual([0xbbbbn, 0xbbbbn]); // global stays stale across CR3
    exec(m, 0, (a) => readBoth(a.mov(rax, cr4).and(rax, ~CR4.PGE).mov(cr4, rax).or(rax, CR4.PGE).mov(cr4, rax)));
    expect(regs()).toEqual([0xaaaan, 0xbbbbn]);
  });

  it("without CR4.PGE the G bit is ignored: a CR3 load drops the entry", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { global: true });
    m.mem.write(FRAME_B, 4, 0xbbbb);
    exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)));
    m.pt.map(FRESH, FRAME_B, { global: true });
    exec(m, 0, (a) => a.mov(rax, cr3).mov(cr3, rax).mov(rax, FRESH).mov(rcx, qword(rax)));
    expect(m.cpu.getReg64(1)).toBe(0xbbbbn);
  });

  it("host-side MSR writes follow the same rules (EFER.NXE change flushes)", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { noExec: true });
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toEqual({ done: true });
    expect(writeMsr(m.cpu, MSR.IA32_EFER, BigInt(m.cpu.efer & ~EFER.NXE))).toBe(true);
    expect(exec(m, 0, (a) => a.mov(rax, FRESH).mov(rcx, qword(rax)))).toMatchObject(pf(P | RSVD, FRESH));
  });
});

describe("walkPageTables into a reused result", () => {
  it("gives what a fresh walk gives, whatever the previous walk left in it", () => {
    const m = machine();
    m.pt.map(FRESH, FRAME_A, { user: true, noExec: true });
    m.pt.map(FRESH + 0x20_0000, 0x20_0000, { size: 0x20_0000, global: true, dirty: true });
    m.pt.map(FRESH + 0x4000_0000, 0, { size: 0x4000_0000, writable: false });
    m.pt.map(FRESH + 0x8000_0000, FRAME_B);
    m.pt.setBits(FRESH + 0x8000_0000, 1, 1n << 50n); // reserved above MAXPHYADDR 46
    const read32 = (a: number) => m.mem.read(a, 4);
    const mode = { nxe: true, pge: true, maxPhysAddr: 46 };
    const out = newPageWalk();
    const trimmed = (w: PageWalk) => ({
      ...w,
      entryAddrs: w.entryAddrs.slice(0, w.levels),
      entryLo: w.entryLo.slice(0, w.levels),
    });
    // 4 levels, then 3, 2, a reserved-bit fault, a not-present one (1 level), and 4 again.
    const lins = [FRESH + 0x123, FRESH + 0x20_1234, FRESH + 0x4000_5678, FRESH + 0x8000_0000, 0x7000_0000_0000, FRESH];
    for (const lin of lins) {
      const fresh = walkPageTables(read32, m.pt.cr3, lin, mode);
      expect(fresh.entryAddrs.length).toBe(fresh.levels);
      expect(walkPageTables(read32, m.pt.cr3, lin, mode, out)).toBe(out);
      expect(trimmed(out)).toEqual(fresh);
    }
  });
});
