import { type Insn, MANDATORY } from "../decode/insn";

/**
 * Per-instruction flag effects for the differential runner, from the "Flags
 * Affected" sections of the SDM vol. 2: which arithmetic flags an instruction
 * reads, which it writes, and which of those it leaves undefined. Undefined
 * flags differ between processor generations and vendors, so a comparison
 * masks them; a flag stays undefined until an instruction writes it with a
 * defined value.
 *
 * The effect may depend on the operands (a shift by a zero count changes no
 * flag), so it is evaluated on the state just before the instruction runs.
 */

/** Flag bits. */
const CF = 0x1;
const PF = 0x4;
const AF = 0x10;
const ZF = 0x40;
const SF = 0x80;
const OF = 0x800;
/** The six arithmetic flags. */
export const ARITH = CF | PF | AF | ZF | SF | OF;

/** What one instruction does to the arithmetic flags. */
export interface FlagEffect {
  /** Flags the instruction's result depends on. */
  reads: number;
  /** Flags it writes (defined or not). */
  writes: number;
  /** Flags among `writes` whose new value the SDM leaves undefined. */
  undefined: number;
}

/** The flags each condition code (low nibble of Jcc/SETcc/CMOVcc) reads. */
export const CONDITION_READS: readonly number[] = [
  OF,
  OF,
  CF,
  CF,
  ZF,
  ZF,
  CF | ZF,
  CF | ZF,
  SF,
  SF,
  PF,
  PF,
  SF | OF,
  SF | OF,
  ZF | SF | OF,
  ZF | SF | OF,
];

const NONE: FlagEffect = { reads: 0, writes: 0, undefined: 0 };

function fx(reads: number, writes: number, undef: number): FlagEffect {
  return { reads, writes, undefined: undef };
}

const ALU_DEFINED = fx(0, ARITH, 0);
const ALU_CARRY_IN = fx(CF, ARITH, 0);
const LOGIC = fx(0, ARITH, AF);
const INC_DEC = fx(0, ARITH & ~CF, 0);
const MUL = fx(0, ARITH, SF | ZF | AF | PF);
const DIV = fx(0, ARITH, ARITH);
const BIT_TEST = fx(0, CF | OF | SF | AF | PF, OF | SF | AF | PF);
const BIT_SCAN = fx(0, ARITH, CF | OF | SF | AF | PF);
const COUNT_ZEROS = fx(0, ARITH, OF | SF | AF | PF);
const CMPXCHG8B = fx(0, ZF, 0);

/** ALU operation (00–3F blocks, group 1 /digit) → effect: ADD OR ADC SBB AND SUB XOR CMP. */
const ALU_BY_OP = [ALU_DEFINED, LOGIC, ALU_CARRY_IN, ALU_CARRY_IN, LOGIC, ALU_DEFINED, LOGIC, ALU_DEFINED];

/**
 * Group 2 (ROL ROR RCL RCR SHL SHR SAL SAR) with masked count `mc` on `bits`:
 * count 0 changes nothing; rotates write CF and OF (OF defined for count 1
 * only; RCL/RCR read CF); shifts write all six, AF undefined, OF undefined
 * unless the count is 1, CF undefined for SHL/SHR when the count is at least
 * the operand width.
 */
function shiftEffect(kind: number, mc: number, bits: number): FlagEffect {
  if (mc === 0) return NONE;
  const ofUndef = mc === 1 ? 0 : OF;
  if (kind <= 3) return fx(kind === 2 || kind === 3 ? CF : 0, CF | OF, ofUndef);
  const cfUndef = kind !== 7 && mc >= bits ? CF : 0;
  return fx(0, ARITH, AF | ofUndef | cfUndef);
}

/** SHLD/SHRD: like a shift; a count above the operand width leaves every flag undefined. */
function doubleShiftEffect(c: number, bits: number): FlagEffect {
  if (c === 0) return NONE;
  if (c > bits) return fx(0, ARITH, ARITH);
  return fx(0, ARITH, AF | (c === 1 ? 0 : OF));
}

/**
 * The flag effect of `insn`, given CL (for CL-count shifts). Returns null for
 * an instruction this table does not know (the caller treats that as an error,
 * so every generated instruction is covered).
 */
