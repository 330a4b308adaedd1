import { BASE_RIP, DECODE_STATUS, type Insn, MANDATORY, PREFIX } from "./insn";
import { A, IMM, opcodeAttrs } from "./opcode-attrs";

/** The architectural limit on instruction length (SDM vol. 2, 2.3.11). */
export const MAX_INSN_LENGTH = 15;

/**
 * Decodes one 64-bit-mode instruction from `bytes[offset .. offset + available)`
 * into `out`. Pure: never throws, never touches memory; the result's `status`
 * says whether the instruction is complete, invalid, too long, or needs more
 * bytes than were available (then `len` is a lower bound on the bytes it
 * needs, always more than `available`).
 */
export function decode(bytes: Uint8Array, offset: number, available: number, out: Insn): Insn {
  const maps = opcodeAttrs();
  const limit = Math.min(available, MAX_INSN_LENGTH + 1);
  let i = 0;
  let prefixes = 0;
  let seg = -1;
  let rex = 0;
  let lastRep = 0; // MANDATORY.PF3 / PF2 of the last F3/F2 seen
  out.exec = null;
  out.imm = 0;
  out.immHi = 0;
  out.imm2 = 0;
  out.immSize = 0;
  out.hasModrm = false;
  out.mod = 0;
  out.reg = 0;
  out.rm = 0;
  out.base = -1;
  out.index = -1;
  out.scale = 0;
  out.disp = 0;

  // Legacy prefixes and REX (a REX not directly before the opcode is ignored).
  let b = 0;
  for (;;) {
    if (i >= limit) return incomplete(out, i + 1, available);
    b = bytes[offset + i]!;
    if (b >= 0x40 && b <= 0x4f) {
      rex = b;
      i++;
      continue;
    }
    let isPrefix = true;
    switch (b) {
      case 0xf0:
        prefixes |= PREFIX.LOCK;
        break;
      case 0xf2:
        prefixes |= PREFIX.REPNE;
        lastRep = MANDATORY.PF2;
        break;
      case 0xf3:
        prefixes |= PREFIX.REP;
        lastRep = MANDATORY.PF3;
        break;
      case 0x26:
        seg = 0;
        break;
      case 0x2e:
        seg = 1;
        break;
      case 0x36:
        seg = 2;
        break;
      case 0x3e:
        seg = 3;
        break;
      case 0x64:
        seg = 4;
        break;
      case 0x65:
        seg = 5;
        break;
      case 0x66:
        prefixes |= PREFIX.OSIZE;
        break;
      case 0x67:
        prefixes |= PREFIX.ASIZE;
        break;
      default:
        isPrefix = false;
    }
    if (!isPrefix) break;
    rex = 0;
    i++;
  }
  out.prefixes = prefixes;
  out.seg = seg;
  out.rex = rex;
  out.mandatory = lastRep !== 0 ? lastRep : prefixes & PREFIX.OSIZE ? MANDATORY.P66 : MANDATORY.NONE;
  out.asize = prefixes & PREFIX.ASIZE ? 4 : 8;

  // Opcode and map.
  let map = 0;
  let attrs: number;
  i++;
  if (b === 0x0f) {
    if (i >= limit) return incomplete(out, i + 1, available);
    b = bytes[offset + i++]!;
    map = 1;
    if (b === 0x38 || b === 0x3a) {
      map = b === 0x38 ? 2 : 3;
      if (i >= limit) return incomplete(out, i + 1, available);
      b = bytes[offset + i++]!;
    }
    out.op = (map << 8) | b;
    attrs = maps[map]![b]!;
  } else if (b === 0xc4 || b === 0xc5 || b === 0x62 || b === 0x8f) {
    // VEX (C4/C5), EVEX (62) and XOP (8F with ModRM.reg ≠ 0) escapes: this processor has no
    // AVX, AVX-512 or XOP, so they raise #UD, but they are decoded far enough to know their
    // length (SDM vol. 2, 3.1.1.2 and 2.6–2.7; AMD APM vol. 3, 1.8 for XOP).
    if (i >= limit) return incomplete(out, i + 1, available);
    const p0 = bytes[offset + i]!;
    out.op = b;
    if (b === 0x8f && (p0 & 0x38) === 0) {
      attrs = maps[0]![b]!; // POP r/m
    } else {
      const payload = b === 0xc5 ? 1 : b === 0x62 ? 3 : 2;
      if (i + payload >= limit) return incomplete(out, i + payload + 1, available);
      const vmap = b === 0xc5 ? 1 : b === 0x62 ? p0 & 7 : p0 & 0x1f;
      i += payload;
      const opcode = bytes[offset + i++]!;
      attrs = vexAttrs(b, vmap, opcode);
      // No legacy operand-size rules apply; 4 makes XOP's map-A immediate 32 bits.
      prefixes &= ~PREFIX.OSIZE;
      rex = 0;
    }
  } else {
    out.op = b;
    attrs = maps[0]![b]!;
  }

  if (attrs & A.B) out.osize = 1;
  else if (rex & 8 || attrs & A.F64) out.osize = 8;
  else if (attrs & A.D64) out.osize = prefixes & PREFIX.OSIZE ? 2 : 8;
  else out.osize = prefixes & PREFIX.OSIZE ? 2 : 4;

  // ModRM, SIB, displacement.
  if (attrs & A.M) {
    if (i >= limit) return incomplete(out, i + 1, available);
    const modrm = bytes[offset + i++]!;
    out.hasModrm = true;
    let mod = modrm >> 6;
    const rm = modrm & 7;
    out.reg = ((modrm >> 3) & 7) | ((rex & 4) << 1);
    // MOV to/from control and debug registers ignore mod and always name registers.
    if (map === 1 && b >= 0x20 && b <= 0x23) mod = 3;
    out.mod = mod;
    if (mod === 3) {
      out.rm = rm | ((rex & 1) << 3);
    } else {
      out.rm = rm;
      let dispSize = mod === 1 ? 1 : mod === 2 ? 4 : 0;
      if (rm === 4) {
        if (i >= limit) return incomplete(out, i + 1, available);
        const sib = bytes[offset + i++]!;
        out.scale = sib >> 6;
        const index = ((sib >> 3) & 7) | ((rex & 2) << 2);
        out.index = index === 4 ? -1 : index;
        const base = sib & 7;
        if (base === 5 && mod === 0) {
          out.base = -1;
          dispSize = 4;
        } else out.base = base | ((rex & 1) << 3);
      } else if (rm === 5 && mod === 0) {
        out.base = BASE_RIP;
        dispSize = 4;
      } else out.base = rm | ((rex & 1) << 3);
      if (dispSize !== 0) {
        if (i + dispSize > limit) return incomplete(out, i + dispSize, available);
        const p = offset + i;
        out.disp =
          dispSize === 1
            ? (bytes[p]! << 24) >> 24
            : bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
        i += dispSize;
      }
    }
  }

  // Immediates.
  let kind = (attrs >> 8) & 0xf;
  if (kind === IMM.GRP3B) kind = (out.reg & 6) === 0 ? IMM.B : IMM.NONE;
  else if (kind === IMM.GRP3Z) kind = (out.reg & 6) === 0 ? IMM.Z : IMM.NONE;
  if (kind !== IMM.NONE) {
    let size = 0;
    switch (kind) {
      case IMM.B:
      case IMM.UB:
        size = 1;
        break;
      case IMM.W:
        size = 2;
        break;
      case IMM.Z:
        size = out.osize === 2 ? 2 : 4;
        break;
      case IMM.V:
        size = out.osize;
        break;
      case IMM.WB:
        size = 3;
        break;
      case IMM.MOFFS:
        size = out.asize;
        break;
      case IMM.SSE4A:
        size = out.mandatory === MANDATORY.P66 || out.mandatory === MANDATORY.PF2 ? 2 : 0;
        break;
    }
    if (i + size > limit) return incomplete(out, i + size, available);
    const p = offset + i;
    switch (kind) {
      case IMM.B:
        out.imm = (bytes[p]! << 24) >> 24;
        break;
      case IMM.UB:
        out.imm = bytes[p]!;
        break;
      case IMM.W:
        out.imm = bytes[p]! | (bytes[p + 1]! << 8);
        break;
      case IMM.WB:
        out.imm = bytes[p]! | (bytes[p + 1]! << 8);
        out.imm2 = bytes[p + 2]!;
        break;
      case IMM.SSE4A:
        if (size !== 0) {
          out.imm = bytes[p]!;
          out.imm2 = bytes[p + 1]!;
        }
        break;
      default:
        if (size === 2) out.imm = ((bytes[p]! | (bytes[p + 1]! << 8)) << 16) >> 16;
        else {
          out.imm = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
          if (size === 8)
            out.immHi = bytes[p + 4]! | (bytes[p + 5]! << 8) | (bytes[p + 6]! << 16) | (bytes[p + 7]! << 24);
          else if (kind === IMM.MOFFS) out.immHi = 0;
          else out.immHi = out.imm >> 31; // sign extension of imm32
        }
    }
    out.immSize = size;
    i += size;
  }

  out.len = i;
  if (i > MAX_INSN_LENGTH) out.status = DECODE_STATUS.TOO_LONG;
  else if (attrs & A.INV) out.status = DECODE_STATUS.INVALID;
  else out.status = DECODE_STATUS.OK;
  return out;
}

