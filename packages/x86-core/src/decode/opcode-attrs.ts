/**
 * Structural facts about each opcode in 64-bit mode: whether it has a ModRM
 * byte, what immediate follows, its default operand size, and whether it is
 * invalid in 64-bit mode. Only what the decoder needs to find the length and
 * the operands; what an instruction *does* lives in the dispatch table.
 *
 *   bit 0  M    has ModRM
 *   bit 1  B    byte operand
 *   bit 2  D64  default operand size 64 (66 gives 16)
 *   bit 3  F64  operand size forced to 64 (66 ignored, as Intel does for near branches)
 *   bit 4  INV  invalid in 64-bit mode (#UD)
 *   bits 8-11   immediate kind (IMM_*)
 */
export const A = { M: 1, B: 2, D64: 4, F64: 8, INV: 16 } as const;

export const IMM = {
  NONE: 0,
  /** imm8, sign-extended. */
  B: 1,
  /** imm16, zero-extended. */
  W: 2,
  /** imm16 or imm32 (sign-extended to 64) by operand size. */
  Z: 3,
  /** imm16/32/64 by operand size (MOV r, imm). */
  V: 4,
  /** imm16 then imm8 (ENTER). */
  WB: 5,
  /** A memory offset the size of the address (MOV moffs). */
  MOFFS: 6,
  /** F6 group 3: imm8 only for TEST (reg 0 and 1). */
  GRP3B: 7,
  /** F7 group 3: imm16/32 only for TEST (reg 0 and 1). */
  GRP3Z: 8,
  /** imm8, zero-extended. */
  UB: 9,
  /** 0F 78 with 66 or F2 (AMD SSE4a EXTRQ/INSERTQ): imm8, imm8; none otherwise (VMREAD). */
  SSE4A: 10,
} as const;

const M = A.M;
const B = A.B;
const D64 = A.D64;
const F64 = A.F64;
const INV = A.INV;
const ib = IMM.B << 8;
const iw = IMM.W << 8;
const iz = IMM.Z << 8;
const iv = IMM.V << 8;
const ub = IMM.UB << 8;

function table(fill: number): Uint16Array {
  return new Uint16Array(256).fill(fill);
}

function set(t: Uint16Array, from: number, to: number, v: number): void {
  for (let i = from; i <= to; i++) t[i] = v;
}

