import { describe, expect, it } from "vitest";
import { Assembler, ax, fs, gs, qword, rax, rbx } from "../asm/index";
import type { Cpu } from "../cpu";
import type { PhysicalMemory } from "../phys-memory";
import {
  LONG_MODE_LAYOUT as L,
  longModeMachine,
  SELECTORS,
  segmentDescriptor,
  systemDescriptor,
  TSS_SIZE,
} from "../testing/index";

// LGDT/LIDT/SGDT/SIDT, LLDT/SLDT/LTR/STR, VERR/VERW and PUSH/POP FS/GS in
// 64-bit mode (SDM vol. 2; vol. 3A 3.5, 7.2.3), on the paged machine of
// testing/long-mode.ts. An exception ends the run through events.exception.

const DATA = L.KERNEL_DATA;
/** A second, larger GDT some tests switch to. */
const GDT2 = L.KERNEL_DATA + 0x1000;

interface Outcome {
  fault: { vector: number; error: number | null; rip: number } | null;
}

function exec(cpu: Cpu, mem: PhysicalMemory, build: (a: Assembler) => unknown, cpl: 0 | 3 = 0): Outcome {
  const at = cpl === 0 ? L.KERNEL_CODE : L.USER_CODE;
  const a = new Assembler();
  build(a);
  a.label("end").ud2();
  const out = a.assemble(BigInt(at));
  mem.writeBytes(at, out.bytes);
  cpu.rip = at;
  cpu.setCpl(cpl);
  if (cpl === 3) cpu.setRsp(L.USER_STACK_TOP);
  cpu.halted = false;
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
  const r = cpu.run({ maxInstructions: 1000 });
  if (r.reason !== "exit") throw new Error(`unexpected stop ${JSON.stringify(r)}`);
  const p = r.payload as { vector: number; error: number | null };
  if (p.vector === 6 && cpu.rip === Number(out.labels.get("end"))) return { fault: null };
  return { fault: { vector: p.vector, error: p.error, rip: cpu.rip } };
}

const OK = { fault: null };
const fault = (vector: number, error: number | null) => ({ fault: { vector, error } });

function writeDwords(mem: PhysicalMemory, addr: number, d: readonly number[]): void {
  d.forEach((v, k) => {
    mem.write(addr + 4 * k, 4, v >>> 0);
  });
}

describe("LGDT, LIDT, SGDT, SIDT", () => {
  it("load and store a 2-byte limit and an 8-byte base", () => {
    const { cpu, mem } = longModeMachine();
    mem.write(DATA, 2, 0x0fff);
    mem.write64(DATA + 2, 0xffff_8000_0000_2000n);
    mem.write(DATA + 0x10, 2, 0x0037);
    mem.write64(DATA + 0x12, 0x1000n);
    expect(
      exec(cpu, mem, (a) =>
        a
          .mov(rax, DATA)
          .lidt(qword(rax))
          .mov(rbx, DATA + 0x10)
          .lgdt(qword(rbx))
          .sidt(qword(rax, 0x20))
          .sgdt(qword(rax, 0x30)),
      ),
    ).toEqual(OK);
    expect([cpu.idtrBase, cpu.idtrLimit, cpu.gdtrBase, cpu.gdtrLimit]).toEqual([
      -0x7fff_ffff_e000, 0xfff, 0x1000, 0x37,
    ]);
    expect(mem.read(DATA + 0x20, 2)).toBe(0xfff);
    expect(mem.read64(DATA + 0x22)).toBe(0xffff_8000_0000_2000n);
    expect(mem.read(DATA + 0x30, 2)).toBe(0x37);
    expect(mem.read64(DATA + 0x32)).toBe(0x1000n);
  });

  it("LGDT/LIDT are #GP(0) at CPL 3 or with a non-canonical base; SGDT/SIDT work at CPL 3", () => {
    const { cpu, mem } = longModeMachine();
    mem.write(DATA, 2, 0xffff);
    mem.write64(DATA + 2, 0x0000_8000_0000_0000n);
    expect(exec(cpu, mem, (a) => a.mov(rax, DATA).lgdt(qword(rax)))).toMatchObject(fault(13, 0));
    expect(exec(cpu, mem, (a) => a.mov(rax, DATA).lidt(qword(rax)))).toMatchObject(fault(13, 0));
    expect([cpu.gdtrBase, cpu.idtrBase]).toEqual([L.GDT, L.IDT]);
    mem.write64(DATA + 2, 0x1000n);
    expect(exec(cpu, mem, (a) => a.mov(rax, DATA).lgdt(qword(rax)), 3)).toMatchObject(fault(13, 0));
    expect(exec(cpu, mem, (a) => a.mov(rax, L.USER_DATA).sidt(qword(rax)), 3)).toEqual(OK);
    expect(mem.read64(L.USER_DATA + 2)).toBe(BigInt(L.IDT));
  });
});

