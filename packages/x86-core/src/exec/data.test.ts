import { describe, expect, it } from "vitest";
import { Assembler, rax, rbx } from "../asm/index";
import { type Cpu, SEG } from "../cpu";
import type { PhysicalMemory } from "../phys-memory";
import { LONG_MODE_LAYOUT as L, longModeMachine, SELECTORS } from "../testing/index";

// LSS, LFS, LGS (0F B2, B4, B5) in 64-bit mode (SDM vol. 2A, "LDS/LES/LFS/LGS/LSS"),
// on the paged machine of testing/long-mode.ts. An exception ends the run
// through events.exception; a UD2 after the code marks normal completion.

const PTR = L.KERNEL_DATA;
const SENTINEL = 0xdead_beef_cafe_babdn;

interface Outcome {
  fault: { vector: number; error: number | null } | null;
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
  cpu.halted = false;
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
  const r = cpu.run({ maxInstructions: 100 });
  const p = (r as { payload: { vector: number; error: number | null } }).payload;
  return { fault: p.vector === 6 && cpu.rip === Number(out.labels.get("end")) ? null : p };
}

const OK = { fault: null };
const fault = (vector: number, error: number | null) => ({ fault: { vector, error } });

/** `[prefix…] 0F op /r` with ModRM 0B: reg ECX/RCX/CX, memory [rbx]; RBX = `at`, RCX = {@link SENTINEL}. */
function load(
  cpu: Cpu,
  mem: PhysicalMemory,
  op: number,
  prefix: number[] = [],
  at: number = PTR,
  cpl: 0 | 3 = 0,
): Outcome {
  cpu.setReg64(1, SENTINEL);
  return exec(cpu, mem, (a) => a.mov(rbx, at).db([...prefix, 0x0f, op, 0x0b]), cpl);
}

const LSS = 0xb2;
const LFS = 0xb4;
const LGS = 0xb5;

describe("LSS, LFS, LGS", () => {
  it("load a 32-bit offset (zero-extended) and the selector after it, as MOV Sreg would", () => {
    const { cpu, mem } = longModeMachine();
    mem.write(PTR, 4, 0x8765_4321);
    mem.write(PTR + 4, 2, SELECTORS.USER_DS);
    cpu.segBase[SEG.FS] = 0x1234_5000;
    expect(load(cpu, mem, LFS)).toEqual(OK);
    expect(cpu.getReg64(1)).toBe(0x8765_4321n);
    expect([cpu.sel[SEG.FS], cpu.segAttr[SEG.FS], cpu.segBase[SEG.FS]]).toEqual([SELECTORS.USER_DS, 0xc0f3, 0]);
  });

  it("with REX.W the offset is 64 bits; with 66h 16 bits, merged into the register", () => {
    const { cpu, mem } = longModeMachine();
    mem.write64(PTR, 0xffff_8000_1234_5678n);
    mem.write(PTR + 8, 2, SELECTORS.KERNEL_DS);
    expect(load(cpu, mem, LGS, [0x48])).toEqual(OK);
    expect(cpu.getReg64(1)).toBe(0xffff_8000_1234_5678n);
    expect(cpu.sel[SEG.GS]).toBe(SELECTORS.KERNEL_DS);
    mem.write(PTR, 2, 0x4321);
    mem.write(PTR + 2, 2, SELECTORS.USER_DS);
    expect(load(cpu, mem, LFS, [0x66])).toEqual(OK);
    expect(cpu.getReg64(1)).toBe(0xdead_beef_cafe_4321n);
    expect(cpu.sel[SEG.FS]).toBe(SELECTORS.USER_DS);
  });

  it("LSS loads SS and the stack pointer; a null SS is allowed at CPL 0 with RPL 0, not at CPL 3", () => {
    const { cpu, mem } = longModeMachine();
    mem.write64(PTR, BigInt(L.KERNEL_STACK_TOP - 0x80));
    mem.write(PTR + 8, 2, SELECTORS.KERNEL_DS);
    expect(exec(cpu, mem, (a) => a.mov(rax, PTR).db([0x48, 0x0f, 0xb2, 0x20]))).toEqual(OK); // lss rsp, [rax]
    expect([cpu.getRsp(), cpu.sel[SEG.SS]]).toEqual([L.KERNEL_STACK_TOP - 0x80, SELECTORS.KERNEL_DS]);
    mem.write(PTR + 8, 2, 0);
    expect(load(cpu, mem, LSS, [0x48])).toEqual(OK);
    expect([cpu.sel[SEG.SS], cpu.segAttr[SEG.SS]]).toEqual([0, 0x10000]);
    mem.write(L.USER_DATA, 4, 0x1000);
    mem.write(L.USER_DATA + 4, 2, 3);
    expect(load(cpu, mem, LSS, [], L.USER_DATA, 3)).toEqual(fault(13, 0));
    expect(cpu.getReg64(1)).toBe(SENTINEL);
  });

  it("a selector that cannot be loaded faults with the register and the segment unchanged", () => {
    const { cpu, mem } = longModeMachine();
    mem.write(PTR, 4, 0x1111_1111);
    const cases: [number, number, { vector: number; error: number | null }][] = [
      [LFS, SELECTORS.TSS, { vector: 13, error: SELECTORS.TSS }], // a system segment
      [LGS, SELECTORS.KERNEL_DS | 3, { vector: 13, error: SELECTORS.KERNEL_DS }], // RPL 3 > DPL 0
      [LSS, SELECTORS.KERNEL_CS, { vector: 13, error: SELECTORS.KERNEL_CS }], // SS must be writable data
      [LSS, SELECTORS.USER_DS, { vector: 13, error: SELECTORS.USER_DS & ~3 }], // RPL ≠ CPL
      [LFS, 0x38, { vector: 13, error: 0x38 }], // beyond the GDT limit
    ];
    for (const [op, sel, f] of cases) {
      mem.write(PTR + 4, 2, sel);
      expect(load(cpu, mem, op), `op ${op.toString(16)} sel ${sel.toString(16)}`).toEqual({ fault: f });
      expect(cpu.getReg64(1)).toBe(SENTINEL);
    }
    expect([cpu.sel[SEG.FS], cpu.sel[SEG.GS], cpu.sel[SEG.SS]]).toEqual([0, 0, SELECTORS.KERNEL_DS]);
  });

  it("a not-present segment is #NP(selector) for FS/GS and #SS(selector) for SS", () => {
    const { cpu, mem } = longModeMachine();
    mem.write(L.GDT + 0x10 + 5, 1, 0x13); // kernel data, P = 0
    mem.write(PTR, 4, 0);
    mem.write(PTR + 4, 2, SELECTORS.KERNEL_DS);
    expect(load(cpu, mem, LFS)).toEqual(fault(11, SELECTORS.KERNEL_DS));
    expect(load(cpu, mem, LSS)).toEqual(fault(12, SELECTORS.KERNEL_DS));
  });

  it("a register operand is #UD; a selector past the mapped memory is #PF, a non-canonical pointer #GP(0)", () => {
    const { cpu, mem } = longModeMachine();
    expect(exec(cpu, mem, (a) => a.db([0x0f, 0xb4, 0xc8]))).toEqual(fault(6, null)); // lfs ecx, eax
    expect(load(cpu, mem, LGS, [], L.IDENTITY_END - 4)).toEqual(fault(14, 0)); // the selector's page is unmapped
    expect(cpu.getReg64(1)).toBe(SENTINEL);
    expect(load(cpu, mem, LFS, [], -0x8000_0000_0000 - 0x1000)).toMatchObject({ fault: { vector: 13, error: 0 } });
  });
});
