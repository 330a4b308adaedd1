import { describe, expect, it } from "vitest";
import { Assembler, rax } from "../asm/index";
import type { Cpu } from "../cpu";
import type { PhysicalMemory } from "../phys-memory";
import { LONG_MODE_LAYOUT as L, longModeMachine, SELECTORS } from "../testing/index";

// Far JMP/CALL through memory and RETF in 64-bit mode (SDM vol. 2A/2B), on the
// paged machine of testing/long-mode.ts. An exception ends the run through
// events.exception; a UD2 marks normal completion.

const RETFQ = [0x48, 0xcb];
const RETFQ_16 = [0x48, 0xca, 0x10, 0x00];
const RETF32 = [0xcb];
const JMP_FAR_RAX = [0x48, 0xff, 0x28]; // jmp far m16:64 [rax]
const CALL_FAR_RAX = [0x48, 0xff, 0x18]; // call far m16:64 [rax]
const PTR = L.KERNEL_DATA;
const TARGET = L.KERNEL_CODE + 0x800;
const SP = L.KERNEL_STACK_TOP - 0x100;

interface Outcome {
  fault: { vector: number; error: number | null } | null;
  rip: number;
}

/** Runs `bytes` at KERNEL_CODE; UD2 at TARGET and after the code mark completion. */
function exec(cpu: Cpu, mem: PhysicalMemory, bytes: number[], stack: bigint[] = []): Outcome {
  mem.writeBytes(L.KERNEL_CODE, Uint8Array.of(...bytes, 0x0f, 0x0b));
  mem.writeBytes(TARGET, Uint8Array.of(0x0f, 0x0b));
  mem.writeBytes(L.USER_CODE, Uint8Array.of(0x0f, 0x0b));
  stack.forEach((v, k) => {
    mem.write64(SP + 8 * k, v);
  });
  cpu.setRsp(SP);
  cpu.rip = L.KERNEL_CODE;
  cpu.halted = false;
  cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
  const r = cpu.run({ maxInstructions: 100 });
  const p = (r as { payload: { vector: number; error: number | null } }).payload;
  const done = p.vector === 6 && [TARGET, L.USER_CODE, L.KERNEL_CODE + bytes.length].includes(cpu.rip);
  return { fault: done ? null : p, rip: cpu.rip };
}

function farPtr(mem: PhysicalMemory, offset: number, sel: number): void {
  mem.write64(PTR, BigInt(offset));
  mem.write(PTR + 8, 2, sel);
}

describe("RETF", () => {
  it("REX.W RETF at the same level pops RIP and CS (64-bit slots)", () => {
    const { cpu, mem } = longModeMachine();
    expect(exec(cpu, mem, RETFQ, [BigInt(TARGET), BigInt(SELECTORS.KERNEL_CS)])).toEqual({ fault: null, rip: TARGET });
    expect(cpu.getRsp()).toBe(SP + 16);
    expect(cpu.sel[1]).toBe(SELECTORS.KERNEL_CS);
  });

  it("RETF imm16 releases the parameter bytes; plain RETF pops 32-bit slots", () => {
    const { cpu, mem } = longModeMachine();
    expect(exec(cpu, mem, RETFQ_16, [BigInt(TARGET), BigInt(SELECTORS.KERNEL_CS)]).fault).toBeNull();
    expect(cpu.getRsp()).toBe(SP + 16 + 16);
    expect(exec(cpu, mem, RETF32, [(BigInt(SELECTORS.KERNEL_CS) << 32n) | BigInt(TARGET)])).toEqual({
      fault: null,
      rip: TARGET,
    });
    expect(cpu.getRsp()).toBe(SP + 8);
  });

  it("to CPL 3 also pops RSP and SS, and nulls data segments the new level may not use", () => {
    const { cpu, mem } = longModeMachine();
    cpu.sel[3] = SELECTORS.KERNEL_DS;
    cpu.segAttr[3] = 0xc093;
    const r = exec(cpu, mem, RETFQ, [
      BigInt(L.USER_CODE),
      BigInt(SELECTORS.USER_CS),
      BigInt(L.USER_STACK_TOP - 0x20),
      BigInt(SELECTORS.USER_DS),
    ]);
    expect(r).toEqual({ fault: null, rip: L.USER_CODE });
    expect(cpu.cpl).toBe(3);
    expect([cpu.sel[1], cpu.sel[2], cpu.segAttr[2], cpu.sel[3], cpu.segAttr[3]]).toEqual([
      SELECTORS.USER_CS,
      SELECTORS.USER_DS,
      0xc0f3,
      0,
      0x10000,
    ]);
    expect(cpu.getRsp()).toBe(L.USER_STACK_TOP - 0x20);
  });

  it("refuses an inner level, a data segment, a missing SS and a non-canonical RIP, leaving RSP alone", () => {
    const cases: [string, bigint[], { vector: number; error: number }][] = [
      ["null CS", [BigInt(TARGET), 0n], { vector: 13, error: 0 }],
      ["data segment", [BigInt(TARGET), BigInt(SELECTORS.KERNEL_DS)], { vector: 13, error: 0x10 }],
      ["RPL 3 with DPL 0", [BigInt(TARGET), 0x0bn], { vector: 13, error: 0x08 }],
      ["null SS to CPL 3", [BigInt(L.USER_CODE), BigInt(SELECTORS.USER_CS), 0n, 3n], { vector: 13, error: 0 }],
      [
        "SS with DPL 0 to CPL 3",
        [BigInt(L.USER_CODE), BigInt(SELECTORS.USER_CS), 0n, BigInt(SELECTORS.KERNEL_DS | 3)],
        { vector: 13, error: 0x10 },
      ],
      ["non-canonical RIP", [0x0000_8000_0000_0000n, BigInt(SELECTORS.KERNEL_CS)], { vector: 13, error: 0 }],
    ];
    for (const [name, stack, f] of cases) {
      const { cpu, mem } = longModeMachine();
      expect(exec(cpu, mem, RETFQ, stack).fault, name).toEqual(f);
      expect(cpu.getRsp(), name).toBe(SP);
      expect(cpu.cpl).toBe(0);
    }
    const { cpu, mem } = longModeMachine();
    cpu.setCpl(3);
    mem.writeBytes(L.USER_CODE, Uint8Array.of(...RETFQ));
    mem.write64(L.USER_DATA, BigInt(TARGET));
    mem.write64(L.USER_DATA + 8, BigInt(SELECTORS.KERNEL_CS));
    cpu.rip = L.USER_CODE;
    cpu.setRsp(L.USER_DATA);
    cpu.events.exception = (c, vector, error) => c.exit({ vector, error });
    expect(cpu.run({ maxInstructions: 5 })).toEqual({ reason: "exit", payload: { vector: 13, error: 0x08 } });
  });
});