describe("LTR and STR", () => {
  it("LTR loads TR from the 16-byte descriptor (64-bit base) and marks it busy; a second LTR is #GP(selector)", () => {
    const { cpu, mem } = longModeMachine();
    writeDwords(mem, L.GDT + 0x28, systemDescriptor(0x9, -0x7fff_ffff_d000, 0x2067));
    cpu.trSel = 0;
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x28).ltr(ax))).toEqual(OK);
    expect([cpu.trSel, cpu.trBase, cpu.trLimit, cpu.trAttr]).toEqual([0x28, -0x7fff_ffff_d000, 0x2067, 0x8b]);
    expect(mem.read(L.GDT + 0x28 + 5, 1)).toBe(0x8b);
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x28).ltr(ax))).toMatchObject(fault(13, 0x28));
  });

  it("LTR refuses null, LDT-relative, non-TSS, not-present and non-canonical descriptors, and CPL 3", () => {
    const { cpu, mem } = longModeMachine();
    const avail = systemDescriptor(0x9, L.TSS, TSS_SIZE - 1);
    const cases: [string, number, number[] | null, { vector: number; error: number }][] = [
      ["null", 0x3, null, { vector: 13, error: 0 }],
      ["TI = 1", 0x2c, null, { vector: 13, error: 0x2c }],
      ["beyond the limit", 0x30, null, { vector: 13, error: 0x30 }], // a 16-byte descriptor at 0x30 ends past GDT_SIZE
      ["a data segment", 0x10, null, { vector: 13, error: 0x10 }],
      ["not present", 0x28, [avail[0]!, avail[1]! & ~0x8000, avail[2]!, 0], { vector: 11, error: 0x28 }],
      ["non-canonical base", 0x28, [avail[0]!, avail[1]!, 0x0000_8000, 0], { vector: 13, error: 0x28 }],
      ["upper type not zero", 0x28, [avail[0]!, avail[1]!, 0, 0x100], { vector: 13, error: 0x28 }],
    ];
    for (const [name, sel, desc, f] of cases) {
      writeDwords(mem, L.GDT + 0x28, desc ?? avail);
      expect(
        exec(cpu, mem, (a) => a.mov(ax, sel).ltr(ax)),
        name,
      ).toMatchObject({ fault: f });
    }
    writeDwords(mem, L.GDT + 0x28, avail);
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x28).ltr(ax), 3)).toMatchObject(fault(13, 0));
  });

  it("STR stores the selector to r16, zero-extended to r32/r64, or to m16", () => {
    const { cpu, mem } = longModeMachine();
    cpu.setReg64(0, 0xffff_ffff_ffff_ffffn);
    cpu.setReg64(1, 0xffff_ffff_ffff_ffffn);
    cpu.setReg64(2, 0xffff_ffff_ffff_ffffn);
    mem.write(L.USER_DATA, 4, 0xaaaa_aaaa);
    expect(
      exec(
        cpu,
        mem,
        (a) =>
          a
            .db([0x66, 0x0f, 0x00, 0xc8, 0x0f, 0x00, 0xc9, 0x48, 0x0f, 0x00, 0xca])
            .mov(rbx, L.USER_DATA)
            .db([0x0f, 0x00, 0x0b]),
        3,
      ),
    ).toEqual(OK); // str ax; str ecx; str rdx; str [rbx]
    expect([cpu.getReg64(0), cpu.getReg64(1), cpu.getReg64(2)]).toEqual([0xffff_ffff_ffff_0028n, 0x28n, 0x28n]);
    expect(mem.read(L.USER_DATA, 4)).toBe(0xaaaa_0028);
  });
});

