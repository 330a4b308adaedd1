import { describe, expect, it } from "vitest";
import { VECTOR } from "../faults";
import { SNIPPET_CODE, snippet } from "./snippet.testkit";

// Exact results of MUL/IMUL/DIV/IDIV (SDM vol. 2). The native differential
// suite covers random operands; these pin the boundaries by name.

const RAX = 0;
const RDX = 2;
const RBX = 3;
const CF = 0x1;
const OF = 0x800;
const M64 = (1n << 64n) - 1n;

describe("MUL / IMUL", () => {
  it("MUL r64 gives the full 128-bit product in RDX:RAX, CF = OF = 1 when RDX ≠ 0", () => {
    const s = snippet([0x48, 0xf7, 0xe3], { [RAX]: M64, [RBX]: M64 }); // mul rbx
    s.run();
    expect(s.reg(RDX)).toBe(0xffff_ffff_ffff_fffen);
    expect(s.reg(RAX)).toBe(1n);
    expect(s.arith() & (CF | OF)).toBe(CF | OF);
  });

  it("IMUL r64 (one operand) is signed: −1 · −1 = 1 fits; 2^62 · 2 does not", () => {
    const fits = snippet([0x48, 0xf7, 0xeb], { [RAX]: M64, [RBX]: M64, [RDX]: 0x55n }); // imul rbx
    fits.run();
    expect(fits.reg(RAX)).toBe(1n);
    expect(fits.reg(RDX)).toBe(0n);
    expect(fits.arith() & (CF | OF)).toBe(0);
    const over = snippet([0x48, 0xf7, 0xeb], { [RAX]: 1n << 62n, [RBX]: 2n });
    over.run();
    expect(over.reg(RAX)).toBe(1n << 63n);
    expect(over.reg(RDX)).toBe(0n);
    expect(over.arith() & (CF | OF)).toBe(CF | OF);
  });

  it("IMUL r32, r/m32, imm8 sign-extends the immediate; −2^31 fits, −2^31 − 2 overflows", () => {
    const fits = snippet([0x6b, 0xc3, 0xfe], { [RAX]: M64, [RBX]: 0x4000_0000n }); // imul eax, ebx, -2
    fits.run();
    expect(fits.reg(RAX)).toBe(0x8000_0000n);
    expect(fits.arith() & (CF | OF)).toBe(0);
    const over = snippet([0x6b, 0xc3, 0xfe], { [RBX]: 0x4000_0001n });
    over.run();
    expect(over.reg(RAX)).toBe(0x7fff_fffen);
    expect(over.arith() & (CF | OF)).toBe(CF | OF);
  });

  it("IMUL r16, r/m16 keeps the register's upper 48 bits", () => {
    const s = snippet([0x66, 0x0f, 0xaf, 0xc3], { [RAX]: 0xdead_beef_0000_0100n, [RBX]: 0x100n }); // imul ax, bx
    s.run();
    expect(s.reg(RAX)).toBe(0xdead_beef_0000_0000n);
    expect(s.arith() & (CF | OF)).toBe(CF | OF);
  });
});

describe("DIV / IDIV", () => {
  it("#DE on a zero divisor, at the instruction, registers untouched", () => {
    const s = snippet([0xf7, 0xf3], { [RAX]: 100n, [RDX]: 0n, [RBX]: 0xffff_ffff_0000_0000n }); // div ebx
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.DE, errorCode: null }]);
    expect(s.cpu.rip).toBe(SNIPPET_CODE);
    expect(s.reg(RAX)).toBe(100n);
  });

  it("#DE when the quotient does not fit (DIV r32 with EDX ≥ divisor)", () => {
    const s = snippet([0xf7, 0xf3], { [RAX]: 0n, [RDX]: 5n, [RBX]: 5n });
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.DE, errorCode: null }]);
    expect(s.reg(RDX)).toBe(5n);
  });

  it("DIV r64 divides the 128-bit RDX:RAX exactly", () => {
    const a = snippet([0x48, 0xf7, 0xf3], { [RAX]: 0n, [RDX]: 1n, [RBX]: 3n }); // 2^64 / 3
    a.run();
    expect(a.reg(RAX)).toBe(0x5555_5555_5555_5555n);
    expect(a.reg(RDX)).toBe(1n);
    const b = snippet([0x48, 0xf7, 0xf3], { [RAX]: M64, [RDX]: M64 >> 1n, [RBX]: M64 }); // (2^127 − 1) / (2^64 − 1)
    b.run();
    expect(b.reg(RAX)).toBe(1n << 63n);
    expect(b.reg(RDX)).toBe((1n << 63n) - 1n);
  });

  it("IDIV r64: −2^63 / −1 overflows (#DE)", () => {
    const s = snippet([0x48, 0xf7, 0xfb], { [RAX]: 1n << 63n, [RDX]: M64, [RBX]: M64 }); // idiv rbx
    s.run();
    expect(s.faults).toEqual([{ vector: VECTOR.DE, errorCode: null }]);
  });

  it("IDIV r32: −2^32 / 2 = −2^31 fits, −2^32 / −2 = 2^31 does not", () => {
    const fits = snippet([0xf7, 0xfb], { [RAX]: 0n, [RDX]: 0xffff_ffffn, [RBX]: 2n }); // idiv ebx
    fits.run();
    expect(fits.faults).toEqual([]);
    expect(fits.reg(RAX)).toBe(0x8000_0000n);
    expect(fits.reg(RDX)).toBe(0n);
    const over = snippet([0xf7, 0xfb], { [RAX]: 0n, [RDX]: 0xffff_ffffn, [RBX]: 0xffff_fffen });
    over.run();
    expect(over.faults).toEqual([{ vector: VECTOR.DE, errorCode: null }]);
  });

  it("IDIV r8: the remainder takes the dividend's sign; −32768 / −1 overflows", () => {
    const s = snippet([0xf6, 0xfb], { [RAX]: 0x1234_0000_0000_fff9n, [RBX]: 2n }); // idiv bl: −7 / 2
    s.run();
    expect(s.reg(RAX)).toBe(0x1234_0000_0000_fffdn); // AL = −3, AH = −1
    const over = snippet([0xf6, 0xfb], { [RAX]: 0x8000n, [RBX]: 0xffn });
    over.run();
    expect(over.faults).toEqual([{ vector: VECTOR.DE, errorCode: null }]);
  });
});
