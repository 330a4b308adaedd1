import { decode } from "../decode/decoder";
import { Insn } from "../decode/insn";
import { branchOver } from "./gen-data";
import { draw, type Env, type InstrGen, RSP, SIZES } from "./gen-env";
import type { Rng } from "./prng";
import type { DiffCase } from "./runner";
import { ARITH, flagEffect } from "./undefined-flags";

/**
 * Case generators for the integer differential suite. Each instruction
 * generator draws one instruction (bytes plus the register values that make it
 * interesting) into an {@link Env}; {@link singleCase} wraps one instruction
 * into a case, {@link sequenceCase} strings several together while keeping
 * every flag an instruction reads defined.
 */

export { aluBinary, aluUnary, divide, multiply, shiftDouble, shiftGroup } from "./gen-arith";
export { bitScan, bitTest, cmpxchgWide, exchangeAdd } from "./gen-bits";
export { branchOver, conditional, dataMove, stackMisc } from "./gen-data";
export { type Env, type InstrGen, Redraw } from "./gen-env";

// ---------------------------------------------------------------- cases

/**
 * A fresh environment: random registers, a scratch buffer of `memLength` bytes
 * in a random register; `edge` puts memory operands at the buffer's end (use
 * it with a 4096-byte buffer, so that the end is the unmapped guard page).
 */
export function newEnv(rng: Rng, memLength: number, single: boolean, edge = false): Env {
  const regs = Array.from({ length: 16 }, () => rng.operand(rng.pick(SIZES)));
  regs[RSP] = 0n;
  let memReg = rng.below(16);
  if (memReg === RSP) memReg = 7;
  const memory = new Uint8Array(memLength);
  for (let k = 0; k < memLength; k++) memory[k] = rng.below(256);
  return {
    rng,
    regs,
    memory,
    memReg,
    avoid: new Set(single ? [RSP] : [RSP, memReg]),
    pinned: new Set([memReg]),
    single,
    edge,
    usesStack: false,
    undefinedRegs: [],
    undefinedMemory: undefined,
  };
}

function flagsIn(rng: Rng): bigint {
  return BigInt(rng.next32() & 0xcd5);
}

/** One instruction from `gen` as a case. */
export function singleCase(rng: Rng, family: string, gen: InstrGen, memLength = 256, edge = false): DiffCase {
  const env = newEnv(rng, memLength, true, edge);
  const bytes = draw(env, () => gen);
  return toCase(env, family, bytes);
}

function toCase(env: Env, family: string, bytes: number[]): DiffCase {
  const c: DiffCase = {
    family,
    code: Uint8Array.from(bytes),
    regs: env.regs,
    rflags: flagsIn(env.rng),
    memory: env.memory,
    memReg: env.memReg,
  };
  if (env.undefinedRegs.length > 0) c.undefinedRegs = env.undefinedRegs;
  if (env.usesStack) c.usesStack = true;
  if (env.undefinedMemory !== undefined) c.undefinedMemory = env.undefinedMemory;
  return c;
}

const CL_PROBES = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63];

/**
 * Static flag effect of an instruction for sequence building: the flags it
 * may read, may leave undefined, and surely defines — over every CL value that
 * matters, since CL is not known until run time.
 */
function staticEffect(bytes: number[]): { reads: number; maybeUndefined: number; defines: number } {
  const code = Uint8Array.from(bytes);
  const insn = new Insn();
  let reads = 0;
  let maybeUndefined = 0;
  let defines = 0;
  // After a forward branch the rest of the group may not run: it can only add undefined flags.
  let skippable = false;
  for (let off = 0; off < code.length; off += insn.len) {
    decode(code, off, code.length - off, insn);
    let r = 0;
    let u = 0;
    let d = ARITH;
    for (const cl of CL_PROBES) {
      const e = flagEffect(insn, cl);
      if (e === null) throw new Error(`generator produced an instruction without a flag-table entry: ${bytes}`);
      r |= e.reads;
      u |= e.undefined;
      d &= e.writes & ~e.undefined;
    }
    // Sequential composition: reads of flags still undefined from earlier in this group count too.
    reads |= r & ~defines;
    if (skippable) maybeUndefined |= u;
    else {
      maybeUndefined = (maybeUndefined & ~d) | u;
      defines = (defines | d) & ~u;
    }
    const op = insn.op;
    if (
      (op >= 0x70 && op <= 0x7f) ||
      (op >= 0x180 && op <= 0x18f) ||
      (op >= 0xe0 && op <= 0xe3) ||
      op === 0xe9 ||
      op === 0xeb
    )
      skippable = true;
  }
  return { reads, maybeUndefined, defines };
}

/** The native harness takes at most 64 bytes of code. */
const MAX_SEQUENCE_BYTES = 64;

/**
 * A sequence of up to `length` instructions drawn from `gens` (fewer when the
 * 64-byte code limit is reached), sharing registers and one scratch buffer; an
 * instruction that would read a flag an earlier one left undefined is redrawn,
 * and some instructions get a forward branch over them.
 */

export function sequenceCase(rng: Rng, family: string, gens: readonly InstrGen[], length: number): DiffCase {
  const env = newEnv(rng, 256, false);
  const code: number[] = [];
  let undef = 0;
  for (let k = 0; k < length; k++) {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 50) throw new Error("sequenceCase: no instruction fits");
      const bytes = draw(env, () => rng.pick(gens));
      const e = staticEffect(bytes);
      if ((e.reads & undef) !== 0) continue;
      if (code.length + bytes.length > MAX_SEQUENCE_BYTES) return toCase(env, family, code);
      if (rng.chance(0.15) && code.length + bytes.length + 6 <= MAX_SEQUENCE_BYTES) {
        // A forward branch over the instruction: it may or may not run.
        const branch = branchOver(env, bytes.length);
        const b = staticEffect(branch);
        if ((b.reads & undef) !== 0) continue;
        undef = (undef & ~b.defines) | b.maybeUndefined | e.maybeUndefined;
        code.push(...branch);
      } else undef = (undef & ~e.defines) | e.maybeUndefined;
      code.push(...bytes);
      break;
    }
  }
  return toCase(env, family, code);
}
