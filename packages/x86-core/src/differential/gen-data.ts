import { encodeModrm, encodeOpReg, type MemOperand, mem, type RmOperand, reg } from "./encode";
import { aluBinary, shiftGroup } from "./gen-arith";
import {
  byteRegs,
  destReg,
  draw,
  type Env,
  type InstrGen,
  immOf,
  maskOf,
  memOperand,
  pickOffset,
  RCX,
  Redraw,
  RSP,
  SIZES,
  seedMemory,
  setOperand,
  srcReg,
  WIDE_SIZES,
} from "./gen-env";

/** Generators for data movement, conditional moves/sets, the stack and forward branches. */

// ---------------------------------------------------------------- conditional moves and sets

/** CMOVcc r, r/m (16/32/64) and SETcc r/m8 for all 16 conditions. */
export const conditional: InstrGen = (env) => {
  const rng = env.rng;
  const cc = rng.below(16);
  if (rng.chance(0.5)) {
    const size = rng.pick(WIDE_SIZES);
    const dst = destReg(env);
    setOperand(env, dst, 8);
    let rm: RmOperand;
    let addr32 = false;
    if (rng.chance(0.3)) {
      const m = memOperand(env, size);
      rm = m.operand;
      addr32 = m.addr32;
      seedMemory(env, m.offset, size);
    } else {
      const r = srcReg(env);
      if (r !== dst) setOperand(env, r, 8);
      rm = reg(r);
    }
    return encodeModrm({ op: 0x140 + cc, size, reg: dst, rm, addr32 });
  }
  const bytes = byteRegs(env);
  let rm: RmOperand;
  let addr32 = false;
  if (rng.chance(0.3)) {
    const m = memOperand(env, 1, { legacy: bytes.legacy });
    rm = m.operand;
    addr32 = m.addr32;
    seedMemory(env, m.offset, 1);
  } else {
    const r = bytes.pick(true);
    setOperand(env, r, 8);
    rm = reg(r);
  }
  return encodeModrm({ op: 0x190 + cc, size: 4, reg: rng.below(8), rm, rmIsByte: true, addr32 });
};

// ---------------------------------------------------------------- data movement

