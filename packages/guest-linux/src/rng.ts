/**
 * A small deterministic pseudo-random generator (mulberry32 over a 32-bit state
 * mixed from the seed). Every random choice of the guest (KASLR, scattered page
 * allocation) comes from one of these, seeded from the configuration.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number | bigint) {
    let s = 0x9e3779b9;
    const b = BigInt.asUintN(64, BigInt(seed));
    s = mix(s ^ Number(b & 0xffffffffn));
    s = mix(s ^ Number(b >> 32n));
    this.state = s >>> 0;
  }

  /** The next 32-bit unsigned value. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniformly distributed integer in `[0, n)` (n ≤ 2^32). */
  below(n: number): number {
    if (n <= 1) return 0;
    // Rejection sampling keeps the distribution exact.
    const limit = Math.floor(4294967296 / n) * n;
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }

  /** A derived generator for an independent purpose (so adding draws to one use does not shift another). */
  fork(tag: number): SeededRandom {
    return new SeededRandom((BigInt(this.nextU32()) << 32n) | BigInt((tag ^ this.nextU32()) >>> 0));
  }
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
