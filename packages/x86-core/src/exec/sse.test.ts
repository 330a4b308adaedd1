import { describe, expect, it } from "vitest";
import { Cpu, CR0, CR4, REG } from "../cpu";
import { VECTOR } from "../faults";
import { RFLAGS } from "../flags";
import { PhysicalMemory } from "../phys-memory";

const CODE = 0x1000;
const DATA = 0x10_0000;

function machine(code: number[]) {
  const mem = new PhysicalMemory({ ramSize: 16 * 1024 * 1024 });
  mem.writeBytes(CODE, Uint8Array.from([...code, 0xf4]));
  const cpu = new Cpu(mem);
  cpu.rip = CODE;
  cpu.setRsp(0x8000);
  const seen: { vector: number; errorCode: number | null }[] = [];
  cpu.events.exception = (c, vector, errorCode) => {
    seen.push({ vector, errorCode });
    return c.exit({ vector });
  };
  return { mem, cpu, seen };
}

function setXmm(cpu: Cpu, n: number, v: bigint): void {
  for (let k = 0; k < 4; k++) cpu.xmm[4 * n + k] = Number((v >> BigInt(32 * k)) & 0xffff_ffffn);
}

function getXmm(cpu: Cpu, n: number): bigint {
  let v = 0n;
  for (let k = 3; k >= 0; k--) v = (v << 32n) | BigInt(cpu.xmm[4 * n + k]!);
  return v;
}

const f64 = (x: number) => new BigUint64Array(new Float64Array([x]).buffer)[0]!;
const fromBits = (b: bigint) => new Float64Array(new BigUint64Array([b & 0xffff_ffff_ffff_ffffn]).buffer)[0]!;

const ADDSD_X0_X1 = [0xf2, 0x0f, 0x58, 0xc1];
const DIVSD_X0_X1 = [0xf2, 0x0f, 0x5e, 0xc1];

describe("SSE availability checks", () => {
  it("raises #UD with CR4.OSFXSR = 0 or CR0.EM = 1 and #NM with CR0.TS = 1 (EM wins over TS)", () => {
    const cases: [(cpu: Cpu) => void, number][] = [
      [(cpu) => (cpu.cr4 &= ~CR4.OSFXSR), VECTOR.UD],
      [(cpu) => (cpu.cr0 |= CR0.EM), VECTOR.UD],
      [(cpu) => (cpu.cr0 |= CR0.TS), VECTOR.NM],
      [(cpu) => (cpu.cr0 |= CR0.TS | CR0.EM), VECTOR.UD],
    ];
    for (const [setup, vector] of cases) {
      const { cpu, seen } = machine(ADDSD_X0_X1);
      setup(cpu);
      cpu.run({ maxInstructions: 10 });
      expect(seen).toEqual([{ vector, errorCode: null }]);
      expect(cpu.getRip()).toBe(BigInt(CODE));
    }
  });

  it("FXSAVE raises #NM for CR0.EM as well as CR0.TS; MOVNTI and the fences ignore them", () => {
    const fx = machine([0x0f, 0xae, 0x00]); // fxsave [rax]
    fx.cpu.cr0 |= CR0.EM;
    fx.cpu.setReg64(REG.RAX, BigInt(DATA));
    fx.cpu.run({ maxInstructions: 10 });
    expect(fx.seen).toEqual([{ vector: VECTOR.NM, errorCode: null }]);
    // movnti [rax], ecx; lfence; mfence; sfence
    const nt = machine([0x0f, 0xc3, 0x08, 0x0f, 0xae, 0xe8, 0x0f, 0xae, 0xf0, 0x0f, 0xae, 0xf8]);
    nt.cpu.cr0 |= CR0.TS | CR0.EM;
    nt.cpu.setReg64(REG.RAX, BigInt(DATA));
    nt.cpu.setReg64(REG.RCX, 0x1234_5678n);
    expect(nt.cpu.run({ maxInstructions: 10 })).toEqual({ reason: "halt" });
    expect(nt.mem.read(DATA, 4)).toBe(0x1234_5678);
  });
});

