import { X86CoreError } from "../errors";
import type { FormName } from "./forms";
import { type BranchTarget, type Imm, isMem, isReg, type Mem } from "./operands";
import { IntegerAssembler, type RegMem } from "./ops-integer";
import type { Reg } from "./registers";

/**
 * Condition-code names (SDM Vol. 1 Appendix B) and the canonical one each
 * stands for, as used in JCC, SETCC and CMOVCC.
 */
export const CONDITIONS = {
  o: "o",
  no: "no",
  b: "b",
  c: "b",
  nae: "b",
  ae: "ae",
  nb: "ae",
  nc: "ae",
  e: "e",
  z: "e",
  ne: "ne",
  nz: "ne",
  be: "be",
  na: "be",
  a: "a",
  nbe: "a",
  s: "s",
  ns: "ns",
  p: "p",
  pe: "p",
  np: "np",
  po: "np",
  l: "l",
  nge: "l",
  ge: "ge",
  nl: "ge",
  le: "le",
  ng: "le",
  g: "g",
  nle: "g",
} as const;

/** A condition-code name: `e`, `nz`, `ae`, `g`, … */
export type Condition = keyof typeof CONDITIONS;

/** A branch target, or a register or memory operand for an indirect JMP/CALL. */
export type JumpTarget = BranchTarget | Reg | Mem;

function canonical(cc: Condition): (typeof CONDITIONS)[Condition] {
  if (!Object.hasOwn(CONDITIONS, cc)) {
    throw new X86CoreError("INVALID_ARGUMENT", `unknown condition code "${String(cc)}"`, { cc });
  }
  return CONDITIONS[cc];
}

/**
 * Control flow: JMP/CALL/RET, JCC, LOOP, ENTER/LEAVE, and the flag-consuming
 * SETCC and CMOVCC. Relative branches take a label name (forward or backward)
 * or an absolute address; the block encoder uses rel8 where it reaches.
 */
export abstract class FlowAssembler extends IntegerAssembler {
  /** `jmp target`: to a label or address, or indirect through a 64-bit register or memory. */
  jmp(target: JumpTarget): this {
    return isReg(target) || isMem(target)
      ? this.emit("jmpIndirect", "jmp", [target])
      : this.emitBranch("Jmp_rel32_64", "jmp", target);
  }

  /** `call target`: to a label or address, or indirect through a 64-bit register or memory. */
  call(target: JumpTarget): this {
    return isReg(target) || isMem(target)
      ? this.emit("callIndirect", "call", [target])
      : this.emitBranch("Call_rel32_64", "call", target);
  }

  /** `ret` / `ret imm16`: near return, optionally releasing `bytes` of arguments. */
  ret(bytes?: Imm): this {
    return this.emit("ret", "ret", bytes === undefined ? [] : [bytes]);
  }

  /** `enter size, level`: makes a stack frame. */
  enter(size: Imm, level: Imm = 0): this {
    return this.emit("enter", "enter", [size, level]);
  }

  /** `leave`: tears down a stack frame (RSP ← RBP; pop RBP). */
  leave(): this {
    return this.emit("leave", "leave", []);
  }

  /** `jcc target`: jump if condition `cc` holds. */
  jcc(cc: Condition, target: BranchTarget): this {
    const c = canonical(cc);
    return this.emitBranch(`J${c}_rel32_64`, `j${cc}`, target);
  }

  /** `setcc dst`: writes 1 to a byte register or memory if `cc` holds, else 0. */
  setcc(cc: Condition, dst: RegMem): this {
    return this.emit(`set${canonical(cc)}` as FormName, `set${cc}`, [dst]);
  }

  /** `cmovcc dst, src`: moves if `cc` holds (16/32/64-bit; a 32-bit destination is zero-extended either way). */
  cmovcc(cc: Condition, dst: Reg, src: RegMem): this {
    return this.emit(`cmov${canonical(cc)}` as FormName, `cmov${cc}`, [dst, src]);
  }

  /** `loop target`: decrements RCX and jumps if it is not zero; rel8 only, so the target must be within ±128 bytes. */
  loop(target: BranchTarget): this {
    return this.emitBranch("Loop_rel8_64_RCX", "loop", target);
  }

  /** `loope target`: decrements RCX and jumps if it is not zero and ZF=1; rel8 only, so the target must be within ±128 bytes. */
  loope(target: BranchTarget): this {
    return this.emitBranch("Loope_rel8_64_RCX", "loope", target);
  }

  /** `loopne target`: decrements RCX and jumps if it is not zero and ZF=0; rel8 only, so the target must be within ±128 bytes. */
  loopne(target: BranchTarget): this {
    return this.emitBranch("Loopne_rel8_64_RCX", "loopne", target);
  }

  /** `jrcxz target`: jumps if RCX is zero; rel8 only, so the target must be within ±128 bytes. */
  jrcxz(target: BranchTarget): this {
    return this.emitBranch("Jrcxz_rel8_64", "jrcxz", target);
  }
}
