/**
 * A small x86-64 encoder for the differential generators: legacy/REX prefixes,
 * one-, two- and three-byte opcodes, ModRM/SIB/displacement and immediates.
 * It encodes exactly what a generator asks for (no optimisation, no operand
 * checking beyond what the encoding itself needs); iced-x86 cross-checks it
 * in the tests.
 */

/** Byte register AH (encoded as 4 without a REX prefix); CH, DH, BH follow. */
export const AH = 16;
/** Byte register CH (5 without REX). */
export const CH = 17;
/** Byte register DH (6 without REX). */
export const DH = 18;
/** Byte register BH (7 without REX). */
export const BH = 19;

/** A register operand (0–15; 16–19 for AH–BH where the operand is a byte). */
export interface RegOperand {
  kind: "reg";
  reg: number;
}

/** A memory operand: base and index are 0–15 or -1 (none); base 16 is RIP-relative. */
export interface MemOperand {
  kind: "mem";
  base: number;
  index: number;
  scale: 0 | 1 | 2 | 3;
  disp: number;
}

/** A ModRM r/m operand. */
export type RmOperand = RegOperand | MemOperand;

/** One instruction with a ModRM byte. */
export interface ModrmForm {
  /** `map << 8 | opcode` (map 1 = 0F, 2 = 0F 38, 3 = 0F 3A). */
  op: number;
  /** Operand size: 2 adds 66, 8 adds REX.W (1 and 4 add nothing). */
  size: 1 | 2 | 4 | 8;
  /** ModRM.reg: a register (0–19) or a group's /digit. */
  reg: number;
  /** The r/m operand. */
  rm: RmOperand;
  /** Whether ModRM.reg names a byte register (4–7 then means SPL–DIL and needs REX). */
  regIsByte?: boolean;
  /** Whether a register r/m is a byte register. */
  rmIsByte?: boolean;
  /** Immediate bytes (little-endian), if any. */
  imm?: { size: 1 | 2 | 4 | 8; value: bigint };
  /** A mandatory / REP prefix (F3 or F2) placed after 66. */
  rep?: 0xf3 | 0xf2;
  /** LOCK prefix. */
  lock?: boolean;
  /** 67 (32-bit addressing). */
  addr32?: boolean;
  /** Emit an empty REX (0x40) even when no REX bit is needed. */
  forceRex?: boolean;
}

/** Shorthand for a register operand. */
export function reg(r: number): RegOperand {
  return { kind: "reg", reg: r };
}

/** Shorthand for a memory operand. */
export function mem(base: number, disp = 0, index = -1, scale: 0 | 1 | 2 | 3 = 0): MemOperand {
  return { kind: "mem", base, index, scale, disp };
}

function fitsInt8(v: number): boolean {
  return v >= -128 && v <= 127;
}

function pushLe(out: number[], value: bigint, size: number): void {
  let v = BigInt.asUintN(size * 8, value);
  for (let k = 0; k < size; k++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
}

/** Encodes a ModRM instruction; throws when the operands cannot be encoded together (a generator bug). */
export function encodeModrm(f: ModrmForm): number[] {
  const out: number[] = [];
  if (f.lock) out.push(0xf0);
  if (f.addr32) out.push(0x67);
  if (f.size === 2) out.push(0x66);
  if (f.rep !== undefined) out.push(f.rep);

  let rex = f.size === 8 ? 8 : 0;
  let needRex = f.forceRex === true;
  let highByte = false;
  const regField = f.reg;
  if (regField >= 16) highByte = true;
  else {
    if (regField >= 8) rex |= 4;
    if (f.regIsByte && regField >= 4 && regField < 8) needRex = true;
  }

  let modrm: number;
  const tail: number[] = [];
  const rm = f.rm;
  if (rm.kind === "reg") {
    let r = rm.reg;
    if (r >= 16) {
      highByte = true;
      r -= 12;
    } else {
      if (r >= 8) rex |= 1;
      if (f.rmIsByte && r >= 4 && r < 8) needRex = true;
    }
    modrm = 0xc0 | ((regField >= 16 ? regField - 12 : regField & 7) << 3) | (r & 7);
  } else {
    const regBits = (regField >= 16 ? regField - 12 : regField & 7) << 3;
    const { base, index, scale, disp } = rm;
    if (index === 4) throw new Error("encode: RSP cannot be an index");
    if (index >= 8) rex |= 2;
    if (base === 16) {
      if (index >= 0) throw new Error("encode: RIP-relative addressing takes no index");
      modrm = 0x05 | regBits;
      pushLe(tail, BigInt(disp), 4);
    } else if (base < 0) {
      // [index*scale + disp32] or [disp32] through a SIB with base 101 and mod 00.
      modrm = 0x04 | regBits;
      tail.push((scale << 6) | ((index < 0 ? 4 : index & 7) << 3) | 5);
      pushLe(tail, BigInt(disp), 4);
    } else {
      if (base >= 8) rex |= 1;
      const needSib = index >= 0 || (base & 7) === 4;
      let mod: number;
      if (disp === 0 && (base & 7) !== 5) mod = 0;
      else if (fitsInt8(disp)) mod = 1;
      else mod = 2;
      modrm = (mod << 6) | regBits | (needSib ? 4 : base & 7);
      if (needSib) tail.push((scale << 6) | ((index < 0 ? 4 : index & 7) << 3) | (base & 7));
      if (mod === 1) pushLe(tail, BigInt(disp), 1);
      else if (mod === 2) pushLe(tail, BigInt(disp), 4);
    }
  }
  if (highByte && (rex !== 0 || needRex)) throw new Error("encode: AH–BH cannot be used with a REX prefix");
  if (rex !== 0 || needRex) out.push(0x40 | rex);
  const map = f.op >> 8;
  if (map >= 1) out.push(0x0f);
  if (map === 2) out.push(0x38);
  if (map === 3) out.push(0x3a);
  out.push(f.op & 0xff, modrm, ...tail);
  if (f.imm !== undefined) pushLe(out, f.imm.value, f.imm.size);
  return out;
}

/**
 * Encodes an instruction whose register is in the opcode's low three bits
 * (BSWAP, XCHG rAX, MOV r, imm): `op` is the base opcode (`map << 8 | opcode`).
 */
export function encodeOpReg(
  op: number,
  size: 1 | 2 | 4 | 8,
  r: number,
  imm?: { size: 1 | 2 | 4 | 8; value: bigint },
): number[] {
  const out: number[] = [];
  if (size === 2) out.push(0x66);
  let rex = size === 8 ? 8 : 0;
  let needRex = false;
  let code = r;
  if (r >= 16) {
    code = r - 12;
    if (rex !== 0) throw new Error("encode: AH–BH cannot be used with a REX prefix");
  } else {
    if (r >= 8) rex |= 1;
    if (size === 1 && r >= 4 && r < 8) needRex = true;
  }
  if (rex !== 0 || needRex) out.push(0x40 | rex);
  if (op >> 8 === 1) out.push(0x0f);
  out.push((op & 0xff) + (code & 7));
  if (imm !== undefined) pushLe(out, imm.value, imm.size);
  return out;
}
