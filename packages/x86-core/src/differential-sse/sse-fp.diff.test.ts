import { describe, expect, it } from "vitest";
import { type NativeCase, runNative } from "../testing/native-oracle";
import { compareResults, EmulatorMirror, prng } from "./mirror";
import { runSseDifferential } from "./run-sse";
import { FP_SPECS } from "./sse-cases";

describe("SSE/SSE2 floating point against the host CPU", () => {
  it("agrees on 30,000 random cases: results, MXCSR flags, EFLAGS, #XM/#GP/#PF/#UD", () => {
    const r = runSseDifferential(FP_SPECS, 30_000, 0x55e_f00d);
    console.log(
      `SSE FP differential: ${r.cases} cases over ${r.perSpec.size} instruction forms compared with the host (${r.faults} ending in an exception)`,
    );
    if (r.failures.length > 0) console.log([...r.failedPerSpec].map(([k, v]) => `${k}:${v}`).join(" "));
    expect(r.failures).toEqual([]);
  });
});

/** Bits of a binary64 `m · 2^e` (m < 2^53, normal result) as a bigint. */
function f64Bits(m: bigint, e: number): bigint {
  const f = new Float64Array([Number(m) * 2 ** e]);
  return new BigUint64Array(f.buffer)[0]!;
}

describe("SSE rounding at the edges of the exponent range against the host CPU", () => {
  it("agrees where tininess before and after rounding differ, and where rounding overflows", () => {
    // Products a·b whose exact value lies just below 2^-1022 (2^-126) or 2^1024 (2^128): rounding
    // to the significand width may or may not carry them over the edge, in every rounding mode,
    // with FTZ/DAZ and UE/OE masked or not; quotients with the same property.
    const rnd = prng(0xed6e);
    const cases: NativeCase[] = [];
    const regs = new Array<bigint>(16).fill(0n);
    const XM = [0x1f80, 0x1780, 0x1b80, 0x1380]; // all masked, UM unmasked, OM unmasked, both
    for (let i = 0; i < 4000; i++) {
      const single = i % 2 === 1;
      const p = single ? 24 : 53;
      const top = 1n << BigInt(2 * p - 1);
      const overflow = rnd() % 3 === 0;
      // A, B in [2^(p-1), 2^p) with A·B just below 2^(2p-1); scaled so that 2^(2p-1) is 2^emin or 2^(emax+1).
      const span = 1n << BigInt(p - 1);
      const A = span + (((BigInt(rnd()) << 21n) ^ BigInt(rnd())) % span);
      const B = (top - 1n) / A;
      if (B >= span << 1n || B < span) continue;
      let a: bigint;
      let b: bigint;
      if (single) {
        const eA = overflow ? -23 : -24;
        const eB = overflow ? 104 : -149;
        a = BigInt(new Uint32Array(new Float32Array([Number(A) * 2 ** eA]).buffer)[0]!);
        b = BigInt(new Uint32Array(new Float32Array([Number(B) * 2 ** eB]).buffer)[0]!);
      } else {
        a = f64Bits(A, overflow ? -52 : -53);
        b = f64Bits(B, overflow ? 971 : -1074);
      }
      const neg = rnd() % 2 === 0;
      if (neg) a |= single ? 0x8000_0000n : 1n << 63n;
      const div = rnd() % 4 === 0;
      const xmm = new Array<bigint>(16).fill(0n);
      let code: number[];
      if (div) {
        // The product, then a division by 1.0 of whatever it became (a denormal, a flushed zero, ∞).
        xmm[0] = b;
        xmm[1] = a;
        code = [single ? 0xf3 : 0xf2, 0x0f, 0x59, 0xc1, single ? 0xf3 : 0xf2, 0x0f, 0x5e, 0xc2]; // mul xmm0, xmm1; div xmm0, xmm2
        xmm[2] = single ? 0x3f80_0000n : 0x3ff0_0000_0000_0000n; // 1.0
      } else {
        xmm[0] = a;
        xmm[1] = b;
        code = [single ? 0xf3 : 0xf2, 0x0f, 0x59, 0xc1];
      }
      const mxcsr =
        XM[rnd() % 4]! | ((rnd() % 4) << 13) | (rnd() % 3 === 0 ? 0x8000 : 0) | (rnd() % 5 === 0 ? 0x40 : 0);
      cases.push({ code: Uint8Array.from(code), regs, rflags: 0n, xmm, mxcsr });
    }
    const native = runNative(cases);
    const mirror = new EmulatorMirror();
    const failures: string[] = [];
    let underflows = 0;
    let overflows = 0;
    for (let i = 0; i < cases.length; i++) {
      const n = native[i]!;
      if (n.mxcsr & 0x10) underflows++;
      if (n.mxcsr & 0x8) overflows++;
      const diff = compareResults(n, mirror.run(cases[i]!));
      if (diff.length > 0 && failures.length < 10)
        failures.push(
          `case ${i} mxcsr=${cases[i]!.mxcsr!.toString(16)} a=${cases[i]!.xmm![0]!.toString(16)} b=${cases[i]!.xmm![1]!.toString(16)}: ${diff.join("; ")}`,
        );
    }
    console.log(
      `SSE edge differential: ${cases.length} cases (${underflows} underflow, ${overflows} overflow on the host)`,
    );
    expect(failures).toEqual([]);
    expect(underflows).toBeGreaterThan(200);
    expect(overflows).toBeGreaterThan(200);
  });
});
