/**
 * RFLAGS bits (SDM vol. 1, 3.4.3).
 *
 *  21 20  19  18 17 16 14 13-12 11 10  9  8  7  6  4  2  0
 *  ID VIP VIF AC VM RF NT IOPL  OF DF IF TF SF ZF AF PF CF   (bit 1 is always 1)
 */
export const RFLAGS = {
  CF: 1 << 0,
  FIXED1: 1 << 1,
  PF: 1 << 2,
  AF: 1 << 4,
  ZF: 1 << 6,
  SF: 1 << 7,
  TF: 1 << 8,
  IF: 1 << 9,
  DF: 1 << 10,
  OF: 1 << 11,
  IOPL: 3 << 12,
  NT: 1 << 14,
  RF: 1 << 16,
  VM: 1 << 17,
  AC: 1 << 18,
  VIF: 1 << 19,
  VIP: 1 << 20,
  ID: 1 << 21,
} as const;

/**
 * Flags POPF and IRET may change in 64-bit mode before the privilege rules
 * for IF and IOPL are applied (SDM vol. 2, POPF and IRET).
 */
export const POPPABLE_FLAGS =
  RFLAGS.CF |
  RFLAGS.PF |
  RFLAGS.AF |
  RFLAGS.ZF |
  RFLAGS.SF |
  RFLAGS.TF |
  RFLAGS.DF |
  RFLAGS.OF |
  RFLAGS.NT |
  RFLAGS.AC |
  RFLAGS.ID;

/** The six arithmetic status flags. */
export const ARITH_FLAGS = RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.OF;

/**
 * The operation whose operands are kept for lazy flag evaluation. After any
 * other operation the flags are explicit (`LAZY.NONE`).
 */
export const LAZY = {
  NONE: 0,
  ADD: 1,
  ADC: 2,
  SUB: 3,
  SBB: 4,
  LOGIC: 5,
  INC: 6,
  DEC: 7,
} as const;

/** Parity of the low byte: 1 when the number of set bits is even (PF). */
export const PARITY = /* @__PURE__ */ (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let n = 0;
    for (let b = i; b !== 0; b >>= 1) n += b & 1;
    t[i] = n % 2 === 0 ? 1 : 0;
  }
  return t;
})();

/**
 * Lazily evaluated arithmetic flags. Operands and result are kept as 32-bit
 * halves (`*Hi` is 0 for sizes below 8). `size` is the operand size in bytes.
 */
export class LazyFlags {
  op = 0;
  size = 4;
  a = 0;
  aHi = 0;
  b = 0;
  bHi = 0;
  r = 0;
  rHi = 0;
  /** Carry in (ADC/SBB) or the preserved CF (INC/DEC). */
  cin = 0;

  /** Computes the six arithmetic flags from the kept operation. */
  compute(): number {
    const size = this.size;
    // Work on the most significant 32-bit half of the operand, shifted so its sign bit is bit 31.
    let sign: number;
    let zero: boolean;
    if (size === 8) {
      sign = this.rHi >>> 31;
      zero = (this.r | this.rHi) === 0;
    } else {
      const bits = size * 8;
      const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
      sign = (this.r >>> (bits - 1)) & 1;
      zero = (this.r & mask) === 0;
    }
    let f = 0;
    if (zero) f |= RFLAGS.ZF;
    if (sign) f |= RFLAGS.SF;
    if (PARITY[this.r & 0xff]) f |= RFLAGS.PF;
    const op = this.op;
    if (op === LAZY.LOGIC) return f;
    if (((this.a ^ this.b ^ this.r) & 0x10) !== 0) f |= RFLAGS.AF;
    // Sign bits of a, b, r at the operand's top bit.
    const sh = size === 8 ? 31 : size * 8 - 1;
    const ah = size === 8 ? this.aHi : this.a;
    const bh = size === 8 ? this.bHi : this.b;
    const rh = size === 8 ? this.rHi : this.r;
    switch (op) {
      case LAZY.ADD:
      case LAZY.ADC: {
        if ((((ah ^ rh) & (bh ^ rh)) >>> sh) & 1) f |= RFLAGS.OF;
        const c = ltu(this.r, this.rHi, this.a, this.aHi, size);
        const eq = equ(this.r, this.rHi, this.a, this.aHi, size);
        if (c || (op === LAZY.ADC && this.cin !== 0 && eq)) f |= RFLAGS.CF;
        break;
      }
      case LAZY.SUB:
      case LAZY.SBB: {
        if ((((ah ^ bh) & (ah ^ rh)) >>> sh) & 1) f |= RFLAGS.OF;
        const c = ltu(this.a, this.aHi, this.b, this.bHi, size);
        const eq = equ(this.a, this.aHi, this.b, this.bHi, size);
        if (c || (op === LAZY.SBB && this.cin !== 0 && eq)) f |= RFLAGS.CF;
        break;
      }
      case LAZY.INC:
        // OF when the result is the most negative value; CF preserved.
        if (((rh >>> sh) & 1) === 1 && ((ah >>> sh) & 1) === 0) f |= RFLAGS.OF;
        if (this.cin) f |= RFLAGS.CF;
        break;
      case LAZY.DEC:
        if (((rh >>> sh) & 1) === 0 && ((ah >>> sh) & 1) === 1) f |= RFLAGS.OF;
        if (this.cin) f |= RFLAGS.CF;
        break;
    }
    return f;
  }
}

function maskOf(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
}

/** Unsigned x < y for values of `size` bytes given as halves. */
function ltu(x: number, xHi: number, y: number, yHi: number, size: number): boolean {
  if (size === 8) {
    if (xHi >>> 0 !== yHi >>> 0) return xHi >>> 0 < yHi >>> 0;
    return x >>> 0 < y >>> 0;
  }
  const m = maskOf(size);
  return (x & m) >>> 0 < (y & m) >>> 0;
}

function equ(x: number, xHi: number, y: number, yHi: number, size: number): boolean {
  if (size === 8) return x >>> 0 === y >>> 0 && xHi >>> 0 === yHi >>> 0;
  const m = maskOf(size);
  return (x & m) >>> 0 === (y & m) >>> 0;
}
