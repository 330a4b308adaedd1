import * as iced from "iced-x86";
import { X86CoreError } from "../errors";
import type { Mem } from "./operands";
import type { EncodedOperand } from "./resolve";

/** String-instruction families. */
export type StringOp = "movs" | "stos" | "lods" | "cmps" | "scas";
/** Element width of a string instruction, in bytes. */
export type StringWidth = 1 | 2 | 4 | 8;
/** Repeat prefix of a string instruction. */
export type RepKind = "none" | "rep" | "repe" | "repne";

/**
 * One entry of an assembler's program. Items hold plain data; iced-x86
 * instructions are built from them for each encoding pass and freed after it.
 */
export type Item =
  | {
      readonly kind: "insn";
      readonly mnemonic: string;
      readonly code: number;
      readonly ops: readonly EncodedOperand[];
      readonly lock: boolean;
    }
  | { readonly kind: "branch"; readonly mnemonic: string; readonly code: number; readonly target: string | bigint }
  | {
      readonly kind: "string";
      readonly mnemonic: string;
      readonly op: StringOp;
      readonly width: StringWidth;
      readonly rep: RepKind;
    }
  | { readonly kind: "label"; readonly name: string }
  | { readonly kind: "data"; readonly bytes: Uint8Array }
  | { readonly kind: "align"; readonly boundary: number; readonly fill: number };

const NONE = iced.Register.None;

/**
 * Builds the iced-x86 memory operand. For RIP-relative operands iced wants the
 * absolute target address, which the caller computes (`ripTarget`).
 */
function memoryOperand(m: Mem, ripTarget: bigint): iced.MemoryOperand {
  const seg = m.seg?.icedId ?? NONE;
  if (m.base?.cls === "rip") {
    return new iced.MemoryOperand(iced.Register.RIP, NONE, 1, BigInt.asUintN(64, ripTarget), 8, false, seg);
  }
  if (m.base === undefined && m.index === undefined) {
    // Absolute: ModRM+SIB with no base and a sign-extended disp32 (displSize 8 avoids a 0x67 prefix).
    return new iced.MemoryOperand(NONE, NONE, 1, BigInt.asUintN(64, m.disp), 8, false, seg);
  }
  const base = m.base?.icedId ?? NONE;
  const index = m.index?.icedId ?? NONE;
  const wide = (m.base ?? m.index)?.size === 8;
  const disp = wide ? BigInt.asUintN(64, m.disp) : BigInt.asUintN(32, m.disp);
  return new iced.MemoryOperand(base, index, m.scale, disp, m.disp === 0n ? 0 : 1, false, seg);
}

/**
 * Creates the iced-x86 instruction for a resolved form. `ripTarget` gives the
 * absolute address a RIP-relative memory operand refers to. The caller frees
 * the result.
 */
