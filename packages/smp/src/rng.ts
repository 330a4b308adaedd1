import { SmpError } from "./errors";

/**
 * A seeded pseudo-random generator: xoshiro128** (Blackman and Vigna) seeded with four
 * outputs of SplitMix32 (the 32-bit variant with the "lowbias32" finalizer). Deterministic
 * across platforms, 32-bit integer arithmetic only, no host entropy. One per machine;
 * {@link SeededRng.fork} derives independent streams for other consumers (scheduling
 * jitter, KASLR) so adding a consumer does not shift the others' sequences.
 */
export class SeededRng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `seed`: a safe integer or a bigint (its low 64 bits are used). */
  constructor(seed: number | bigint) {
    let lo: number;
    let hi: number;
    if (typeof seed === "bigint") {
      const v = BigInt.asUintN(64, seed);
      lo = Number(v & 0xffffffffn);
      hi = Number(v >> 32n);
    } else {
      if (!Number.isSafeInteger(seed))
        throw new SmpError("INVALID_ARGUMENT", "seed must be a safe integer or a bigint", { seed });
      const v = BigInt.asUintN(64, BigInt(seed));
      lo = Number(v & 0xffffffffn);
      hi = Number(v >> 32n);
    }
    this.reseed(lo, hi);
  }

  private reseed(lo: number, hi: number): void {
    let state = (lo ^ Math.imul(hi, 0x85ebca6b)) | 0;
    const next = (): number => {
      state = (state + 0x9e3779b9) | 0;
      return splitmixFinal(state);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** The next 32-bit output as an unsigned number. */
  nextU32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform integer in `[0, bound)` (rejection sampling, no modulo bias); `bound` in 1..2^32. */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32)
      throw new SmpError("INVALID_ARGUMENT", "bound must be an integer in 1..2^32", { bound });
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }

  /** A uniform number in `[0, 1)` with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** A new generator seeded from this one's next two outputs (an independent stream). */
  fork(): SeededRng {
    const r = new SeededRng(0);
    r.reseed(this.nextU32(), this.nextU32());
    return r;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function splitmixFinal(z: number): number {
  z ^= z >>> 16;
  z = Math.imul(z, 0x21f0aaad);
  z ^= z >>> 15;
  z = Math.imul(z, 0x735a2d97);
  z ^= z >>> 15;
  return z | 0;
}
