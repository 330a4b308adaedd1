import { encodeModrm, type RmOperand, reg } from "./encode";
import {
  byteRegs,
  destReg,
  type InstrGen,
  M64,
  maskOf,
  memOperand,
  pickOffset,
  Redraw,
  RSP,
  SIZES,
  seedMemory,
  setOperand,
  srcReg,
  WIDE_SIZES,
} from "./gen-env";

/** Generators for the bit operations and the compare-exchange family. */

// ---------------------------------------------------------------- bit operations

/**
 * BT BTS BTR BTC with a register or imm8 bit offset. Memory forms with a
 * register offset address the bit string around the middle of a 4 KiB
 * buffer, so negative and large offsets stay inside it.
 */
export const bitTest: InstrGen = (env) => {
  const rng = env.rng;
  const kind = rng.below(4);
  const size = rng.pick(WIDE_SIZES);
  const bits = size * 8;
  const immediate = rng.chance(0.4);
  const useMem = rng.chance(0.5) && env.memory.length >= 1024;
  const lock = kind !== 0 && useMem && rng.chance(0.2);
  let offReg = -1;
  if (!immediate) {
    offReg = srcReg(env);
    if (offReg === RSP) offReg = 0;
    if (offReg === env.memReg && useMem) return bitTest(env);
  }
  let rm: RmOperand;
  let addr32 = false;
  if (useMem) {
    const len = env.memory.length;
    const centre = Math.floor(len / 2 / size) * size;
    // The word the instruction will touch, anywhere in the buffer; then an offset that reaches it.
    const word = rng.below(Math.floor(len / size));
    const bit = rng.below(bits);
    if (!immediate && env.single) {
      const bitOffset = BigInt((word * size - centre) / size) * BigInt(bits) + BigInt(bit);
      setOperand(env, offReg, 8, BigInt.asUintN(64, bitOffset) & M64);
      const m = memOperand(env, 1, { at: centre });
      rm = m.operand;
      addr32 = m.addr32;
    } else {
      const m = memOperand(env, size);
      rm = m.operand;
      addr32 = m.addr32;
      if (!immediate && !env.single) setOperand(env, offReg, size);
    }
  } else {
    const r = kind === 0 ? srcReg(env) : destReg(env);
    setOperand(env, r, size);
    rm = reg(r);
    if (!immediate && r !== offReg) setOperand(env, offReg, size);
  }
  if (immediate) {
    const imm = { size: 1 as const, value: BigInt(rng.below(256)) };
    return encodeModrm({ op: 0x1ba, size, reg: 4 + kind, rm, imm, addr32, lock });
  }
  return encodeModrm({ op: [0x1a3, 0x1ab, 0x1b3, 0x1bb][kind]!, size, reg: offReg, rm, addr32, lock });
};

/** BSF BSR (0F BC/BD), TZCNT LZCNT (F3 0F BC/BD), POPCNT (F3 0F B8); zero sources often. */
export const bitScan: InstrGen = (env) => {
  const rng = env.rng;
  const kind = rng.below(5);
  const size = rng.pick(WIDE_SIZES);
  const dst = destReg(env);
  setOperand(env, dst, 8);
  const value = rng.chance(0.2) ? (rng.u64() & ~maskOf(size) & M64) | 0n : undefined;
  let rm: RmOperand;
  let addr32 = false;
  if (rng.chance(0.3)) {
    const m = memOperand(env, size);
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size, value);
  } else {
    const r = srcReg(env);
    if (r !== dst) setOperand(env, r, size, value);
    rm = reg(r);
  }
  const op = kind === 4 ? 0x1b8 : kind & 1 ? 0x1bd : 0x1bc;
  const rep = kind >= 2 ? 0xf3 : undefined;
  return encodeModrm({ op, size, reg: dst, rm, addr32, ...(rep ? { rep } : {}) });
};

// ---------------------------------------------------------------- compare-exchange

/** CMPXCHG and XADD, register and memory destinations, with and without LOCK. */
export const exchangeAdd: InstrGen = (env) => {
  const rng = env.rng;
  const xadd = rng.chance(0.4);
  const size = rng.pick(SIZES);
  if (!xadd && env.avoid.has(0)) return exchangeAdd(env);
  const bytes = size === 1 ? byteRegs(env) : null;
  const src = bytes ? bytes.pick(xadd) : xadd ? destReg(env) : srcReg(env);
  setOperand(env, src, size);
  const acc = rng.operand(size);
  if (!xadd) setOperand(env, 0, 8, acc);
  let rm: RmOperand;
  let addr32 = false;
  let lock = false;
  const equal = rng.chance(0.5);
  if (rng.chance(0.4)) {
    const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size, equal ? acc & maskOf(size) : undefined);
    lock = rng.chance(0.5);
  } else {
    const r = bytes ? bytes.pick(true) : destReg(env);
    if (r !== 0 && r !== src) setOperand(env, r, size, equal ? acc : undefined);
    rm = reg(r);
  }
  return encodeModrm({
    op: (xadd ? 0x1c0 : 0x1b0) + (size === 1 ? 0 : 1),
    size,
    reg: src,
    rm,
    regIsByte: size === 1,
    rmIsByte: size === 1,
    addr32,
    lock,
  });
};

/** CMPXCHG8B / CMPXCHG16B (misaligned 16B raises #GP; a register operand #UD). */
export const cmpxchgWide: InstrGen = (env) => {
  const rng = env.rng;
  if (env.avoid.has(0) || env.avoid.has(2)) throw new Redraw();
  const wide = rng.chance(0.5);
  const size = wide ? 16 : 8;
  const equal = rng.chance(0.5);
  const lo = rng.operand(8);
  const hi = rng.operand(8);
  if (wide) {
    setOperand(env, 0, 8, lo);
    setOperand(env, 2, 8, hi);
  } else {
    setOperand(env, 0, 8, (rng.u64() & ~0xffffffffn) | (lo & 0xffffffffn));
    setOperand(env, 2, 8, (rng.u64() & ~0xffffffffn) | ((lo >> 32n) & 0xffffffffn));
  }
  setOperand(env, 1, 8);
  setOperand(env, 3, 8);
  if (rng.chance(0.02)) return encodeModrm({ op: 0x1c7, size: wide ? 8 : 4, reg: 1, rm: reg(destReg(env)) });
  const misaligned = wide && rng.chance(0.15);
  const align = wide && !misaligned ? 16 : 1;
  const at = pickOffset(env, size, align);
  const m = memOperand(env, size, { align, at: misaligned && at % 16 === 0 ? at + 8 : at });
  if (wide) {
    seedMemory(env, m.offset, 8, equal ? lo : undefined);
    seedMemory(env, m.offset + 8, 8, equal ? hi : undefined);
  } else seedMemory(env, m.offset, 8, equal ? lo : undefined);
  return encodeModrm({
    op: 0x1c7,
    size: wide ? 8 : 4,
    reg: 1,
    rm: m.operand,
    addr32: m.addr32,
    lock: rng.chance(0.5),
  });
};
