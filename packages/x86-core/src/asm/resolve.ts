import * as iced from "iced-x86";
import { X86CoreError } from "../errors";
import { FORMS, type FormName } from "./forms";
import { isMem, isReg, type Mem, type Operand, toBigInt } from "./operands";
import type { Reg, RegClass } from "./registers";

/** What one operand position of a form accepts (see the token table in forms.ts). */
export interface Token {
  readonly text: string;
  /** Register accepted here: its file and width, and optionally exactly one name. */
  readonly reg?: { readonly cls: RegClass; readonly size: number; readonly only?: string };
  /** Memory accepted here: its width in bytes, or "any". */
  readonly mem?: number | "any";
  /** Immediate accepted here: field width, and the width it sign-extends to (0: none). */
  readonly imm?: { readonly bits: 8 | 16 | 32 | 64; readonly sext: 0 | 16 | 32 | 64; readonly one: boolean };
}

/** One encoding of a mnemonic: an iced `Code` and what its operands accept. */
export interface Form {
  /** The spec as written in FORMS. */
  readonly spec: string;
  /** The iced-x86 `Code` name and value. */
  readonly codeName: string;
  readonly code: number;
  readonly tokens: readonly Token[];
}

/** An operand checked against a token: ready to hand to iced-x86. */
export type EncodedOperand =
  | { readonly t: "reg"; readonly reg: Reg }
  | { readonly t: "mem"; readonly mem: Mem }
  /** `value` is the field's bit pattern read as signed (imm64: unsigned). */
  | { readonly t: "imm"; readonly value: bigint; readonly bits: 8 | 16 | 32 | 64 };

/** A mnemonic with its operands resolved to one form. */
export interface Resolved {
  readonly form: Form;
  readonly ops: readonly EncodedOperand[];
}

const FIXED: Readonly<Record<string, { cls: RegClass; size: number; only: string }>> = {
  AL: { cls: "gpr", size: 1, only: "al" },
  CL: { cls: "gpr", size: 1, only: "cl" },
  AX: { cls: "gpr", size: 2, only: "ax" },
  DX: { cls: "gpr", size: 2, only: "dx" },
  EAX: { cls: "gpr", size: 4, only: "eax" },
  RAX: { cls: "gpr", size: 8, only: "rax" },
  FS: { cls: "seg", size: 2, only: "fs" },
  GS: { cls: "seg", size: 2, only: "gs" },
};

function formError(spec: string, why: string): X86CoreError {
  return new X86CoreError("UNSUPPORTED", `bad form ${spec}: ${why}`, { spec });
}

/** Parses one token of a form spec. */
export function parseToken(text: string, spec = text): Token {
  const fixed = FIXED[text];
  if (fixed) return { text, reg: fixed };
  if (text === "1") return { text, imm: { bits: 8, sext: 0, one: true } };
  if (text === "cr") return { text, reg: { cls: "cr", size: 8 } };
  if (text === "Sreg") return { text, reg: { cls: "seg", size: 2 } };
  if (text === "xmm") return { text, reg: { cls: "xmm", size: 16 } };
  if (text === "m" || text === "m1664" || text === "m512byte") return { text, mem: "any" };
  let m = /^(r|rm)(8|16|32|64)$/.exec(text);
  if (m) {
    const size = Number(m[2]) / 8;
    return m[1] === "rm" ? { text, reg: { cls: "gpr", size }, mem: size } : { text, reg: { cls: "gpr", size } };
  }
  m = /^r(32|64)m16$/.exec(text);
  if (m) return { text, reg: { cls: "gpr", size: Number(m[1]) / 8 }, mem: 2 };
  m = /^m(8|16|32|64|128)$/.exec(text);
  if (m) return { text, mem: Number(m[1]) / 8 };
  m = /^xmmm(32|64|128)$/.exec(text);
  if (m) return { text, reg: { cls: "xmm", size: 16 }, mem: Number(m[1]) / 8 };
  m = /^imm(8|16|32|64)(?:s(16|32|64))?$/.exec(text);
  if (m) {
    const bits = Number(m[1]) as 8 | 16 | 32 | 64;
    const sext = (m[2] === undefined ? 0 : Number(m[2])) as 0 | 16 | 32 | 64;
    return { text, imm: { bits, sext, one: false } };
  }
  throw formError(spec, `unknown operand token ${text}`);
}

/** Parses a form spec such as `Add_rm64_imm8s64` and looks up its iced `Code`. */
export function parseForm(spec: string): Form {
  const codeName = spec.replace(/imm(8|32)s(16|32|64)/g, "imm$1");
  const code = (iced.Code as unknown as Record<string, number | undefined>)[codeName];
  if (code === undefined) throw formError(spec, `iced-x86 has no Code.${codeName}`);
  const tokens = spec
    .split("_")
    .slice(1)
    .map((t) => parseToken(t, spec));
  return { spec, codeName, code, tokens };
}

/** FORMS, parsed once. */
const COMPILED: Readonly<Record<string, readonly Form[]>> = Object.freeze(
  Object.fromEntries(
    Object.entries(FORMS).map(([name, specs]) => [name, Object.freeze(specs.map((s) => parseForm(s)))]),
  ),
);