describe("SIMD floating-point exceptions", () => {
  it("an unmasked divide-by-zero raises #XM, sets ZE and leaves the destination alone", () => {
    const { cpu, seen } = machine(DIVSD_X0_X1);
    cpu.mxcsr = 0x1f80 & ~0x200; // ZM clear
    setXmm(cpu, 0, f64(1));
    setXmm(cpu, 1, 0n);
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.XM, errorCode: null }]);
    expect(getXmm(cpu, 0)).toBe(f64(1));
    expect(cpu.mxcsr).toBe((0x1f80 & ~0x200) | 0x4);
  });

  it("raises #UD instead when CR4.OSXMMEXCPT = 0", () => {
    const { cpu, seen } = machine(DIVSD_X0_X1);
    cpu.cr4 &= ~CR4.OSXMMEXCPT;
    cpu.mxcsr = 0x1f80 & ~0x200;
    setXmm(cpu, 0, f64(1));
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
  });

  it("masked: 0/0 gives the default NaN with IE, inf - inf too; a QNaN operand gives itself without IE", () => {
    const { cpu } = machine([...DIVSD_X0_X1, 0xf2, 0x0f, 0x5c, 0xd3, 0xf2, 0x0f, 0x58, 0xe5]); // divsd; subsd x2,x3; addsd x4,x5
    setXmm(cpu, 2, f64(Number.POSITIVE_INFINITY));
    setXmm(cpu, 3, f64(Number.NEGATIVE_INFINITY) ^ (1n << 63n));
    setXmm(cpu, 4, 0x7ff8_0000_0000_1234n);
    setXmm(cpu, 5, f64(2));
    cpu.run({ maxInstructions: 10 });
    expect(getXmm(cpu, 0)).toBe(0xfff8_0000_0000_0000n);
    expect(getXmm(cpu, 2)).toBe(0xfff8_0000_0000_0000n);
    expect(getXmm(cpu, 4)).toBe(0x7ff8_0000_0000_1234n);
    expect(cpu.mxcsr).toBe(0x1f81);
  });

  it("two NaNs: the first source's is returned, quieted; an SNaN sets IE", () => {
    const { cpu } = machine(ADDSD_X0_X1);
    setXmm(cpu, 0, 0x7ff0_0000_0000_0001n); // SNaN
    setXmm(cpu, 1, 0xfff8_0000_0000_0002n); // QNaN
    cpu.run({ maxInstructions: 10 });
    expect(getXmm(cpu, 0)).toBe(0x7ff8_0000_0000_0001n);
    expect(cpu.mxcsr & 0x3f).toBe(0x1);
  });
});