/**
 * Attributes of a VEX (C4/C5), EVEX (62) or XOP (8F) encoded opcode: always
 * invalid here, with the ModRM and immediate layout that fixes its length.
 */
function vexAttrs(prefix: number, map: number, opcode: number): number {
  if (prefix === 0x8f) {
    // XOP maps 8 (imm8), 9 (none) and A (imm32).
    if (map === 8) return A.M | A.INV | (IMM.UB << 8);
    if (map === 9) return A.M | A.INV;
    if (map === 10) return A.M | A.INV | (IMM.Z << 8);
    return A.INV;
  }
  if (map === 3) return A.M | A.INV | (IMM.UB << 8);
  if (map === 1) {
    if (prefix !== 0x62 && opcode === 0x77) return A.INV; // VZEROUPPER / VZEROALL: no ModRM
    const imm8 = (opcode >= 0x70 && opcode <= 0x73) || opcode === 0xc2 || (opcode >= 0xc4 && opcode <= 0xc6);
    return A.M | A.INV | (imm8 ? IMM.UB << 8 : 0);
  }
  return A.M | A.INV;
}

function incomplete(out: Insn, needed: number, available: number): Insn {
  // Past 15 bytes no amount of input helps: the instruction is too long.
  out.len = Math.min(needed, MAX_INSN_LENGTH + 1);
  out.status = available > MAX_INSN_LENGTH ? DECODE_STATUS.TOO_LONG : DECODE_STATUS.INCOMPLETE;
  return out;
}