/** MOVZX MOVSX MOVSXD BSWAP XCHG LEA MOV (all forms) CBW/CWD families. */
export const dataMove: InstrGen = (env) => {
  const rng = env.rng;
  const kind = rng.below(9);
  switch (kind) {
    case 0:
    case 1: {
      // MOVZX / MOVSX from r/m8 or r/m16
      const fromWord = rng.chance(0.5);
      const size = fromWord ? rng.pick([4, 8] as const) : rng.pick(WIDE_SIZES);
      const bytes = fromWord ? null : byteRegs(env);
      const dst = destReg(env, bytes?.legacy ? [8, 9, 10, 11, 12, 13, 14, 15] : []);
      let rm: RmOperand;
      let addr32 = false;
      if (rng.chance(0.3)) {
        const m = memOperand(env, fromWord ? 2 : 1, { legacy: bytes?.legacy ?? false });
        rm = m.operand;
        addr32 = m.addr32;
        seedMemory(env, m.offset, fromWord ? 2 : 1);
      } else {
        const r = bytes ? bytes.pick(false) : srcReg(env);
        setOperand(env, r, 8);
        rm = reg(r);
      }
      if (bytes?.legacy && size === 8) return dataMove(env);
      const op = (kind === 0 ? 0x1b6 : 0x1be) + (fromWord ? 1 : 0);
      return encodeModrm({ op, size, reg: dst, rm, rmIsByte: !fromWord, addr32 });
    }
    case 2: {
      // MOVSXD r64, r/m32 (and its 32/16-bit forms)
      const size = rng.pick([8, 8, 4] as const);
      const dst = destReg(env);
      let rm: RmOperand;
      let addr32 = false;
      if (rng.chance(0.3)) {
        const m = memOperand(env, 4);
        rm = m.operand;
        addr32 = m.addr32;
        seedMemory(env, m.offset, 4);
      } else {
        const r = srcReg(env);
        setOperand(env, r, 4);
        rm = reg(r);
      }
      return encodeModrm({ op: 0x63, size, reg: dst, rm, addr32 });
    }
    case 3: {
      // BSWAP r32/r64 (r16 is undefined: masked)
      const size = rng.pick([4, 8, 8, 4, 2] as const);
      const r = destReg(env);
      setOperand(env, r, 8);
      if (size === 2) {
        if (!env.single) return dataMove(env);
        env.undefinedRegs.push([r, 0xffffn]);
      }
      return encodeOpReg(0x1c8, size, r);
    }
    case 4: {
      // XCHG r/m, r and XCHG rAX, r
      const size = rng.pick(SIZES);
      if (size !== 1 && rng.chance(0.3)) {
        if (env.avoid.has(0)) return dataMove(env);
        const r = destReg(env);
        setOperand(env, r, size);
        setOperand(env, 0, size);
        return encodeOpReg(0x90, size, r);
      }
      const bytes = size === 1 ? byteRegs(env) : null;
      const a = bytes ? bytes.pick(true) : destReg(env);
      setOperand(env, a, size);
      let rm: RmOperand;
      let addr32 = false;
      if (rng.chance(0.3)) {
        const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
        rm = m.operand;
        addr32 = m.addr32;
        seedMemory(env, m.offset, size);
      } else {
        const b = bytes ? bytes.pick(true) : destReg(env);
        setOperand(env, b, size);
        rm = reg(b);
      }
      return encodeModrm({
        op: size === 1 ? 0x86 : 0x87,
        size,
        reg: a,
        rm,
        regIsByte: size === 1,
        rmIsByte: size === 1,
        addr32,
      });
    }
    case 5: {
      // LEA with every addressing shape (no memory access: any base, RSP and RIP included)
      const size = rng.pick(WIDE_SIZES);
      const dst = destReg(env);
      const shape = rng.below(4);
      const disp = rng.chance(0.5) ? rng.range(-128, 127) : Number(BigInt.asIntN(32, rng.operand(4)));
      let operand: MemOperand;
      if (shape === 0) operand = mem(16, disp);
      else if (shape === 1) operand = mem(-1, disp, rng.chance(0.5) ? destReg(env) : -1, rng.below(4) as 0 | 1 | 2 | 3);
      else {
        const base = rng.below(16);
        let index = rng.chance(0.6) ? rng.below(16) : -1;
        if (index === RSP) index = -1;
        operand = mem(base, shape === 2 ? 0 : disp, index, rng.below(4) as 0 | 1 | 2 | 3);
        if (base !== RSP) setOperand(env, base, 8);
        if (index >= 0) setOperand(env, index, 8);
      }
      return encodeModrm({ op: 0x8d, size, reg: dst, rm: operand, addr32: rng.chance(0.25) });
    }
    case 6: {
      // MOV r/m, r; MOV r, r/m; MOV r/m, imm
      const size = rng.pick(SIZES);
      const bytes = size === 1 ? byteRegs(env) : null;
      const form = rng.below(3);
      let rm: RmOperand;
      let addr32 = false;
      if (rng.chance(0.4)) {
        const m = memOperand(env, size, { legacy: bytes?.legacy ?? false });
        rm = m.operand;
        addr32 = m.addr32;
        seedMemory(env, m.offset, size);
      } else {
        const r = bytes ? bytes.pick(form !== 1) : form !== 1 ? destReg(env) : srcReg(env);
        setOperand(env, r, size);
        rm = reg(r);
      }
      if (form === 2) {
        const imm = immOf(env, size === 1 ? 1 : size === 2 ? 2 : 4, size);
        return encodeModrm({ op: size === 1 ? 0xc6 : 0xc7, size, reg: 0, rm, rmIsByte: size === 1, imm, addr32 });
      }
      const r = bytes ? bytes.pick(form === 1) : form === 1 ? destReg(env) : srcReg(env);
      setOperand(env, r, size);
      const op = (size === 1 ? 0x88 : 0x89) + (form === 1 ? 2 : 0);
      return encodeModrm({ op, size, reg: r, rm, regIsByte: size === 1, rmIsByte: size === 1, addr32 });
    }
    case 7: {
      // MOV r, imm (B0–BF, imm64 with REX.W)
      const size = rng.pick(SIZES);
      const r = size === 1 ? byteRegs(env).pick(true) : destReg(env);
      const immSize = (size === 8 && rng.chance(0.8) ? 8 : Math.min(size, 4)) as 1 | 2 | 4 | 8;
      const value = rng.operand(immSize) & maskOf(immSize);
      if (size === 8 && immSize !== 8) {
        // C7 /0: imm32 sign-extended
        return encodeModrm({ op: 0xc7, size, reg: 0, rm: reg(r), imm: { size: 4, value } });
      }
      return encodeOpReg(size === 1 ? 0xb0 : 0xb8, size, r, { size: immSize, value });
    }
    default: {
      // CBW/CWDE/CDQE (98), CWD/CDQ/CQO (99)
      const size = rng.pick(WIDE_SIZES);
      if (env.avoid.has(0) || env.avoid.has(2)) throw new Redraw();
      setOperand(env, 0, size);
      setOperand(env, 2, 8);
      const out: number[] = [];
      if (size === 2) out.push(0x66);
      if (size === 8) out.push(0x48);
      out.push(rng.chance(0.5) ? 0x98 : 0x99);
      return out;
    }
  }
};

// ---------------------------------------------------------------- stack, flags and control

const STACK_RSP = 0x1001_fc00n;

/**
 * Stack and miscellaneous data/control instructions: PUSH/POP (register,
 * immediate, memory; 64- and 16-bit), CALL + POP, LAHF/SAHF, CLC/STC/CMC,
 * XLAT, MOV to/from a 64-bit absolute address (moffs), ENTER/LEAVE, and a
 * forward Jcc/JMP/LOOP/JRCXZ over one instruction. Some draws are two or
 * three instructions.
 */