describe("far JMP and CALL through memory", () => {
  it("JMP m16:64 loads CS:RIP at the same privilege", () => {
    const { cpu, mem } = longModeMachine();
    farPtr(mem, TARGET, SELECTORS.KERNEL_CS);
    expect(exec(cpu, mem, [...new Assembler().mov(rax, PTR).assemble(0n).bytes, ...JMP_FAR_RAX])).toEqual({
      fault: null,
      rip: TARGET,
    });
    expect(cpu.getRsp()).toBe(SP);
  });

  it("CALL m16:64 pushes CS and the return RIP; RETF comes back", () => {
    const { cpu, mem } = longModeMachine();
    farPtr(mem, TARGET, SELECTORS.KERNEL_CS);
    const mov = Array.from(new Assembler().mov(rax, PTR).assemble(0n).bytes);
    mem.writeBytes(TARGET + 0x10, Uint8Array.of(...RETFQ));
    farPtr(mem, TARGET + 0x10, SELECTORS.KERNEL_CS);
    const r = exec(cpu, mem, [...mov, ...CALL_FAR_RAX]);
    expect(r).toEqual({ fault: null, rip: L.KERNEL_CODE + mov.length + 3 });
    expect(cpu.getRsp()).toBe(SP);
    expect(mem.read64(SP - 16)).toBe(BigInt(L.KERNEL_CODE + mov.length + 3));
    expect(mem.read64(SP - 8)).toBe(BigInt(SELECTORS.KERNEL_CS));
  });

  it("refuses data, other-privilege, not-present and system-segment targets", () => {
    const cases: [string, number, { vector: number; error: number }, (m: PhysicalMemory) => void][] = [
      ["data", SELECTORS.KERNEL_DS, { vector: 13, error: 0x10 }, () => {}],
      ["user code from CPL 0", SELECTORS.USER_CS, { vector: 13, error: 0x20 }, () => {}],
      ["TSS", SELECTORS.TSS, { vector: 13, error: 0x28 }, () => {}],
      ["not present", SELECTORS.KERNEL_CS, { vector: 11, error: 0x08 }, (m) => m.write(L.GDT + 8 + 5, 1, 0x1b)],
    ];
    for (const [name, sel, f, prep] of cases) {
      for (const op of [JMP_FAR_RAX, CALL_FAR_RAX]) {
        const { cpu, mem } = longModeMachine();
        prep(mem);
        farPtr(mem, TARGET, sel);
        const r = exec(cpu, mem, [...new Assembler().mov(rax, PTR).assemble(0n).bytes, ...op]);
        expect(r.fault, name).toEqual(f);
        expect(cpu.getRsp(), name).toBe(SP);
      }
    }
  });
});