export function flagEffect(insn: Insn, cl: number): FlagEffect | null {
  const op = insn.op;
  const sub = insn.reg & 7;
  const bits = insn.osize * 8;
  const countMask = insn.osize === 8 ? 63 : 31;
  if (op < 0x40 && (op & 7) < 6) return ALU_BY_OP[op >> 3]!;
  switch (op) {
    case 0x80:
    case 0x81:
    case 0x83:
      return ALU_BY_OP[sub]!;
    case 0x84:
    case 0x85:
    case 0xa8:
    case 0xa9:
      return LOGIC;
    case 0xf6:
    case 0xf7:
      if (sub <= 1) return LOGIC;
      if (sub === 2) return NONE;
      if (sub === 3) return ALU_DEFINED;
      if (sub <= 5) return MUL;
      return DIV;
    case 0xfe:
    case 0xff:
      if (sub <= 1) return INC_DEC;
      return op === 0xff && sub === 6 ? NONE : null; // PUSH r/m
    case 0xc0:
    case 0xc1:
      return shiftEffect(sub, insn.imm & countMask, bits);
    case 0xd0:
    case 0xd1:
      return shiftEffect(sub, 1, bits);
    case 0xd2:
    case 0xd3:
      return shiftEffect(sub, cl & countMask, bits);
    case 0x1a4:
    case 0x1ac:
      return doubleShiftEffect(insn.imm & countMask, bits);
    case 0x1a5:
    case 0x1ad:
      return doubleShiftEffect(cl & countMask, bits);
    case 0x1af:
    case 0x69:
    case 0x6b:
      return MUL;
    case 0x1a3:
    case 0x1ab:
    case 0x1b3:
    case 0x1bb:
    case 0x1ba:
      return BIT_TEST;
    case 0x1bc:
    case 0x1bd:
      return insn.mandatory === MANDATORY.PF3 ? COUNT_ZEROS : BIT_SCAN;
    case 0x1b8:
      return ALU_DEFINED; // POPCNT: ZF from the source, the other five cleared
    case 0x1b0:
    case 0x1b1:
    case 0x1c0:
    case 0x1c1:
      return ALU_DEFINED; // CMPXCHG (as CMP), XADD (as ADD)
    case 0x1c7:
      return sub === 1 ? CMPXCHG8B : null;
    case 0x9e:
      return fx(0, SF | ZF | AF | PF | CF, 0); // SAHF
    case 0x9f:
      return fx(SF | ZF | AF | PF | CF, 0, 0); // LAHF
    case 0xf8:
    case 0xf9:
      return fx(0, CF, 0); // CLC, STC
    case 0xf5:
      return fx(CF, CF, 0); // CMC
    case 0xe0:
    case 0xe1:
      return fx(ZF, 0, 0); // LOOPNE, LOOPE
    case 0x8f:
      return sub === 0 ? NONE : null; // POP r/m
    // Instructions that neither read nor write the arithmetic flags.
    case 0x68:
    case 0x6a:
    case 0xe2:
    case 0xe3:
    case 0xe8:
    case 0xe9:
    case 0xeb:
    case 0xc8:
    case 0xc9:
    case 0xd7:
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3:
    case 0x88:
    case 0x89:
    case 0x8a:
    case 0x8b:
    case 0x8d:
    case 0xc6:
    case 0xc7:
    case 0x63:
    case 0x86:
    case 0x87:
    case 0x98:
    case 0x99:
    case 0x1b6:
    case 0x1b7:
    case 0x1be:
    case 0x1bf:
    case 0xf4:
      return NONE;
  }
  if (op >= 0x90 && op <= 0x97) return NONE; // XCHG rAX / NOP
  if (op >= 0x50 && op <= 0x5f) return NONE; // PUSH r, POP r
  if (op >= 0x70 && op <= 0x7f) return fx(CONDITION_READS[op & 15]!, 0, 0); // Jcc rel8
  if (op >= 0x180 && op <= 0x18f) return fx(CONDITION_READS[op & 15]!, 0, 0); // Jcc rel32
  if (op >= 0xb0 && op <= 0xbf) return NONE; // MOV r, imm
  if (op >= 0x1c8 && op <= 0x1cf) return NONE; // BSWAP
  if (op >= 0x140 && op <= 0x14f) return fx(CONDITION_READS[op & 15]!, 0, 0); // CMOVcc
  if (op >= 0x190 && op <= 0x19f) return fx(CONDITION_READS[op & 15]!, 0, 0); // SETcc
  return null;
}
