import { AH, type MemOperand, mem } from "./encode";
import type { Rng } from "./prng";

/**
 * The environment instruction generators draw into, and the helpers they
 * share: register choice (never RSP as a destination, AH–BH only without
 * REX), interesting operand values, memory operands inside the scratch buffer.
 */

/** Register numbers and the 64-bit mask the generators use. */
export const RSP = 4;
/** RCX (the count register). */
export const RCX = 1;
/** 2^64 − 1. */
export const M64 = (1n << 64n) - 1n;

/** Where an instruction generator puts its instruction and its register choices. */
export interface Env {
  rng: Rng;
  /** Initial register values (the generator may set the ones it uses as operands). */
  regs: bigint[];
  /** The scratch buffer (its length is what the case compares). */
  memory: Uint8Array;
  /** The register that holds the scratch buffer's address. */
  memReg: number;
  /** Registers the instruction must not write (RSP, and in sequences the memory register). */
  avoid: Set<number>;
  /**
   * Registers whose initial value is already chosen for a reason (the memory
   * register, index registers, explicit operand values): later random choices
   * leave them alone.
   */
  pinned: Set<number>;
  /** A single-instruction case: operand values may be chosen freely, index registers used. */
  single: boolean;
  /**
   * Put memory operands at the end of the scratch page, often crossing into
   * the unmapped page after it (a fault natively and in the emulator).
   */
  edge: boolean;
  /** The case uses the stack (the emulator then zeroes it, as the native harness does). */
  usesStack: boolean;
  /** Undefined results the instruction produces (SHLD/SHRD 16-bit with a count above 16, BSWAP r16). */
  undefinedRegs: [number, bigint][];
  undefinedMemory: [number, number] | undefined;
}

/** An instruction generator: returns the bytes of one instruction. */
export type InstrGen = (env: Env) => number[];

/** Thrown by a generator that cannot draw anything in this environment (its fixed registers are reserved). */
export class Redraw extends Error {
  constructor() {
    super("redraw");
  }
}

/** Every operand size. */
export const SIZES = [1, 2, 4, 8] as const;
/** The operand sizes of instructions without a byte form. */
export const WIDE_SIZES = [2, 4, 8] as const;

export function maskOf(size: number): bigint {
  return (1n << BigInt(size * 8)) - 1n;
}

/** A register the instruction may write: not RSP, not in `env.avoid`, not in `also`. */
export function destReg(env: Env, also: number[] = []): number {
  for (;;) {
    const r = env.rng.below(16);
    if (r !== RSP && !env.avoid.has(r) && !also.includes(r)) return r;
  }
}

/** A register the instruction only reads (RSP allowed now and then; its value is fixed). */
export function srcReg(env: Env): number {
  const r = env.rng.below(16);
  return r === RSP && env.rng.chance(0.7) ? 0 : r;
}

/**
 * Byte-register choice for one instruction: either the legacy set (AL–BL and
 * AH–BH, no REX) or the REX set (AL–BL, BPL–DIL, R8B–R15B), never SPL.
 */
export function byteRegs(env: Env): { legacy: boolean; pick: (write: boolean) => number } {
  const legacy = env.rng.chance(0.35);
  const pick = (write: boolean) => {
    for (;;) {
      let r: number;
      if (legacy) {
        const k = env.rng.below(8);
        r = k < 4 ? k : AH + (k - 4);
      } else r = env.rng.below(16);
      if (r === RSP) continue;
      const full = r >= AH ? r - AH : r;
      if (write && env.avoid.has(full)) continue;
      return r;
    }
  };
  return { legacy, pick };
}

/**
 * Sets the initial value of register `r` (a byte register code for size 1):
 * `value`, which pins the register, or else an interesting operand of `size`
 * unless the register is pinned. Sequences keep their random registers.
 */
export function setOperand(env: Env, r: number, size: number, value?: bigint): void {
  if (!env.single) return;
  const full = r >= AH ? r - AH : r;
  if (full === RSP || full === env.memReg) return;
  if (value === undefined && env.pinned.has(full)) return;
  const v = value ?? env.rng.operand(size);
  if (value !== undefined) env.pinned.add(full);
  if (r >= AH) env.regs[full] = (env.regs[full]! & ~0xff00n) | ((v & 0xffn) << 8n);
  else env.regs[r] = v & M64;
}

/** Writes `size` bytes of `v` into the scratch buffer at `offset`. */
export function poke(env: Env, offset: number, size: number, v: bigint): void {
  for (let k = 0; k < size && offset + k < env.memory.length; k++)
    env.memory[offset + k] = Number((v >> BigInt(8 * k)) & 0xffn);
}

/**
 * A memory operand inside the scratch buffer: [memReg + disp] or, in single
 * cases, [memReg + index·scale + disp] with a small index. `align` forces the
 * offset to a multiple; `legacy` keeps base and index below R8 (no REX).
 * Returns the operand and the buffer offset it addresses.
 */
export function memOperand(env: Env, size: number, opts: { align?: number; legacy?: boolean; at?: number } = {}) {
  const rng = env.rng;
  const offset = opts.at ?? pickOffset(env, size, opts.align ?? 1);
  let index = -1;
  let scale: 0 | 1 | 2 | 3 = 0;
  let indexValue = 0;
  if (env.single && rng.chance(0.4)) {
    for (;;) {
      index = rng.below(opts.legacy ? 8 : 16);
      if (index !== RSP && !env.pinned.has(index)) break;
    }
    indexValue = rng.below(16);
    scale = rng.below(4) as 0 | 1 | 2 | 3;
    env.regs[index] = BigInt(indexValue);
    env.pinned.add(index);
  }
  const disp = offset - (indexValue << scale);
  const operand: MemOperand = mem(env.memReg, disp, index, scale);
  return { operand, offset, addr32: env.single && rng.chance(0.1) };
}

/**
 * A buffer offset for an operand of `size` bytes aligned to `align`: anywhere
 * in the buffer, or (edge mode) at its end, crossing it one time in two.
 */
export function pickOffset(env: Env, size: number, align: number): number {
  const len = env.memory.length;
  if (env.edge) {
    const off = len - size + env.rng.range(-3, size - 1);
    return Math.max(0, Math.floor(off / align) * align);
  }
  return Math.floor(env.rng.below(len - size + 1) / align) * align;
}

/** Fills the operand at `offset` with an interesting value of `size` (the bytes inside the buffer). */
export function seedMemory(env: Env, offset: number, size: number, value?: bigint): void {
  poke(env, offset, size, value ?? env.rng.operand(size));
}

export function immOf(env: Env, size: 1 | 2 | 4, opSize: number): { size: 1 | 2 | 4; value: bigint } {
  const rng = env.rng;
  if (rng.chance(0.5)) return { size, value: rng.interesting(size) };
  // Values that sign-extend to something interesting at the operand size.
  return { size, value: BigInt.asUintN(size * 8, rng.operand(Math.min(size, opSize))) };
}

/**
 * Draws one instruction from `pick()`, retrying when the encoder rejects the
 * operand mix (AH–BH together with a register that needs REX) or the generator
 * cannot work in this environment: such draws are not encodable, not failures.
 */
export function draw(env: Env, pick: () => InstrGen): number[] {
  for (let attempt = 0; ; attempt++) {
    try {
      return pick()(env);
    } catch (e) {
      const retry = e instanceof Redraw || (e instanceof Error && e.message.startsWith("encode:"));
      if (attempt > 100 || !retry) throw e;
    }
  }
}