describe("LLDT and SLDT", () => {
  /** Switches to a GDT with an LDT descriptor at 0x38 (type 2) and a TSS-typed one at 0x48. */
  function withLdt(cpu: Cpu, mem: PhysicalMemory): number {
    for (let k = 0; k < 0x38; k += 4) mem.write(GDT2 + k, 4, mem.read(L.GDT + k, 4));
    const ldt = DATA + 0x2000;
    writeDwords(mem, GDT2 + 0x38, systemDescriptor(0x2, ldt, 0x17));
    writeDwords(mem, GDT2 + 0x48, systemDescriptor(0x9, L.TSS, TSS_SIZE - 1));
    writeDwords(mem, ldt, [0, 0]);
    writeDwords(mem, ldt + 8, segmentDescriptor({ code: false, dpl: 3 }));
    writeDwords(mem, ldt + 16, [0x0000ffff, 0x00cff300 | 0x0a]); // user data with base bits 23:16 = 0x0a
    cpu.gdtrBase = GDT2;
    cpu.gdtrLimit = 0x57;
    return ldt;
  }

  it("LLDT loads LDTR; segment loads with TI = 1 then read the LDT; SLDT stores the selector", () => {
    const { cpu, mem } = longModeMachine();
    const ldt = withLdt(cpu, mem);
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x38).db([0x0f, 0x00, 0xd0]).mov(ax, 0x17).db([0x8e, 0xe0]))).toEqual(OK); // lldt ax; mov fs, ax
    expect([cpu.ldtrSel, cpu.ldtrBase, cpu.ldtrLimit]).toEqual([0x38, ldt, 0x17]);
    expect([cpu.sel[4], cpu.segBase[4]]).toEqual([0x17, 0x0a_0000]);
    cpu.setReg64(2, 0xffff_ffff_ffff_ffffn);
    expect(exec(cpu, mem, (a) => a.db([0x48, 0x0f, 0x00, 0xc2]))).toEqual(OK); // sldt rdx
    expect(cpu.getReg64(2)).toBe(0x38n);
  });

  it("LLDT with a null selector leaves LDTR unusable; a TSS descriptor is #GP(selector); CPL 3 is #GP(0)", () => {
    const { cpu, mem } = longModeMachine();
    withLdt(cpu, mem);
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x38).db([0x0f, 0x00, 0xd0]).mov(ax, 0).db([0x0f, 0x00, 0xd0]))).toEqual(OK);
    expect([cpu.ldtrSel, cpu.ldtrBase, cpu.ldtrLimit]).toEqual([0, 0, 0]);
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x48).db([0x0f, 0x00, 0xd0]))).toMatchObject(fault(13, 0x48));
    expect(exec(cpu, mem, (a) => a.mov(ax, 0x38).db([0x0f, 0x00, 0xd0]), 3)).toMatchObject(fault(13, 0));
  });
});