/** One-byte opcode map. Prefix bytes and 0F are handled by the decoder before this table. */
function buildMap0(): Uint16Array {
  const t = table(0);
  // ALU blocks 00–3F: Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iz
  for (let base = 0; base < 0x40; base += 8) {
    t[base] = M | B;
    t[base + 1] = M;
    t[base + 2] = M | B;
    t[base + 3] = M;
    t[base + 4] = B | ib;
    t[base + 5] = iz;
  }
  for (const op of [0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f]) t[op] = INV;
  set(t, 0x50, 0x5f, D64);
  t[0x60] = INV;
  t[0x61] = INV;
  t[0x62] = INV;
  t[0x63] = M; // MOVSXD
  t[0x68] = D64 | iz;
  t[0x69] = M | iz;
  t[0x6a] = D64 | ib;
  t[0x6b] = M | ib;
  t[0x6c] = B;
  t[0x6d] = 0;
  t[0x6e] = B;
  t[0x6f] = 0;
  set(t, 0x70, 0x7f, F64 | ib);
  t[0x80] = M | B | ib;
  t[0x81] = M | iz;
  t[0x82] = INV;
  t[0x83] = M | ib;
  t[0x84] = M | B;
  t[0x85] = M;
  t[0x86] = M | B;
  t[0x87] = M;
  t[0x88] = M | B;
  t[0x89] = M;
  t[0x8a] = M | B;
  t[0x8b] = M;
  t[0x8c] = M;
  t[0x8d] = M;
  t[0x8e] = M;
  t[0x8f] = M | D64;
  set(t, 0x90, 0x97, 0);
  t[0x98] = 0;
  t[0x99] = 0;
  t[0x9a] = INV;
  t[0x9b] = 0;
  t[0x9c] = D64;
  t[0x9d] = D64;
  t[0x9e] = 0;
  t[0x9f] = 0;
  t[0xa0] = B | (IMM.MOFFS << 8);
  t[0xa1] = IMM.MOFFS << 8;
  t[0xa2] = B | (IMM.MOFFS << 8);
  t[0xa3] = IMM.MOFFS << 8;
  t[0xa4] = B;
  t[0xa5] = 0;
  t[0xa6] = B;
  t[0xa7] = 0;
  t[0xa8] = B | ib;
  t[0xa9] = iz;
  t[0xaa] = B;
  t[0xab] = 0;
  t[0xac] = B;
  t[0xad] = 0;
  t[0xae] = B;
  t[0xaf] = 0;
  set(t, 0xb0, 0xb7, B | ub);
  set(t, 0xb8, 0xbf, iv);
  t[0xc0] = M | B | ub;
  t[0xc1] = M | ub;
  t[0xc2] = F64 | iw;
  t[0xc3] = F64;
  t[0xc4] = INV; // VEX: not supported (no AVX)
  t[0xc5] = INV;
  t[0xc6] = M | B | ib;
  t[0xc7] = M | iz;
  t[0xc8] = D64 | (IMM.WB << 8);
  t[0xc9] = D64;
  t[0xca] = iw;
  t[0xcb] = 0;
  t[0xcc] = 0;
  t[0xcd] = ub;
  t[0xce] = INV;
  t[0xcf] = 0;
  t[0xd0] = M | B;
  t[0xd1] = M;
  t[0xd2] = M | B;
  t[0xd3] = M;
  t[0xd4] = INV;
  t[0xd5] = INV;
  t[0xd6] = INV;
  t[0xd7] = B;
  set(t, 0xd8, 0xdf, M); // x87: decoded for length, not implemented
  set(t, 0xe0, 0xe3, F64 | ib);
  t[0xe4] = B | ub;
  t[0xe5] = ub;
  t[0xe6] = B | ub;
  t[0xe7] = ub;
  t[0xe8] = F64 | iz;
  t[0xe9] = F64 | iz;
  t[0xea] = INV;
  t[0xeb] = F64 | ib;
  t[0xec] = B;
  t[0xed] = 0;
  t[0xee] = B;
  t[0xef] = 0;
  t[0xf1] = 0;
  t[0xf4] = 0;
  t[0xf5] = 0;
  t[0xf6] = M | B | (IMM.GRP3B << 8);
  t[0xf7] = M | (IMM.GRP3Z << 8);
  set(t, 0xf8, 0xfd, 0);
  t[0xfe] = M | B;
  t[0xff] = M;
  return t;
}

/** Two-byte map (0F xx). */
function buildMap1(): Uint16Array {
  const t = table(M); // most of the map has ModRM and no immediate
  t[0x04] = INV;
  for (const op of [0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77])
    t[op] = 0;
  t[0x0a] = INV;
  t[0x0c] = INV;
  t[0x0f] = M | INV | ub; // 3DNow!: not supported; the opcode is the trailing imm8
  t[0x24] = INV;
  t[0x25] = INV;
  t[0x26] = INV;
  t[0x27] = INV;
  t[0x36] = INV;
  t[0x39] = INV;
  set(t, 0x3b, 0x3f, INV);
  t[0x78] = M | (IMM.SSE4A << 8);
  t[0x70] = M | ub;
  t[0x71] = M | ub;
  t[0x72] = M | ub;
  t[0x73] = M | ub;
  set(t, 0x80, 0x8f, F64 | iz);
  set(t, 0x90, 0x9f, M | B);
  t[0xa0] = D64;
  t[0xa1] = D64;
  t[0xa2] = 0;
  t[0xa4] = M | ub;
  t[0xa6] = M | INV; // VIA PadLock: not supported
  t[0xa7] = M | INV;
  t[0xa8] = D64;
  t[0xa9] = D64;
  t[0xaa] = 0;
  t[0xac] = M | ub;
  t[0xb0] = M | B;
  t[0xb6] = M; // source byte; destination by operand size
  t[0xbe] = M;
  t[0xba] = M | ub;
  t[0xc0] = M | B;
  t[0xc2] = M | ub;
  t[0xc4] = M | ub;
  t[0xc5] = M | ub;
  t[0xc6] = M | ub;
  set(t, 0xc8, 0xcf, 0);
  return t;
}

/** Three-byte maps: 0F 38 (ModRM, no immediate) and 0F 3A (ModRM + imm8). */
function buildMap2(): Uint16Array {
  return table(M);
}
function buildMap3(): Uint16Array {
  return table(M | ub);
}

let maps: Uint16Array[] | null = null;

/** The attribute tables of maps 0–3, built on first use. */
export function opcodeAttrs(): Uint16Array[] {
  if (maps === null) maps = [buildMap0(), buildMap1(), buildMap2(), buildMap3()];
  return maps;
}
