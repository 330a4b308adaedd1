import type { Cpu } from "../cpu";

/** An instruction handler: executes one decoded instruction on a processor. */
export type Handler = (cpu: Cpu, insn: Insn) => void;

/** Why decoding stopped (the `status` of an {@link Insn}). */
export const DECODE_STATUS = {
  /** A complete instruction. */
  OK: 0,
  /** An undefined encoding, or one invalid in 64-bit mode: executing it raises #UD. */
  INVALID: 1,
  /** More than 15 bytes: executing it raises #GP(0). */
  TOO_LONG: 2,
  /** The bytes ran out before the instruction ended (the caller must supply more). */
  INCOMPLETE: 3,
} as const;
/** A {@link DECODE_STATUS} value. */
export type DecodeStatus = (typeof DECODE_STATUS)[keyof typeof DECODE_STATUS];

/** Legacy prefix bits in {@link Insn.prefixes}. */
export const PREFIX = {
  LOCK: 1,
  /** F3: REP / REPE, or a mandatory prefix. */
  REP: 2,
  /** F2: REPNE, or a mandatory prefix. */
  REPNE: 4,
  /** 66: operand-size override. */
  OSIZE: 8,
  /** 67: address-size override. */
  ASIZE: 16,
} as const;

/** Mandatory-prefix selector of SSE encodings ({@link Insn.mandatory}). */
export const MANDATORY = { NONE: 0, P66: 1, PF3: 2, PF2: 3 } as const;

/** Base register number meaning "RIP-relative" in {@link Insn.base}. */
export const BASE_RIP = 16;

/**
 * A decoded instruction: a flat record of numbers, produced by {@link decode}
 * and cached per physical page. Never holds addresses of the memory it came from.
 *
 * `op` is `map << 8 | opcode` with map 0 = one-byte, 1 = 0F, 2 = 0F 38, 3 = 0F 3A.
 */
export class Insn {
  /** Length in bytes (also set when invalid, as far as decoding got). */
  len = 0;
  /**
   * `map << 8 | opcode`; for a VEX, EVEX or XOP encoding (always
   * {@link DECODE_STATUS.INVALID} on this processor) the escape byte C4, C5, 62 or 8F.
   */
  op = 0;
  /** A {@link DECODE_STATUS}. */
  status: DecodeStatus = DECODE_STATUS.OK;
  /** {@link PREFIX} bits seen. */
  prefixes = 0;
  /** SSE mandatory prefix ({@link MANDATORY}): the last of F2/F3, else 66. */
  mandatory = 0;
  /** Segment override: 0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS, -1 none. */
  seg = -1;
  /** The REX byte (0x40–0x4F), or 0. */
  rex = 0;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  osize = 4;
  /** Address size in bytes: 4 or 8. */
  asize = 8;
  /** Whether a ModRM byte is present. */
  hasModrm = false;
  /** ModRM.mod (0–3). */
  mod = 0;
  /** ModRM.reg extended by REX.R (0–15); for group opcodes the sub-opcode is `reg & 7`. */
  reg = 0;
  /** ModRM.rm extended by REX.B when it names a register (mod = 3), else the raw rm (0–7). */
  rm = 0;
  /** Memory base register (0–15), {@link BASE_RIP}, or -1. */
  base = -1;
  /** Memory index register (0–15), or -1. */
  index = -1;
  /** log2 of the SIB scale. */
  scale = 0;
  /** Signed 32-bit displacement. */
  disp = 0;
  /** Low 32 bits of the immediate (sign-extended to a JS int32 where the encoding is signed). */
  imm = 0;
  /** High 32 bits of a 64-bit immediate or address (MOV r64, imm64; MOV moffs). */
  immHi = 0;
  /** The second immediate (ENTER's nesting level). */
  imm2 = 0;
  /** Size of the (first) immediate in bytes. */
  immSize = 0;
  /** The handler that executes it (set when the instruction is bound to a dispatch table). */
  exec: Handler | null = null;
}
