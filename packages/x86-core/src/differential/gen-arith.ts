import { AH, encodeModrm, type RmOperand, reg } from "./encode";
import {
  byteRegs,
  destReg,
  type Env,
  type InstrGen,
  immOf,
  M64,
  maskOf,
  memOperand,
  RCX,
  Redraw,
  RSP,
  SIZES,
  seedMemory,
  setOperand,
  srcReg,
  WIDE_SIZES,
} from "./gen-env";

/** Generators for the arithmetic families: ALU, shifts and rotates, multiply and divide. */

// ---------------------------------------------------------------- ALU

/** ADD OR ADC SBB AND SUB XOR CMP in every ModRM and immediate form. */
export const aluBinary: InstrGen = (env) => {
  const rng = env.rng;
  const op = rng.below(8);
  const size = rng.pick(SIZES);
  const form = rng.below(5);
  const base = op * 8 + (size === 1 ? 0 : 1);
  const bytes = size === 1 ? byteRegs(env) : null;
  const pickW = (write: boolean) => (bytes ? bytes.pick(write) : write ? destReg(env) : srcReg(env));
  const writes = op !== 7;
  if (form === 2) {
    // AL/AX/EAX/RAX, imm
    const imm = immOf(env, size === 1 ? 1 : size === 2 ? 2 : 4, size);
    setOperand(env, 0, size);
    if (env.avoid.has(0) && writes) throw new Redraw();
    const out: number[] = [];
    if (size === 2) out.push(0x66);
    if (size === 8) out.push(0x48);
    out.push(op * 8 + (size === 1 ? 4 : 5));
    let v = BigInt.asUintN(imm.size * 8, imm.value);
    for (let k = 0; k < imm.size; k++) {
      out.push(Number(v & 0xffn));
      v >>= 8n;
    }
    return out;
  }
  const useMem = rng.chance(0.3);
  let rm: RmOperand;
  let addr32 = false;
  let lock = false;
  if (useMem) {
    const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size);
    lock = writes && form !== 1 && rng.chance(0.2);
  } else {
    const r = pickW(writes && form !== 1);
    setOperand(env, r, size);
    rm = reg(r);
    lock = rng.chance(0.01); // LOCK on a register destination: #UD
  }
  if (form === 0 || form === 1) {
    const r = pickW(writes && form === 1);
    setOperand(env, r, size);
    return encodeModrm({
      op: base + (form === 1 ? 2 : 0),
      size,
      reg: r,
      rm,
      regIsByte: size === 1,
      rmIsByte: size === 1,
      addr32,
      lock: lock && form === 0,
    });
  }
  // Group 1: 80 (imm8), 81 (imm16/32), 83 (imm8 sign-extended).
  const short = size !== 1 && rng.chance(0.5);
  const opcode = size === 1 ? 0x80 : short ? 0x83 : 0x81;
  const immSize = size === 1 || short ? 1 : size === 2 ? 2 : 4;
  return encodeModrm({
    op: opcode,
    size,
    reg: op,
    rm,
    rmIsByte: size === 1,
    imm: immOf(env, immSize as 1 | 2 | 4, size),
    addr32,
    lock,
  });
};

/** INC DEC NOT NEG (FE/FF, F6/F7) and TEST (84/85, A8/A9, F6/F7 /0). */
export const aluUnary: InstrGen = (env) => {
  const rng = env.rng;
  const size = rng.pick(SIZES);
  const kind = rng.below(6); // inc dec not neg test-imm test-reg
  const bytes = size === 1 ? byteRegs(env) : null;
  const writes = kind < 4;
  let rm: RmOperand;
  let addr32 = false;
  let lock = false;
  if (rng.chance(0.3)) {
    const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size);
    lock = writes && rng.chance(0.2);
  } else {
    const r = bytes ? bytes.pick(writes) : writes ? destReg(env) : srcReg(env);
    setOperand(env, r, size);
    rm = reg(r);
  }
  const w = size === 1 ? 0 : 1;
  switch (kind) {
    case 0:
    case 1:
      return encodeModrm({ op: 0xfe + w, size, reg: kind, rm, rmIsByte: size === 1, addr32, lock });
    case 2:
    case 3:
      return encodeModrm({ op: 0xf6 + w, size, reg: kind, rm, rmIsByte: size === 1, addr32, lock });
    case 4: {
      if (rm.kind === "reg" && rm.reg === 0 && rng.chance(0.5)) {
        // A8/A9: TEST AL/eAX, imm
        const imm = immOf(env, size === 1 ? 1 : size === 2 ? 2 : 4, size);
        const out: number[] = [];
        if (size === 2) out.push(0x66);
        if (size === 8) out.push(0x48);
        out.push(size === 1 ? 0xa8 : 0xa9);
        let v = BigInt.asUintN(imm.size * 8, imm.value);
        for (let k = 0; k < imm.size; k++) {
          out.push(Number(v & 0xffn));
          v >>= 8n;
        }
        return out;
      }
      const imm = immOf(env, size === 1 ? 1 : size === 2 ? 2 : 4, size);
      return encodeModrm({ op: 0xf6 + w, size, reg: rng.below(2), rm, rmIsByte: size === 1, imm, addr32 });
    }
    default: {
      const r = bytes ? bytes.pick(false) : srcReg(env);
      setOperand(env, r, size);
      return encodeModrm({ op: 0x84 + w, size, reg: r, rm, regIsByte: size === 1, rmIsByte: size === 1, addr32 });
    }
  }
};