describe("VERR and VERW", () => {
  /** Runs VERR then VERW on `sel`, returning [ZF after VERR, ZF after VERW]. */
  function verify(cpu: Cpu, mem: PhysicalMemory, sel: number, cpl: 0 | 3): [boolean, boolean] {
    const zf: boolean[] = [];
    for (const reg of [4, 5]) {
      expect(
        exec(
          cpu,
          mem,
          (a) =>
            a
              .mov(ax, sel)
              .db([0x0f, 0x00, 0xc0 | (reg << 3)])
              .pushfq()
              .pop(rbx),
          cpl,
        ),
      ).toEqual(OK);
      zf.push((cpu.getReg64(3) & 0x40n) !== 0n);
    }
    return [zf[0]!, zf[1]!];
  }

  it("report readability and writability at the current CPL and the selector's RPL", () => {
    const { cpu, mem } = longModeMachine();
    expect(verify(cpu, mem, SELECTORS.KERNEL_DS, 0)).toEqual([true, true]);
    expect(verify(cpu, mem, SELECTORS.KERNEL_CS, 0)).toEqual([true, false]);
    expect(verify(cpu, mem, SELECTORS.KERNEL_DS | 3, 0)).toEqual([false, false]); // RPL 3 > DPL 0
    expect(verify(cpu, mem, SELECTORS.KERNEL_DS, 3)).toEqual([false, false]);
    expect(verify(cpu, mem, SELECTORS.USER_DS, 3)).toEqual([true, true]);
    expect(verify(cpu, mem, SELECTORS.USER_CS, 3)).toEqual([true, false]);
    expect(verify(cpu, mem, 0, 0)).toEqual([false, false]);
    expect(verify(cpu, mem, 0x80, 0)).toEqual([false, false]); // beyond the GDT
    expect(verify(cpu, mem, SELECTORS.TSS, 0)).toEqual([false, false]); // system segment
    expect(verify(cpu, mem, 0x0c, 0)).toEqual([false, false]); // TI = 1 with no LDT
  });
});

describe("PUSH and POP FS/GS", () => {
  it("PUSH writes the selector zero-extended to 64 bits (16 bits with 66h); POP loads it as MOV does", () => {
    const { cpu, mem } = longModeMachine();
    cpu.sel[4] = 0x1b;
    const sp = L.KERNEL_STACK_TOP - 0x40;
    cpu.setRsp(sp);
    mem.write64(sp - 8, 0xffff_ffff_ffff_ffffn);
    expect(exec(cpu, mem, (a) => a.push(fs).db([0x66, 0x0f, 0xa8]).pop(ax).pop(gs))).toEqual(OK); // push fs; push gs (16); pop ax; pop gs
    expect(mem.read64(sp - 8)).toBe(0x1bn);
    expect(cpu.getReg64(0) & 0xffffn).toBe(0n); // GS's selector was 0
    expect([cpu.sel[5], cpu.segAttr[5], cpu.getRsp()]).toEqual([0x1b, 0xc0f3, sp]);
  });

  it("POP of a selector that cannot be loaded faults with RSP unchanged", () => {
    const { cpu, mem } = longModeMachine();
    const sp = L.KERNEL_STACK_TOP - 0x40;
    cpu.setRsp(sp);
    mem.write64(sp, BigInt(SELECTORS.TSS));
    expect(exec(cpu, mem, (a) => a.pop(fs))).toMatchObject(fault(13, SELECTORS.TSS));
    expect(cpu.getRsp()).toBe(sp);
  });
});

