import { describe, expect, it } from "vitest";
import { prng } from "../differential-sse/mirror";
import {
  arith,
  BINARY32,
  BINARY64,
  exactArith,
  FLAG_SLOT,
  FOP,
  f64From,
  fromInteger,
  MXCSR,
  narrow,
  roundExact,
  roundToIntegral,
} from "./sse-softfloat";

const fl = () => new Uint32Array(16);
const RN = 0x1f80;
const RD = 0x1f80 | (1 << 13);
const RU = 0x1f80 | (2 << 13);
const RZ = 0x1f80 | (3 << 13);

describe("exact rounding", () => {
  it("rounds to nearest even, and in the directed modes, with PE only when inexact", () => {
    // 2^53 + 1 and 2^53 + 3 are halfway cases for binary64.
    for (const [m, mx, want] of [
      [(1n << 53n) + 1n, RN, 2 ** 53],
      [(1n << 53n) + 3n, RN, 2 ** 53 + 4],
      [(1n << 53n) + 1n, RU, 2 ** 53 + 2],
      [(1n << 53n) + 1n, RD, 2 ** 53],
      [(1n << 53n) + 1n, RZ, 2 ** 53],
    ] as const) {
      const f = fl();
      expect(roundExact(BINARY64, false, m, 0, false, mx, f)).toBe(want);
      expect(f[FLAG_SLOT]).toBe(MXCSR.PE);
    }
    const f = fl();
    expect(roundExact(BINARY64, true, 3n, -1, false, RN, f)).toBe(-1.5);
    expect(f[FLAG_SLOT]).toBe(0);
  });

  it("a sticky bit breaks a tie upwards", () => {
    const f = fl();
    expect(roundExact(BINARY32, false, (1n << 24n) + 1n, 0, true, RN, f)).toBe(2 ** 24 + 2);
  });

  it("overflows to infinity or to the largest finite value depending on the direction", () => {
    const big = 1n << 1100n;
    const cases = [
      [false, RN, Number.POSITIVE_INFINITY],
      [false, RZ, BINARY64.max],
      [false, RD, BINARY64.max],
      [true, RD, Number.NEGATIVE_INFINITY],
      [true, RU, -BINARY64.max],
    ] as const;
    for (const [neg, mx, want] of cases) {
      const f = fl();
      expect(roundExact(BINARY64, neg, big, 0, false, mx, f)).toBe(want);
      expect(f[FLAG_SLOT]).toBe(MXCSR.OE | MXCSR.PE);
    }
  });

  it("underflow: denormal results, UE only when also inexact (masked), FTZ gives a signed zero", () => {
    let f = fl();
    expect(roundExact(BINARY64, false, 1n, -1074, false, RN, f)).toBe(2 ** -1074);
    expect(f[FLAG_SLOT]).toBe(0);
    f = fl();
    expect(roundExact(BINARY64, false, 3n, -1076, false, RN, f)).toBe(2 ** -1074);
    expect(f[FLAG_SLOT]).toBe(MXCSR.UE | MXCSR.PE);
    f = fl();
    expect(Object.is(roundExact(BINARY64, true, 3n, -1076, false, RN | MXCSR.FZ, f), -0)).toBe(true);
    expect(f[FLAG_SLOT]).toBe(MXCSR.UE | MXCSR.PE);
    // Unmasked UE: signalled even for an exact tiny result.
    f = fl();
    roundExact(BINARY32, false, 1n, -149, false, RN & ~MXCSR.UM, f);
    expect(f[FLAG_SLOT]).toBe(MXCSR.UE);
  });
});

describe("arith: the fast paths agree with the exact BigInt path", () => {
  it("on 40,000 random operand pairs in round-to-nearest", () => {
    const rnd = prng(0xf1_0a7);
    const rand64 = () => {
      const e = 0x3ff + (rnd() % 1200) - 600;
      return f64From(rnd(), (rnd() & 0x800fffff) | (e << 20));
    };
    let checked = 0;
    for (let i = 0; i < 40_000; i++) {
      const single = i % 3 === 0;
      const fmt = single ? BINARY32 : BINARY64;
      const op = [FOP.ADD, FOP.SUB, FOP.MUL, FOP.DIV, FOP.SQRT][rnd() % 5]!;
      let a = rand64();
      let b = rnd() % 4 === 0 ? a * (1 + (rnd() % 8) * 2 ** -50) : rand64();
      if (single) {
        a = Math.fround(a / 2 ** (Math.round(Math.log2(Math.abs(a))) - (rnd() % 60) + 30));
        b = Math.fround(b / 2 ** (Math.round(Math.log2(Math.abs(b))) - (rnd() % 60) + 30));
      }
      if (op === FOP.SQRT) a = Math.abs(a);
      if (a === 0 || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) continue;
      const f1 = fl();
      const f2 = fl();
      const fast = arith(fmt, op, a, b, RN, f1);
      const exact = exactArith(fmt, op, a, b, RN, f2);
      expect({ op, a, b, r: fast, f: f1[FLAG_SLOT] }).toEqual({ op, a, b, r: exact, f: f2[FLAG_SLOT] });
      checked++;
    }
    expect(checked).toBeGreaterThan(39_000);
  });

  it("directed rounding brackets the exact result: RD(x) ≤ RN(x) ≤ RU(x), and RD(-x) = -RU(x)", () => {
    const rnd = prng(7);
    for (let i = 0; i < 5000; i++) {
      const a = f64From(rnd(), 0x3ff00000 | (rnd() & 0xfffff));
      const b = f64From(rnd(), 0x40000000 | (rnd() & 0xfffff));
      const down = arith(BINARY64, FOP.DIV, a, b, RD, fl());
      const near = arith(BINARY64, FOP.DIV, a, b, RN, fl());
      const up = arith(BINARY64, FOP.DIV, a, b, RU, fl());
      expect(down <= near && near <= up).toBe(true);
      expect(arith(BINARY64, FOP.DIV, -a, b, RD, fl())).toBe(-up);
    }
  });
});

describe("conversions", () => {
  it("narrows binary64 to binary32 with the flags of the rounding", () => {
    let f = fl();
    expect(narrow(BINARY32, 1 + 2 ** -30, RN, f)).toBe(1);
    expect(f[FLAG_SLOT]).toBe(MXCSR.PE);
    f = fl();
    expect(narrow(BINARY32, 1e39, RN, f)).toBe(Number.POSITIVE_INFINITY);
    expect(f[FLAG_SLOT]).toBe(MXCSR.OE | MXCSR.PE);
    f = fl();
    expect(narrow(BINARY32, 2 ** -140, RN, f)).toBe(2 ** -140);
    expect(f[FLAG_SLOT]).toBe(0);
  });

  it("integers: exact below 2^p, rounded above; rounding to integral values ties to even", () => {
    const f = fl();
    expect(fromInteger(BINARY32, 16_777_217, RN, f)).toBe(16_777_216);
    expect(f[FLAG_SLOT]).toBe(MXCSR.PE);
    expect(fromInteger(BINARY64, -(1n << 63n), RN, fl())).toBe(-(2 ** 63));
    expect([0.5, 1.5, 2.5, -0.5, -1.5].map((x) => roundToIntegral(x, false, RN, fl()))).toEqual([0, 2, 2, 0, -2]);
    expect(roundToIntegral(-1.5, true, RN, fl())).toBe(-1);
  });
});