// ---------------------------------------------------------------- shifts

/** A shift count: 0–70 mostly (covering every masked count and the wrap), sometimes any byte. */
function shiftCount(env: Env): number {
  const rng = env.rng;
  return rng.chance(0.85) ? rng.range(0, 70) : rng.below(256);
}

/** Group 2: ROL ROR RCL RCR SHL SHR SAL(/6) SAR by 1, CL or imm8. */
export const shiftGroup: InstrGen = (env) => {
  const rng = env.rng;
  const kind = rng.below(8);
  const size = rng.pick(SIZES);
  const form = rng.below(3); // 0: by 1, 1: by CL, 2: by imm8
  const bytes = size === 1 ? byteRegs(env) : null;
  let rm: RmOperand;
  let addr32 = false;
  if (form === 1) setOperand(env, RCX, 1, (env.rng.u64() & ~0xffn) | BigInt(shiftCount(env)));
  if (rng.chance(0.3)) {
    const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size);
  } else {
    const r = bytes ? bytes.pick(true) : destReg(env);
    if (!(form === 1 && (r === RCX || r === AH + 1))) setOperand(env, r, size);
    rm = reg(r);
  }
  const w = size === 1 ? 0 : 1;
  const op = form === 0 ? 0xd0 + w : form === 1 ? 0xd2 + w : 0xc0 + w;
  const imm = form === 2 ? { size: 1 as const, value: BigInt(shiftCount(env)) } : undefined;
  return encodeModrm({ op, size, reg: kind, rm, rmIsByte: size === 1, addr32, ...(imm ? { imm } : {}) });
};

/**
 * SHLD/SHRD r/m, reg, imm8|CL. A 16-bit operand with a count above 16 has an
 * undefined result: the destination is then masked. In sequences only the
 * imm8 form with a defined count is drawn (CL may change at run time).
 */
export const shiftDouble: InstrGen = (env) => {
  const rng = env.rng;
  const left = rng.chance(0.5);
  const byCl = env.single ? rng.chance(0.5) : false;
  const size = rng.pick(WIDE_SIZES);
  let count = shiftCount(env);
  if (!env.single && size === 2) count = rng.range(0, 16) + 32 * rng.below(8);
  if (byCl) setOperand(env, RCX, 1, (env.rng.u64() & ~0xffn) | BigInt(count));
  const src = srcReg(env);
  if (!(byCl && src === RCX)) setOperand(env, src, size);
  const undefinedResult = size === 2 && (count & 31) > 16;
  let rm: RmOperand;
  let addr32 = false;
  if (rng.chance(0.3)) {
    const m = memOperand(env, size);
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size);
    if (undefinedResult) env.undefinedMemory = [m.offset, 2];
  } else {
    const r = destReg(env);
    if (!(byCl && r === RCX)) setOperand(env, r, size);
    rm = reg(r);
    if (undefinedResult) env.undefinedRegs.push([r, 0xffffn]);
  }
  const op = (left ? 0x1a4 : 0x1ac) + (byCl ? 1 : 0);
  return encodeModrm({
    op,
    size,
    reg: src,
    rm,
    addr32,
    ...(byCl ? {} : { imm: { size: 1 as const, value: BigInt(count) } }),
  });
};

// ---------------------------------------------------------------- multiply / divide