describe("rounding, denormals and MXCSR", () => {
  const run = (code: number[], mxcsr: number, a: bigint, b: bigint) => {
    const { cpu } = machine(code);
    cpu.mxcsr = mxcsr;
    setXmm(cpu, 0, a);
    setXmm(cpu, 1, b);
    cpu.run({ maxInstructions: 10 });
    return { x0: getXmm(cpu, 0), flags: cpu.mxcsr & 0x3f };
  };

  it("rounds 1 + 2^-60 per MXCSR.RC, with PE", () => {
    const a = f64(1);
    const b = f64(2 ** -60);
    const up = f64(1 + 2 ** -52);
    expect(run(ADDSD_X0_X1, 0x1f80, a, b)).toEqual({ x0: a, flags: 0x20 });
    expect(run(ADDSD_X0_X1, 0x1f80 | (2 << 13), a, b)).toEqual({ x0: up, flags: 0x20 });
    expect(run(ADDSD_X0_X1, 0x1f80 | (1 << 13), a, b)).toEqual({ x0: a, flags: 0x20 });
    expect(run(ADDSD_X0_X1, 0x1f80 | (3 << 13), a | (1n << 63n), b)).toEqual({ x0: f64(-1 + 2 ** -53), flags: 0x20 });
  });

  it("1/3 rounded up and down differ by one unit in the last place; x + (-x) is -0 when rounding down", () => {
    const down = run(DIVSD_X0_X1, 0x1f80 | (1 << 13), f64(1), f64(3)).x0;
    const up = run(DIVSD_X0_X1, 0x1f80 | (2 << 13), f64(1), f64(3)).x0;
    expect(down).toBe(0x3fd5_5555_5555_5555n); // 1/3 = 0x1.5555…p-2: the nearest value lies below
    expect(up).toBe(0x3fd5_5555_5555_5556n);
    expect(run(ADDSD_X0_X1, 0x1f80 | (1 << 13), f64(5), f64(-5)).x0).toBe(1n << 63n);
    expect(run(ADDSD_X0_X1, 0x1f80, f64(5), f64(-5)).x0).toBe(0n);
  });

  it("a tiny inexact product is denormalized with UE|PE, flushed to zero under FTZ, and DAZ reads denormals as zero", () => {
    const mul = [0xf2, 0x0f, 0x59, 0xc1];
    const a = f64(2 ** -1000 * 1.5);
    const b = f64(2 ** -60 * (1 + 2 ** -40));
    const exact = 2 ** -1060 * 1.5 * (1 + 2 ** -40);
    const r = run(mul, 0x1f80, a, b);
    expect(fromBits(r.x0)).toBe(exact); // JS rounds to nearest on the subnormal grid too
    expect(r.flags).toBe(0x30);
    expect(run(mul, 0x1f80 | 0x8000, a, b)).toEqual({ x0: 0n, flags: 0x30 });
    // denormal + 0: DE without DAZ, a plain +0 with it.
    expect(run(ADDSD_X0_X1, 0x1f80, 1n, 0n)).toEqual({ x0: 1n, flags: 0x2 });
    expect(run(ADDSD_X0_X1, 0x1f80 | 0x40, 1n, 0n)).toEqual({ x0: 0n, flags: 0 });
  });

  it("CVTSD2SI follows RC with ties to even; CVTTSD2SI truncates; NaN and overflow give the integer indefinite", () => {
    const cvt = (code: number[], mxcsr: number, x: number) => {
      const { cpu } = machine(code);
      cpu.mxcsr = mxcsr;
      setXmm(cpu, 1, f64(x));
      cpu.run({ maxInstructions: 10 });
      return { rax: cpu.getReg64(REG.RAX), flags: cpu.mxcsr & 0x3f };
    };
    const CVTSD2SI = [0xf2, 0x0f, 0x2d, 0xc1]; // cvtsd2si eax, xmm1
    const CVTTSD2SI = [0xf2, 0x0f, 0x2c, 0xc1];
    const CVTSD2SI64 = [0xf2, 0x48, 0x0f, 0x2d, 0xc1];
    expect([2.5, 3.5, -2.5].map((x) => cvt(CVTSD2SI, 0x1f80, x).rax)).toEqual([2n, 4n, 0xffff_fffen]);
    expect(cvt(CVTSD2SI, 0x1f80 | (2 << 13), 2.25)).toEqual({ rax: 3n, flags: 0x20 });
    expect(cvt(CVTSD2SI, 0x1f80 | (1 << 13), -2.25).rax).toBe(0xffff_fffdn);
    expect(cvt(CVTTSD2SI, 0x1f80, -2.75).rax).toBe(0xffff_fffen);
    expect(cvt(CVTTSD2SI, 0x1f80, Number.NaN)).toEqual({ rax: 0x8000_0000n, flags: 0x1 });
    expect(cvt(CVTTSD2SI, 0x1f80, 2 ** 31)).toEqual({ rax: 0x8000_0000n, flags: 0x1 });
    expect(cvt(CVTSD2SI64, 0x1f80, 2 ** 63)).toEqual({ rax: 0x8000_0000_0000_0000n, flags: 0x1 });
    expect(cvt(CVTSD2SI64, 0x1f80, -(2 ** 62) - 2 ** 10)).toEqual({ rax: 0xbfff_ffff_ffff_fc00n, flags: 0 });
  });

  it("CVTSI2SD of a 64-bit integer rounds per RC", () => {
    const { cpu } = machine([0xf2, 0x48, 0x0f, 0x2a, 0xc0, 0xf2, 0x48, 0x0f, 0x2a, 0xc8]); // cvtsi2sd xmm0, rax; … xmm1, rax
    cpu.setReg64(REG.RAX, (1n << 60n) + 1n);
    cpu.mxcsr = 0x1f80;
    cpu.step();
    cpu.mxcsr = 0x1f80 | (2 << 13);
    cpu.step();
    expect(getXmm(cpu, 0)).toBe(f64(2 ** 60));
    expect(getXmm(cpu, 1)).toBe(f64(2 ** 60 + 256));
    expect(cpu.mxcsr & 0x3f).toBe(0x20);
  });

  it("LDMXCSR with a reserved bit raises #GP(0) and keeps MXCSR; STMXCSR stores it", () => {
    const { mem, cpu, seen } = machine([0x0f, 0xae, 0x18, 0x0f, 0xae, 0x10]); // stmxcsr [rax]; ldmxcsr [rax]
    cpu.setReg64(REG.RAX, BigInt(DATA));
    cpu.mxcsr = 0x9fc0;
    cpu.step();
    expect(mem.read(DATA, 4)).toBe(0x9fc0);
    mem.write(DATA, 4, 0x1_1f80);
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    expect(cpu.mxcsr).toBe(0x9fc0);
  });

  it("COMISD sets ZF/PF/CF and clears OF/SF/AF; UCOMISD with a QNaN raises no IE, COMISD does", () => {
    const flagsOf = (code: number[], a: number, b: number) => {
      const { cpu } = machine(code);
      cpu.setRflags(RFLAGS.OF | RFLAGS.SF | RFLAGS.AF);
      setXmm(cpu, 0, f64(a));
      setXmm(cpu, 1, f64(b));
      cpu.run({ maxInstructions: 10 });
      return [cpu.getRflags() & 0x8d5, cpu.mxcsr & 0x3f];
    };
    const COMISD = [0x66, 0x0f, 0x2f, 0xc1];
    const UCOMISD = [0x66, 0x0f, 0x2e, 0xc1];
    expect(flagsOf(COMISD, 1, 2)).toEqual([RFLAGS.CF, 0]);
    expect(flagsOf(COMISD, 2, 1)).toEqual([0, 0]);
    expect(flagsOf(COMISD, -0, 0)).toEqual([RFLAGS.ZF, 0]);
    expect(flagsOf(COMISD, Number.NaN, 0)).toEqual([RFLAGS.ZF | RFLAGS.PF | RFLAGS.CF, 1]);
    expect(flagsOf(UCOMISD, Number.NaN, 0)).toEqual([RFLAGS.ZF | RFLAGS.PF | RFLAGS.CF, 0]);
  });
});