describe("LAR and LSL", () => {
  /**
   * Switches to a GDT holding, after the standard entries: 0x38 conforming
   * code (DPL 0); 0x40 byte-granular data (DPL 3, limit 0x12345, not
   * present); 0x48 a 64-bit call gate (DPL 3); 0x58 a 64-bit interrupt gate;
   * 0x68 a TSS whose upper half has a non-zero type; 0x78 an LDT (DPL 3,
   * limit 0x2f); 0x88 a 16-bit call gate (valid only outside IA-32e mode);
   * 0x90 a TSS whose upper half lies beyond the limit (0x97).
   */
  function withSystemDescriptors(cpu: Cpu, mem: PhysicalMemory): void {
    const gdt = DATA + 0x3000;
    for (let k = 0; k < 0x38; k += 4) mem.write(gdt + k, 4, mem.read(L.GDT + k, 4));
    writeDwords(mem, gdt + 0x38, segmentDescriptor({ code: true, dpl: 0, conforming: true }));
    writeDwords(mem, gdt + 0x40, [0x2345, 0x0041_7300]);
    writeDwords(mem, gdt + 0x48, [(SELECTORS.KERNEL_CS << 16) | 0x5678, 0x1234_ec00, 0, 0]);
    writeDwords(mem, gdt + 0x58, [(SELECTORS.KERNEL_CS << 16) | 0x5678, 0x1234_8e00, 0, 0]);
    const tss = systemDescriptor(0x9, L.TSS, TSS_SIZE - 1);
    writeDwords(mem, gdt + 0x68, [tss[0], tss[1], tss[2], 0x0000_0900]);
    writeDwords(mem, gdt + 0x78, systemDescriptor(0x2, DATA + 0x2000, 0x2f, 3));
    writeDwords(mem, gdt + 0x88, [(SELECTORS.KERNEL_CS << 16) | 0x5678, 0x0000_e400]);
    writeDwords(mem, gdt + 0x90, tss.slice(0, 2));
    cpu.gdtrBase = gdt;
    cpu.gdtrLimit = 0x97;
  }

  const SENTINEL = 0xdead_beef_cafe_babdn;

  /**
   * Runs `[prefix…] 0F op /r` with ModRM C8 (reg ECX, r/m EAX) on selector `sel`
   * in AX and RCX = {@link SENTINEL}; returns ZF and RCX.
   */
  function probe(
    cpu: Cpu,
    mem: PhysicalMemory,
    op: 0x02 | 0x03,
    sel: number,
    cpl: 0 | 3 = 0,
    prefix: number[] = [],
  ): [boolean, bigint] {
    cpu.setReg64(1, SENTINEL);
    const r = exec(
      cpu,
      mem,
      (a) =>
        a
          .mov(ax, sel)
          .db([...prefix, 0x0f, op, 0xc8])
          .pushfq()
          .pop(rbx),
      cpl,
    );
    expect(r).toEqual(OK);
    return [(cpu.getReg64(3) & 0x40n) !== 0n, cpu.getReg64(1)];
  }
  const LAR = 0x02;
  const LSL = 0x03;
  const unchanged: [boolean, bigint] = [false, SENTINEL];

  it("LAR loads the second dword masked by 00F0FF00h (FF00h for 16 bits), zero-extended; ZF = 1", () => {
    const { cpu, mem } = longModeMachine();
    expect(probe(cpu, mem, LAR, SELECTORS.KERNEL_CS)).toEqual([true, 0x00a0_9b00n]);
    expect(probe(cpu, mem, LAR, SELECTORS.KERNEL_DS, 0, [0x48])).toEqual([true, 0x00c0_9300n]);
    expect(probe(cpu, mem, LAR, SELECTORS.USER_DS, 0, [0x66])).toEqual([true, 0xdead_beef_cafe_f300n]);
    expect(probe(cpu, mem, LAR, SELECTORS.TSS)).toEqual([true, 0x8b00n]); // the busy TSS of longModeMachine
    expect(probe(cpu, mem, LAR, SELECTORS.USER_CS, 3)).toEqual([true, 0x00a0_fb00n]);
  });

  it("LSL loads the byte limit (page-granular limits scaled), 16 bits with 66h, zero-extended otherwise", () => {
    const { cpu, mem } = longModeMachine();
    expect(probe(cpu, mem, LSL, SELECTORS.KERNEL_DS)).toEqual([true, 0xffff_ffffn]);
    expect(probe(cpu, mem, LSL, SELECTORS.KERNEL_CS, 0, [0x48])).toEqual([true, 0xffff_ffffn]);
    expect(probe(cpu, mem, LSL, SELECTORS.USER_DS, 0, [0x66])).toEqual([true, 0xdead_beef_cafe_ffffn]);
    expect(probe(cpu, mem, LSL, SELECTORS.TSS)).toEqual([true, BigInt(TSS_SIZE - 1)]);
    withSystemDescriptors(cpu, mem);
    expect(probe(cpu, mem, LSL, 0x43)).toEqual([true, 0x12345n]); // not present: still reported
    expect(probe(cpu, mem, LSL, 0x7b, 3)).toEqual([true, 0x2fn]);
  });

  it("clear ZF and leave the destination alone for null, out-of-table and invisible selectors", () => {
    const { cpu, mem } = longModeMachine();
    for (const op of [LAR, LSL] as const) {
      expect(probe(cpu, mem, op, 0)).toEqual(unchanged);
      expect(probe(cpu, mem, op, 3)).toEqual(unchanged);
      expect(probe(cpu, mem, op, 0x38)).toEqual(unchanged); // beyond the GDT limit (0x37)
      expect(probe(cpu, mem, op, 0x0c)).toEqual(unchanged); // TI = 1, no LDT
      expect(probe(cpu, mem, op, SELECTORS.KERNEL_DS | 3)).toEqual(unchanged); // RPL 3 > DPL 0
      expect(probe(cpu, mem, op, SELECTORS.KERNEL_CS, 3)).toEqual(unchanged); // CPL 3 > DPL 0
      expect(probe(cpu, mem, op, SELECTORS.TSS, 3)).toEqual(unchanged); // system segments too
    }
  });

  it("accept conforming code at any CPL and RPL, and not-present segments", () => {
    const { cpu, mem } = longModeMachine();
    withSystemDescriptors(cpu, mem);
    expect(probe(cpu, mem, LAR, 0x3b, 3)).toEqual([true, 0x00a0_9f00n]);
    expect(probe(cpu, mem, LSL, 0x3b, 3)).toEqual([true, 0xffff_ffffn]);
    expect(probe(cpu, mem, LAR, 0x43, 3)).toEqual([true, 0x0040_7300n]);
  });

  it("take only the IA-32e system types: LDT and 64-bit TSS for both, 64-bit call gates for LAR alone", () => {
    const { cpu, mem } = longModeMachine();
    withSystemDescriptors(cpu, mem);
    expect(probe(cpu, mem, LAR, 0x78)).toEqual([true, 0xe200n]);
    expect(probe(cpu, mem, LAR, 0x48, 3)).toEqual([true, 0x0030_ec00n]); // bits 23:20: the gate's offset 23:20
    expect(probe(cpu, mem, LSL, 0x48)).toEqual(unchanged); // a call gate has no limit
    for (const op of [LAR, LSL] as const) {
      expect(probe(cpu, mem, op, 0x58)).toEqual(unchanged); // interrupt gate
      expect(probe(cpu, mem, op, 0x88)).toEqual(unchanged); // 16-bit call gate: reserved in IA-32e mode
      expect(probe(cpu, mem, op, 0x68)).toEqual(unchanged); // upper half's type not zero
      expect(probe(cpu, mem, op, 0x90)).toEqual(unchanged); // upper half beyond the limit
      expect(probe(cpu, mem, op, 0x70)).toEqual(unchanged); // the upper half of a 16-byte descriptor
    }
  });

  it("read a 16-bit selector from memory; a bad address faults, a LOCK prefix is #UD", () => {
    const { cpu, mem } = longModeMachine();
    mem.write(DATA, 4, 0xffff_0000 | SELECTORS.KERNEL_CS);
    cpu.setReg64(1, SENTINEL);
    expect(exec(cpu, mem, (a) => a.mov(rax, DATA).db([0x0f, 0x02, 0x08]))).toEqual(OK); // lar ecx, [rax]
    expect(cpu.getReg64(1)).toBe(0x00a0_9b00n);
    expect(exec(cpu, mem, (a) => a.mov(rax, 0x0000_8000_0000_0000n).db([0x0f, 0x03, 0x08]))).toMatchObject(
      fault(13, 0),
    );
    expect(exec(cpu, mem, (a) => a.mov(rax, 0x10_0000).db([0x0f, 0x03, 0x08]))).toMatchObject(fault(14, 0));
    expect(exec(cpu, mem, (a) => a.db([0xf0, 0x0f, 0x02, 0x08]))).toMatchObject(fault(6, null));
  });
});