/** The parsed forms of a mnemonic. */
export function formsOf(name: FormName): readonly Form[] {
  return COMPILED[name] ?? [];
}

/**
 * Fits an immediate to a token: returns the field's bit pattern read as signed
 * (unsigned for imm64), or undefined when the value does not survive encoding.
 */
export function fitImmediate(value: bigint, imm: NonNullable<Token["imm"]>): bigint | undefined {
  if (imm.one) return value === 1n ? 1n : undefined;
  const width = imm.sext || imm.bits;
  // Accept the value as either a signed or an unsigned `width`-bit number.
  if (value < -(1n << BigInt(width - 1)) || value >= 1n << BigInt(width)) return undefined;
  const pattern = BigInt.asIntN(width, value);
  if (imm.sext) {
    const limit = 1n << BigInt(imm.bits - 1);
    return pattern >= -limit && pattern < limit ? pattern : undefined;
  }
  return imm.bits === 64 ? BigInt.asUintN(64, pattern) : pattern;
}

function matchOperand(token: Token, op: Operand): EncodedOperand | undefined {
  if (isReg(op)) {
    const r = token.reg;
    if (r && r.cls === op.cls && r.size === op.size && (r.only === undefined || r.only === op.name)) {
      return { t: "reg", reg: op };
    }
    return undefined;
  }
  if (isMem(op)) {
    if (token.mem === undefined) return undefined;
    if (token.mem !== "any" && op.size !== undefined && op.size !== token.mem) return undefined;
    return { t: "mem", mem: op };
  }
  if (token.imm && (typeof op === "number" || typeof op === "bigint")) {
    const value = fitImmediate(toBigInt(op, "immediate"), token.imm);
    return value === undefined ? undefined : { t: "imm", value, bits: token.imm.bits };
  }
  return undefined;
}

/** Short description of an operand for error messages. */
export function describeOperand(op: unknown): string {
  if (isReg(op)) return op.name;
  if (isMem(op)) {
    const size = op.size === undefined ? "m" : `m${op.size * 8}`;
    return op.label === undefined ? size : `${size} rip(${op.label})`;
  }
  if (typeof op === "bigint" || typeof op === "number") {
    const v = BigInt(op);
    return `imm ${v < 0n ? "-" : ""}0x${(v < 0n ? -v : v).toString(16)}`;
  }
  if (typeof op === "string") return `label "${op}"`;
  return typeof op;
}

function checkOperand(op: unknown, mnemonic: string): asserts op is Operand {
  if (isReg(op) || isMem(op) || typeof op === "bigint") return;
  if (typeof op === "number") {
    toBigInt(op, `${mnemonic} immediate`);
    return;
  }
  if (typeof op === "string") {
    throw new X86CoreError(
      "INVALID_ARGUMENT",
      `${mnemonic}: a label ("${op}") is only a branch target here; use rip("${op}") to address it`,
      { mnemonic, label: op },
    );
  }
  throw new X86CoreError("INVALID_ARGUMENT", `${mnemonic}: not an operand: ${String(op)}`, { mnemonic });
}

/**
 * Picks the first form of `name` that accepts `operands`. Throws
 * `INVALID_ARGUMENT` when none does, or when a memory operand without a size
 * matches forms of different widths (`add [rax], 1`).
 */
export function resolve(name: FormName, mnemonic: string, operands: readonly unknown[]): Resolved {
  for (const op of operands) checkOperand(op, mnemonic);
  const ops = operands as readonly Operand[];
  const matches: Resolved[] = [];
  for (const form of formsOf(name)) {
    if (form.tokens.length !== ops.length) continue;
    const encoded: EncodedOperand[] = [];
    for (let i = 0; i < ops.length; i++) {
      const e = matchOperand(form.tokens[i]!, ops[i]!);
      if (e === undefined) break;
      encoded.push(e);
    }
    if (encoded.length === ops.length) matches.push({ form, ops: encoded });
  }
  const signature = `${mnemonic} ${ops.map(describeOperand).join(", ")}`.trim();
  const first = matches[0];
  if (first === undefined) {
    const accepted = formsOf(name)
      .map((f) => f.tokens.map((t) => t.text).join(",") || "(none)")
      .join(" | ");
    throw new X86CoreError("INVALID_ARGUMENT", `no encoding of ${signature}; ${mnemonic} takes ${accepted}`, {
      mnemonic,
      operands: ops.map(describeOperand),
    });
  }
  ops.forEach((op, i) => {
    if (!isMem(op) || op.size !== undefined) return;
    const widths = new Set(matches.map((m) => m.form.tokens[i]!.mem).filter((w) => w !== "any"));
    if (widths.size > 1) {
      throw new X86CoreError(
        "INVALID_ARGUMENT",
        `${signature}: operand ${i + 1} needs a size (byte/word/dword/qword/xmmword)`,
        { mnemonic, operand: i },
      );
    }
  });
  return first;
}