describe("SSE data movement and state", () => {
  it("MOVDQA on a misaligned address raises #GP(0); MOVDQU does not", () => {
    const { mem, cpu, seen } = machine([0xf3, 0x0f, 0x6f, 0x00, 0x66, 0x0f, 0x6f, 0x08]); // movdqu xmm0,[rax]; movdqa xmm1,[rax]
    cpu.setReg64(REG.RAX, BigInt(DATA + 4));
    mem.write64(DATA + 4, 0x0706_0504_0302_0100n);
    cpu.run({ maxInstructions: 10 });
    expect(getXmm(cpu, 0) & 0xffff_ffff_ffff_ffffn).toBe(0x0706_0504_0302_0100n);
    expect(seen).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    expect(cpu.getRip()).toBe(BigInt(CODE + 4));
  });

  it("MOVSD merges from a register and zeroes the upper half from memory", () => {
    const { mem, cpu } = machine([0xf2, 0x0f, 0x10, 0xc1, 0xf2, 0x0f, 0x10, 0x10]); // movsd xmm0, xmm1; movsd xmm2, [rax]
    setXmm(cpu, 0, 0xaaaa_aaaa_aaaa_aaaa_bbbb_bbbb_bbbb_bbbbn);
    setXmm(cpu, 1, 0x1111_1111_1111_1111_2222_2222_2222_2222n);
    setXmm(cpu, 2, 0xcccc_cccc_cccc_cccc_dddd_dddd_dddd_ddddn);
    mem.write64(DATA, 0x3333_3333_3333_3333n);
    cpu.setReg64(REG.RAX, BigInt(DATA));
    cpu.run({ maxInstructions: 10 });
    expect(getXmm(cpu, 0)).toBe(0xaaaa_aaaa_aaaa_aaaa_2222_2222_2222_2222n);
    expect(getXmm(cpu, 2)).toBe(0x3333_3333_3333_3333n);
  });

  it("FXSAVE and FXRSTOR round-trip XMM, MXCSR and the x87 image; a bad MXCSR or alignment is #GP(0)", () => {
    // fxsave [rax]; fxrstor [rbx]; fxsave [rcx]
    const { mem, cpu, seen } = machine([0x0f, 0xae, 0x00, 0x0f, 0xae, 0x0b, 0x0f, 0xae, 0x01]);
    for (let r = 0; r < 16; r++) setXmm(cpu, r, BigInt(r + 1) * 0x0101_0101_0101_0101_0101_0101_0101_0101n);
    cpu.mxcsr = 0x7f80;
    cpu.setReg64(REG.RAX, BigInt(DATA));
    cpu.setReg64(REG.RBX, BigInt(DATA + 0x400));
    cpu.setReg64(REG.RCX, BigInt(DATA + 0x800));
    const image = Uint8Array.from({ length: 512 }, (_, i) => (i * 29 + 7) & 0xff);
    new DataView(image.buffer).setUint32(24, 0x1f80 | 0x40, true);
    mem.writeBytes(DATA + 0x400, image);
    cpu.step();
    expect(mem.read(DATA, 2)).toBe(0x37f);
    expect(mem.read(DATA + 24, 4)).toBe(0x7f80);
    expect(mem.read(DATA + 28, 4)).toBe(0xffff);
    expect(mem.read64(DATA + 160 + 16 * 15)).toBe(0x1010_1010_1010_1010n);
    cpu.step();
    expect(cpu.mxcsr).toBe(0x1fc0);
    expect(getXmm(cpu, 3)).toBe(
      new DataView(image.buffer, 160 + 48).getBigUint64(0, true) |
        (new DataView(image.buffer, 160 + 56).getBigUint64(0, true) << 64n),
    );
    cpu.step();
    const again = mem.readBytes(DATA + 0x800, 512);
    expect(again.subarray(160, 416)).toEqual(image.subarray(160, 416));
    for (let st = 0; st < 8; st++) {
      const o = 32 + 16 * st;
      expect(again.subarray(o, o + 10)).toEqual(image.subarray(o, o + 10));
      expect(Array.from(again.subarray(o + 10, o + 16))).toEqual([0, 0, 0, 0, 0, 0]);
    }
    expect(again[4]).toBe(image[4]); // abridged tag word
    expect(mem.read(DATA + 0x800 + 6, 2)).toBe((image[6]! | (image[7]! << 8)) & 0x7ff); // FOP: 11 bits
    // An image with MXCSR reserved bits, then a misaligned one.
    const bad = machine([0x0f, 0xae, 0x0b, 0x0f, 0xae, 0x09]);
    bad.mem.write(DATA + 24, 4, 0x1_0000);
    bad.cpu.setReg64(REG.RBX, BigInt(DATA));
    bad.cpu.setReg64(REG.RCX, BigInt(DATA + 8));
    bad.cpu.run({ maxInstructions: 10 });
    bad.cpu.rip = CODE + 3;
    bad.cpu.run({ maxInstructions: 10 });
    expect(bad.seen).toEqual([
      { vector: VECTOR.GP, errorCode: 0 },
      { vector: VECTOR.GP, errorCode: 0 },
    ]);
    expect(bad.cpu.mxcsr).toBe(0x1f80);
    expect(seen).toEqual([]);
  });

  it("runs a PCMPEQB/PMOVMSKB strlen loop as glibc's SSE2 code does", () => {
    // pxor xmm0,xmm0; top: movdqa xmm1,[rdi]; pcmpeqb xmm1,xmm0; pmovmskb eax,xmm1; add rdi,16; test eax,eax; jz top
    const code = [
      0x66, 0x0f, 0xef, 0xc0, 0x66, 0x0f, 0x6f, 0x0f, 0x66, 0x0f, 0x74, 0xc8, 0x66, 0x0f, 0xd7, 0xc1, 0x48, 0x83, 0xc7,
      0x10, 0x85, 0xc0, 0x74, 0xec,
    ];
    const { mem, cpu } = machine(code);
    mem.writeBytes(DATA, new TextEncoder().encode(`${"x".repeat(37)}\0tail`));
    cpu.setReg64(REG.RDI, BigInt(DATA));
    expect(cpu.run({ maxInstructions: 100 })).toEqual({ reason: "halt" });
    expect(cpu.getReg64(REG.RDI)).toBe(BigInt(DATA + 48));
    expect(cpu.getReg64(REG.RAX)).toBe(0xfc20n); // the NUL at 37, and the zeros after "tail" from 42
  });
});

