/**
 * A seeded pseudo-random generator for the differential generators
 * (SplitMix32: a 32-bit state advanced by a Weyl constant and mixed with two
 * multiply-xorshift rounds), plus the "interesting" operand values that find
 * edge cases: zero, one, all ones, sign boundaries and powers of two of every
 * operand size, with random upper bits where the operand is narrower than the
 * register.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  next32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** An integer in [0, n) (n ≤ 2^32). */
  below(n: number): number {
    return Math.floor((this.next32() / 4294967296) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next32() / 4294967296 < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  /** A uniformly distributed 64-bit unsigned bigint. */
  u64(): bigint {
    return (BigInt(this.next32()) << 32n) | BigInt(this.next32());
  }

  /**
   * A 64-bit register value that stresses an operand of `size` bytes: often
   * an interesting value of that size (the bits above it random), sometimes an
   * interesting 64-bit value, otherwise random.
   */
  operand(size: number): bigint {
    const k = this.below(10);
    const bits = BigInt(size * 8);
    const mask = (1n << bits) - 1n;
    if (k < 4) {
      const v = this.interesting(size) & mask;
      const upper = size === 8 ? 0n : this.chance(0.5) ? 0n : this.u64() & ~mask & M64;
      return upper | v;
    }
    if (k < 5) return this.interesting(8);
    if (k < 6) return BigInt(this.next32() & 0xff) * 0x0101_0101_0101_0101n; // repeated byte
    return this.u64();
  }

  /** An interesting value of `size` bytes (unsigned, masked to the size). */
  interesting(size: number): bigint {
    const bits = size * 8;
    const mask = (1n << BigInt(bits)) - 1n;
    const signMin = 1n << BigInt(bits - 1);
    const p = BigInt(this.below(bits));
    const small = BigInt(this.range(0, 17));
    const candidates = [
      0n,
      1n,
      2n,
      mask,
      mask - 1n,
      signMin,
      signMin - 1n,
      signMin + 1n,
      1n << p,
      (1n << p) - 1n,
      mask ^ (1n << p),
      small,
      mask - small,
      signMin ^ small,
      0x55555555_55555555n & mask,
      0xaaaaaaaa_aaaaaaaan & mask,
    ];
    return this.pick(candidates) & mask;
  }
}

const M64 = (1n << 64n) - 1n;