export const stackMisc: InstrGen = (env) => {
  const rng = env.rng;
  env.usesStack = true;
  const k = rng.below(12);
  switch (k) {
    case 0: {
      // PUSH r then POP r' (64- or 16-bit)
      const wide = rng.chance(0.8);
      const a = srcReg(env);
      setOperand(env, a, 8);
      const b = destReg(env);
      const out = encodeOpReg(0x50, wide ? 4 : 2, a);
      return [...out, ...encodeOpReg(0x58, wide ? 4 : 2, b)];
    }
    case 1: {
      // PUSH imm8 / imm32 / imm16, then POP r
      const b = destReg(env);
      const form = rng.below(3);
      const push =
        form === 0
          ? [0x6a, Number(rng.interesting(1))]
          : form === 1
            ? [0x68, ...bytesOf(rng.interesting(4), 4)]
            : [0x66, 0x68, ...bytesOf(rng.interesting(2), 2)];
      return [...push, ...encodeOpReg(0x58, form === 2 ? 2 : 4, b)];
    }
    case 2: {
      // PUSH m64 / POP m64 (FF /6, 8F /0)
      const m = memOperand(env, 8);
      seedMemory(env, m.offset, 8);
      const n = memOperand(env, 8);
      const push = encodeModrm({ op: 0xff, size: 4, reg: 6, rm: m.operand, addr32: m.addr32 });
      const pop = encodeModrm({ op: 0x8f, size: 4, reg: 0, rm: n.operand, addr32: n.addr32 });
      return [...push, ...pop];
    }
    case 3: {
      // CALL to the next instruction, then POP the return address
      const b = destReg(env);
      return [0xe8, 0, 0, 0, 0, ...encodeOpReg(0x58, 4, b)];
    }
    case 4:
      // SAHF then LAHF: AH → flags → AH
      if (env.avoid.has(0)) throw new Redraw();
      setOperand(env, 0, 8);
      return rng.chance(0.5) ? [0x9e, 0x9f] : [0x9e];
    case 5:
      return [rng.pick([0xf8, 0xf9, 0xf5])]; // CLC STC CMC
    case 6: {
      // XLAT: AL = [RBX + AL]
      if (env.memReg !== 3) {
        if (!env.single) throw new Redraw();
        env.pinned.delete(env.memReg);
        env.memReg = 3;
        env.pinned.add(3);
      }
      if (env.avoid.has(0)) throw new Redraw();
      setOperand(env, 0, 8, (rng.u64() & ~0xffn) | BigInt(rng.below(env.memory.length)));
      return [0xd7];
    }
    case 7: {
      // MOV AL/AX/EAX/RAX ↔ moffs64 (A0–A3) into the scratch buffer
      const size = rng.pick(SIZES);
      const load = rng.chance(0.5);
      if (load && env.avoid.has(0)) throw new Redraw();
      setOperand(env, 0, 8);
      const off = pickOffset(env, size, 1);
      seedMemory(env, off, size);
      const addr32 = rng.chance(0.2);
      const out: number[] = [];
      if (addr32) out.push(0x67);
      if (size === 2) out.push(0x66);
      if (size === 8) out.push(0x48);
      out.push((load ? 0xa0 : 0xa2) + (size === 1 ? 0 : 1));
      out.push(...bytesOf(0x1003_0000n + BigInt(off), addr32 ? 4 : 8));
      return out;
    }
    case 8: {
      // ENTER imm16, level (0–3) with RBP inside the stack, optionally LEAVE
      if (!env.single) return [0xf8];
      env.regs[5] = STACK_RSP + BigInt(8 * rng.below(16));
      env.pinned.add(5);
      const frame = rng.below(4) === 0 ? 0 : rng.below(512);
      const level = rng.below(4);
      const enter = [0xc8, frame & 0xff, frame >> 8, level];
      const wide = rng.chance(0.85);
      return [...(wide ? [] : [0x66]), ...enter, ...(rng.chance(0.6) ? [...(wide ? [] : [0x66]), 0xc9] : [])];
    }
    default: {
      // A forward branch over one instruction
      const inner = draw(env, () => rng.pick([aluBinary, dataMove, shiftGroup]));
      return [...branchOver(env, inner.length), ...inner];
    }
  }
};

function bytesOf(v: bigint, size: number): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(size * 8, v);
  for (let k = 0; k < size; k++) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
  }
  return out;
}

/**
 * A forward branch over the next `skip` bytes: Jcc rel8/rel32, JMP rel8/rel32,
 * LOOP/LOOPE/LOOPNE and JRCXZ (also with 67: ECX), chosen so that it works in
 * `env` (the LOOPs write RCX).
 */
export function branchOver(env: Env, skip: number): number[] {
  const rng = env.rng;
  const k = rng.below(6);
  const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  if (k === 0) return [0x70 + rng.below(16), skip];
  if (k === 1) return [0x0f, 0x80 + rng.below(16), ...le32(skip)];
  if (k === 2) return rng.chance(0.5) ? [0xeb, skip] : [0xe9, ...le32(skip)];
  const addr32 = rng.chance(0.3) ? [0x67] : [];
  if (k === 3 || env.avoid.has(RCX)) return [...addr32, 0xe3, skip]; // JRCXZ / JECXZ
  return [...addr32, 0xe0 + rng.below(3), skip]; // LOOPNE, LOOPE, LOOP
}
