import type { Cpu } from "../cpu";
import { ARITH_FLAGS, LAZY, PARITY, RFLAGS } from "../flags";

/**
 * Explicit (non-lazy) flag results for the families whose flags do not fit the
 * lazy ADD/SUB/LOGIC model: shifts and rotates, multiply, bit operations.
 */

/**
 * Sets the RFLAGS bits in `mask` from `value` and leaves every other bit as it
 * was (SDM vol. 1, 3.4.3.1). Lazy flags are materialized only when some
 * arithmetic flag survives the write.
 */
export function writeFlags(cpu: Cpu, mask: number, value: number): void {
  if (cpu.lazy.op !== LAZY.NONE) {
    if ((mask & ARITH_FLAGS) !== ARITH_FLAGS) cpu.getRflags();
    else cpu.lazy.op = LAZY.NONE;
  }
  cpu.rflags = (cpu.rflags & ~mask) | (value & mask);
}

/** SF, ZF and PF of a result of `size` bytes (`hi` is the high half when `size` is 8). */
export function szpFlags(size: number, lo: number, hi: number): number {
  let f = PARITY[lo & 0xff] ? RFLAGS.PF : 0;
  if (size === 8) {
    if ((lo | hi) === 0) f |= RFLAGS.ZF;
    if (hi & 0x80000000) f |= RFLAGS.SF;
  } else {
    const bits = size * 8;
    if ((bits === 32 ? lo : lo & ((1 << bits) - 1)) === 0) f |= RFLAGS.ZF;
    if ((lo >>> (bits - 1)) & 1) f |= RFLAGS.SF;
  }
  return f;
}