export function buildInstruction(
  code: number,
  ops: readonly EncodedOperand[],
  ripTarget: (m: Mem) => bigint,
): iced.Instruction {
  const I = iced.Instruction;
  const reg = (i: number): number => {
    const op = ops[i];
    if (op?.t !== "reg") throw new X86CoreError("STATE", `operand ${i} is not a register`);
    return op.reg.icedId;
  };
  const mem = (i: number): iced.MemoryOperand => {
    const op = ops[i];
    if (op?.t !== "mem") throw new X86CoreError("STATE", `operand ${i} is not memory`);
    return memoryOperand(op.mem, op.mem.base?.cls === "rip" ? ripTarget(op.mem) : 0n);
  };
  const imm = (i: number): number => {
    const op = ops[i];
    if (op?.t !== "imm") throw new X86CoreError("STATE", `operand ${i} is not an immediate`);
    return Number(BigInt.asIntN(32, op.value));
  };
  const sig = ops.map((o) => (o.t === "reg" ? "R" : o.t === "mem" ? "M" : "I")).join("");
  switch (sig) {
    case "":
      return I.create(code);
    case "R":
      return I.createReg(code, reg(0));
    case "M":
      return I.createMem(code, mem(0));
    case "I":
      return I.createI32(code, imm(0));
    case "RR":
      return I.createRegReg(code, reg(0), reg(1));
    case "RM":
      return I.createRegMem(code, reg(0), mem(1));
    case "MR":
      return I.createMemReg(code, mem(0), reg(1));
    case "RI": {
      const op = ops[1];
      if (op?.t === "imm" && op.bits === 64) return I.createRegU64(code, reg(0), op.value);
      return I.createRegI32(code, reg(0), imm(1));
    }
    case "MI":
      return I.createMemI32(code, mem(0), imm(1));
    case "IR":
      return I.createI32Reg(code, imm(0), reg(1));
    case "II":
      return I.createI32I32(code, imm(0), imm(1));
    case "RRR":
      return I.createRegRegReg(code, reg(0), reg(1), reg(2));
    case "RRI":
      return I.createRegRegI32(code, reg(0), reg(1), imm(2));
    case "RMI":
      return I.createRegMemI32(code, reg(0), mem(1), imm(2));
    case "MRR":
      return I.createMemRegReg(code, mem(0), reg(1), reg(2));
    case "MRI":
      return I.createMemRegI32(code, mem(0), reg(1), imm(2));
    default:
      throw new X86CoreError("UNSUPPORTED", `no iced-x86 constructor for operand kinds ${sig}`);
  }
}

const REP: Readonly<Record<RepKind, iced.RepPrefixKind>> = {
  none: iced.RepPrefixKind.None,
  rep: iced.RepPrefixKind.Repe,
  repe: iced.RepPrefixKind.Repe,
  repne: iced.RepPrefixKind.Repne,
};

/** Builds a string instruction (64-bit addressing, no segment override). The caller frees it. */
export function buildStringInstruction(op: StringOp, width: StringWidth, rep: RepKind): iced.Instruction {
  const I = iced.Instruction;
  const r = REP[rep];
  const none = NONE;
  switch (op) {
    case "movs":
      return [I.createMovsb, I.createMovsw, I.createMovsd, I.createMovsq][widthIndex(width)]!(64, none, r);
    case "lods":
      return [I.createLodsb, I.createLodsw, I.createLodsd, I.createLodsq][widthIndex(width)]!(64, none, r);
    case "cmps":
      return [I.createCmpsb, I.createCmpsw, I.createCmpsd, I.createCmpsq][widthIndex(width)]!(64, none, r);
    case "stos":
      return [I.createStosb, I.createStosw, I.createStosd, I.createStosq][widthIndex(width)]!(64, r);
    case "scas":
      return [I.createScasb, I.createScasw, I.createScasd, I.createScasq][widthIndex(width)]!(64, r);
  }
}

function widthIndex(width: StringWidth): number {
  return width === 1 ? 0 : width === 2 ? 1 : width === 4 ? 2 : 3;
}

/** The message of something iced-x86 threw. */
export function icedMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Encodes one instruction on its own to surface operand errors (such as AH with
 * a REX prefix) at the call that added it. RIP-relative operands point at the
 * instruction itself for this check. Throws `INVALID_ARGUMENT`.
 */
export function checkEncodable(item: Item & { kind: "insn" | "string" }): void {
  const ip = 0x1000n;
  let ins: iced.Instruction | undefined;
  const encoder = new iced.Encoder(64);
  try {
    ins =
      item.kind === "insn"
        ? buildInstruction(item.code, item.ops, () => ip)
        : buildStringInstruction(item.op, item.width, item.rep);
    if (item.kind === "insn" && item.lock) ins.hasLockPrefix = true;
    encoder.encode(ins, ip);
  } catch (e) {
    if (e instanceof X86CoreError) throw e;
    throw new X86CoreError("INVALID_ARGUMENT", `cannot encode ${item.mnemonic}: ${icedMessage(e)}`, {
      mnemonic: item.mnemonic,
    });
  } finally {
    ins?.free();
    encoder.free();
  }
}