/** MUL and IMUL (one operand), IMUL r, r/m (0F AF), IMUL r, r/m, imm (69, 6B). */
export const multiply: InstrGen = (env) => {
  const rng = env.rng;
  const form = rng.below(4);
  if (form <= 1) {
    // F6/F7 /4 /5: writes rAX and rDX
    if (env.avoid.has(0) || env.avoid.has(2)) throw new Redraw();
    const size = rng.pick(SIZES);
    setOperand(env, 0, size);
    setOperand(env, 2, 8);
    const bytes = size === 1 ? byteRegs(env) : null;
    let rm: RmOperand;
    let addr32 = false;
    if (rng.chance(0.3)) {
      const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
      rm = m.operand;
      addr32 = m.addr32;
      seedMemory(env, m.offset, size);
    } else {
      const r = bytes ? bytes.pick(false) : srcReg(env);
      if (r !== 0) setOperand(env, r, size);
      rm = reg(r);
    }
    return encodeModrm({ op: size === 1 ? 0xf6 : 0xf7, size, reg: 4 + form, rm, rmIsByte: size === 1, addr32 });
  }
  const size = rng.pick(WIDE_SIZES);
  const dst = destReg(env);
  setOperand(env, dst, size);
  let rm: RmOperand;
  let addr32 = false;
  if (rng.chance(0.3)) {
    const m = memOperand(env, size);
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size);
  } else {
    const r = srcReg(env);
    if (r !== dst) setOperand(env, r, size);
    rm = reg(r);
  }
  if (form === 2) return encodeModrm({ op: 0x1af, size, reg: dst, rm, addr32 });
  const short = rng.chance(0.5);
  const imm = short
    ? { size: 1 as const, value: rng.interesting(1) }
    : { size: (size === 2 ? 2 : 4) as 2 | 4, value: rng.interesting(size === 2 ? 2 : 4) };
  return encodeModrm({ op: short ? 0x6b : 0x69, size, reg: dst, rm, imm, addr32 });
};

/**
 * A dividend (rDX:rAX, or AX) and divisor for DIV/IDIV of `size` bytes,
 * unsigned: mostly ones whose quotient fits (built as q·d + r), plus zero
 * divisors, quotients just past the limit, the signed −2^(n−1) / −1 case and
 * random values (which usually overflow).
 */
function division(env: Env, size: number, signed: boolean): { n: bigint; d: bigint } {
  const rng = env.rng;
  const bits = BigInt(size * 8);
  const mask = maskOf(size);
  const k = rng.below(20);
  if (k === 0) return { n: rng.u64() & ((1n << (2n * bits)) - 1n), d: 0n };
  if (k === 1 && signed) return { n: BigInt.asUintN(Number(2n * bits), -(1n << (bits - 1n))), d: mask };
  if (k === 2) return { n: rng.u64() & ((1n << (2n * bits)) - 1n), d: rng.interesting(size) };
  let d = rng.chance(0.5) ? rng.interesting(size) : rng.u64() & mask;
  if (d === 0n) d = 1n;
  if (!signed) {
    let q = rng.chance(0.5) ? rng.interesting(size) : rng.u64() & mask;
    if (k === 3) q = mask + 1n; // just too large
    const r = rng.u64() % d;
    return { n: (q * d + r) & ((1n << (2n * bits)) - 1n), d };
  }
  const sd = BigInt.asIntN(Number(bits), d);
  let q = BigInt.asIntN(Number(bits), rng.chance(0.5) ? rng.interesting(size) : rng.u64() & mask);
  if (k === 3) q = rng.chance(0.5) ? 1n << (bits - 1n) : -(1n << (bits - 1n)) - 1n;
  const ad = sd < 0n ? -sd : sd;
  let r = rng.u64() % ad;
  // The remainder takes the dividend's sign.
  const n0 = q * sd;
  if (n0 < 0n || (n0 === 0n && rng.chance(0.5))) r = -r;
  const n = n0 + r;
  return { n: BigInt.asUintN(Number(2n * bits), n), d };
}

/** DIV and IDIV (F6/F7 /6 /7), with dividends built to hit every #DE boundary. */
export const divide: InstrGen = (env) => {
  const rng = env.rng;
  if (env.avoid.has(0) || env.avoid.has(2)) throw new Redraw();
  const size = rng.pick(SIZES);
  const signed = rng.chance(0.5);
  const { n, d } = division(env, size, signed);
  const bits = BigInt(size * 8);
  const mask = maskOf(size);
  if (size === 1) setOperand(env, 0, 8, (rng.u64() & ~0xffffn) | (n & 0xffffn));
  else {
    setOperand(env, 0, 8, (rng.u64() & ~mask & M64) | (n & mask));
    setOperand(env, 2, 8, (rng.u64() & ~mask & M64) | ((n >> bits) & mask));
  }
  let rm: RmOperand;
  let addr32 = false;
  if (rng.chance(0.3) || !env.single) {
    const m = memOperand(env, size);
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, size, d);
  } else {
    let r: number;
    for (;;) {
      r = rng.below(16);
      if (r !== RSP && r !== 0 && r !== 2 && r !== env.memReg && !env.avoid.has(r)) break;
    }
    // CH, DH, BH now and then (not AH: it is part of the dividend AX).
    if (size === 1 && r >= 5 && r < 8 && rng.chance(0.5)) r = AH + (r - 4);
    setOperand(env, r, size, (rng.u64() & ~mask & M64) | d);
    rm = reg(r);
  }
  return encodeModrm({
    op: size === 1 ? 0xf6 : 0xf7,
    size,
    reg: signed ? 7 : 6,
    rm,
    rmIsByte: size === 1,
    addr32,
  });
};