describe("RCPPS/RCPSS and RSQRTPS/RSQRTSS", () => {
  const f32 = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const lanes = (...v: number[]) => v.reduce((acc, x, i) => acc | (BigInt(x >>> 0) << BigInt(32 * i)), 0n);
  const RCPPS = [0x0f, 0x53, 0xc1];
  const RCPSS = [0xf3, 0x0f, 0x53, 0xc1];
  const RSQRTPS = [0x0f, 0x52, 0xc1];
  const RSQRTSS = [0xf3, 0x0f, 0x52, 0xc1];

  /** Runs `code` (xmm0 ← op xmm1) with xmm1 = `src` and xmm0 = `dst`; returns xmm0. */
  function run(code: number[], src: bigint, dst = 0n, mxcsr = 0x1f80): bigint {
    const { cpu, seen } = machine(code);
    setXmm(cpu, 0, dst);
    setXmm(cpu, 1, src);
    cpu.mxcsr = mxcsr;
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([]);
    expect(cpu.mxcsr).toBe(mxcsr); // no flags, whatever is unmasked
    return getXmm(cpu, 0);
  }

  it("return the binary32-rounded 1/x and 1/√x per lane; the scalar forms keep lanes 1–3", () => {
    expect(run(RCPPS, lanes(f32(2), f32(-4), f32(3), f32(0.1)))).toBe(
      lanes(0x3f00_0000, 0xbe80_0000, f32(1 / 3), f32(1 / Math.fround(0.1))),
    );
    expect(run(RSQRTPS, lanes(f32(4), f32(16), f32(2), f32(2 ** -126)))).toBe(
      lanes(0x3f00_0000, 0x3e80_0000, f32(Math.SQRT1_2), f32(2 ** 63)),
    );
    const dst = lanes(0x1111_1111, 0x2222_2222, 0x3333_3333, 0x4444_4444);
    expect(run(RCPSS, lanes(f32(8), 1, 2, 3), dst)).toBe(lanes(0x3e00_0000, 0x2222_2222, 0x3333_3333, 0x4444_4444));
    expect(run(RSQRTSS, lanes(f32(0.25), 1, 2, 3), dst, 0)).toBe(
      lanes(0x4000_0000, 0x2222_2222, 0x3333_3333, 0x4444_4444),
    );
  });

  it("special operands as the SDM defines them: ±0 and denormals → ±∞, NaNs quieted, tiny reciprocals flushed", () => {
    // RCP: +0, -denormal, -∞, SNaN.
    expect(run(RCPPS, lanes(0, 0x8040_0000, 0xff80_0000, 0x7f80_0001), 0n, 0)).toBe(
      lanes(0x7f80_0000, 0xff80_0000, 0x8000_0000, 0x7fc0_0001),
    );
    // RCP: 2^127 and -2^127 (reciprocal below 2^-126: ±0), 2^126 (2^-126, normal), QNaN.
    expect(run(RCPPS, lanes(0x7f00_0000, 0xff00_0000, 0x7e80_0000, 0xffc0_1234))).toBe(
      lanes(0, 0x8000_0000, 0x0080_0000, 0xffc0_1234),
    );
    // RSQRT: -1, -∞ (default NaN), -0 and -denormal (-∞), then +∞ (+0), +denormal (+∞), SNaN.
    expect(run(RSQRTPS, lanes(0xbf80_0000, 0xff80_0000, 0x8000_0000, 0x8000_0001))).toBe(
      lanes(0xffc0_0000, 0xffc0_0000, 0xff80_0000, 0xff80_0000),
    );
    expect(run(RSQRTPS, lanes(0x7f80_0000, 0x0000_0001, 0xff80_0042, f32(1)), 0n, 0)).toBe(
      lanes(0, 0x7f80_0000, 0xffc0_0042, 0x3f80_0000),
    );
  });

  it("stay within the architectural bound |relative error| ≤ 1.5 · 2^-12 for operands in [2^-126, 2^126]", () => {
    let s = 0x1234_5678;
    const next = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return s >>> 0;
    };
    const bound = 1.5 * 2 ** -12;
    for (let i = 0; i < 2000; i++) {
      // Positive normal operands whose reciprocal is normal too (the bound does not cover flushed results).
      const bits = [next(), next(), next(), next()].map((b) => 0x0080_0000 + (b % (0x7e80_0000 - 0x0080_0000 + 1)));
      const xs = bits.map((b) => new Float32Array(new Uint32Array([b]).buffer)[0]!);
      for (const [code, f] of [
        [RCPPS, (x: number) => 1 / x],
        [RSQRTPS, (x: number) => 1 / Math.sqrt(x)],
      ] as const) {
        const r = run(code, lanes(...bits));
        for (let l = 0; l < 4; l++) {
          const got = new Float32Array(new Uint32Array([Number((r >> BigInt(32 * l)) & 0xffff_ffffn)]).buffer)[0]!;
          const exact = f(xs[l]!);
          expect(Math.abs(got - exact) / exact, `${code === RCPPS ? "rcp" : "rsqrt"}(${xs[l]})`).toBeLessThanOrEqual(
            bound,
          );
        }
      }
    }
  });

  it("RCPPS/RSQRTPS need an aligned m128, the SS forms read an unaligned m32; 66/F2 forms are #UD", () => {
    const { cpu, seen, mem } = machine([0x0f, 0x53, 0x00, 0xf3, 0x0f, 0x52, 0x08, 0x0f, 0x52, 0x00]); // rcpps xmm0,[rax]; rsqrtss xmm1,[rax]; rsqrtps xmm0,[rax]
    mem.write(DATA + 4, 4, f32(64));
    cpu.setReg64(REG.RAX, BigInt(DATA + 4));
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    cpu.rip = CODE + 3;
    seen.length = 0;
    cpu.run({ maxInstructions: 10 });
    expect(seen).toEqual([{ vector: VECTOR.GP, errorCode: 0 }]);
    expect(cpu.getRip()).toBe(BigInt(CODE + 7));
    expect(cpu.xmm[4]).toBe(f32(0.125));
    for (const pfx of [0x66, 0xf2]) {
      const m = machine([pfx, 0x0f, 0x53, 0xc1]);
      m.cpu.run({ maxInstructions: 10 });
      expect(m.seen).toEqual([{ vector: VECTOR.UD, errorCode: null }]);
    }
  });
});
