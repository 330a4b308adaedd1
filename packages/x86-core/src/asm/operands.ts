import { X86CoreError } from "../errors";
import { type Reg, ripReg } from "./registers";

/** Width of a memory operand in bytes. */
export type MemSize = 1 | 2 | 4 | 8 | 16;

/** Index scale factor of a memory operand. */
export type Scale = 1 | 2 | 4 | 8;

/**
 * A memory operand `seg:[base + index*scale + disp]`, or `[rip + disp]`
 * relative to the next instruction or to a label. Build it with {@link mem},
 * the sized helpers ({@link qword} …) or {@link rip}; never by hand.
 */
export interface Mem {
  readonly kind: "mem";
  /** Base register: a 64- or 32-bit general register, or RIP. */
  readonly base: Reg | undefined;
  /** Index register, same width as the base; never RSP. */
  readonly index: Reg | undefined;
  readonly scale: Scale;
  /**
   * Signed displacement. With a RIP base and no label it is relative to the end
   * of the instruction; with a label, relative to the label's address.
   */
  readonly disp: bigint;
  /** Access width; required where no register operand implies it. */
  readonly size: MemSize | undefined;
  /** Segment override (FS/GS are the ones that matter in long mode). */
  readonly seg: Reg | undefined;
  /** Label a RIP-relative operand points at. */
  readonly label: string | undefined;
}

/** The fields of {@link mem}. */
export interface MemInit {
  base?: Reg;
  index?: Reg;
  scale?: Scale;
  disp?: number | bigint;
  /** Access width in bytes; optional where a register operand implies it. */
  size?: MemSize;
  seg?: Reg;
}

/** An immediate: a safe integer or a bigint, signed or unsigned. */
export type Imm = number | bigint;

/** Any operand an instruction method accepts. */
export type Operand = Reg | Mem | Imm;

/** Where a branch goes: a label name, or an absolute address. */
export type BranchTarget = string | bigint | number;

const I32_MIN = -(1n << 31n);
const I32_MAX = (1n << 31n) - 1n;

function invalid(message: string, details: Record<string, unknown> = {}): X86CoreError {
  return new X86CoreError("INVALID_ARGUMENT", message, details);
}

/** Converts a number or bigint to bigint, rejecting fractions and unsafe numbers. */
export function toBigInt(value: number | bigint, what: string): bigint {
  if (typeof value === "bigint") return value;
  if (!Number.isSafeInteger(value))
    throw invalid(`${what} must be a safe integer or a bigint, got ${value}`, { value });
  return BigInt(value);
}

/** True for values {@link mem} returns. */
export function isMem(op: unknown): op is Mem {
  return typeof op === "object" && op !== null && (op as { kind?: unknown }).kind === "mem";
}

/** True for the register constants. */
export function isReg(op: unknown): op is Reg {
  return typeof op === "object" && op !== null && (op as { kind?: unknown }).kind === "reg";
}

function checkSize(size: number | undefined): MemSize | undefined {
  if (size === undefined || size === 1 || size === 2 || size === 4 || size === 8 || size === 16) return size;
  throw invalid(`memory operand size must be 1, 2, 4, 8 or 16, got ${size}`, { size });
}

/**
 * A memory operand. Without base and index the displacement is an absolute
 * address, encodable when it sign-extends from 32 bits (`0xffffffff80000000n`
 * works, `0x80000000` does not).
 */
export function mem(init: MemInit): Mem {
  const { base, index, seg } = init;
  const scale = init.scale ?? 1;
  let disp = toBigInt(init.disp ?? 0, "displacement");
  if (scale !== 1 && scale !== 2 && scale !== 4 && scale !== 8)
    throw invalid(`scale must be 1, 2, 4 or 8, got ${scale}`);
  if (base !== undefined) {
    const ok = (base.cls === "gpr" && (base.size === 8 || base.size === 4)) || base.cls === "rip";
    if (!ok) throw invalid(`base register must be a 64- or 32-bit general register or rip, got ${base.name}`);
  }
  if (index !== undefined) {
    if (index.cls !== "gpr" || (index.size !== 8 && index.size !== 4))
      throw invalid(`index register must be a 64- or 32-bit general register, got ${index.name}`);
    if (index.name === "rsp" || index.name === "esp") throw invalid(`${index.name} cannot be an index register`);
    if (base?.cls === "rip") throw invalid("a rip-relative operand cannot have an index register");
    if (base !== undefined && base.size !== index.size)
      throw invalid(`base ${base.name} and index ${index.name} must have the same width`);
  } else if (scale !== 1) {
    throw invalid("a scale needs an index register");
  }
  if (seg !== undefined && seg.cls !== "seg")
    throw invalid(`segment override must be a segment register, got ${seg.name}`);
  if (base === undefined && index === undefined) {
    // An absolute address: disp32 sign-extended to 64 bits.
    const signed = disp >= 1n << 63n ? BigInt.asIntN(64, disp) : disp;
    if (signed < I32_MIN || signed > I32_MAX || disp >= 1n << 64n)
      throw invalid(`absolute address 0x${disp.toString(16)} is not a sign-extended 32-bit value`, { disp });
    disp = signed;
  } else if (disp < I32_MIN || disp > I32_MAX) {
    throw invalid(`displacement ${disp} does not fit in a signed 32-bit field`, { disp });
  }
  return Object.freeze({ kind: "mem", base, index, scale, disp, size: checkSize(init.size), seg, label: undefined });
}

/**
 * A RIP-relative operand addressing `label + disp`; size it with the helpers,
 * e.g. `qword(rip("counter"))`.
 */
export function rip(label: string, disp: number | bigint = 0): Mem {
  if (typeof label !== "string" || label === "") throw invalid("rip() needs a label name");
  const d = toBigInt(disp, "displacement");
  return Object.freeze({
    kind: "mem",
    base: ripReg,
    index: undefined,
    scale: 1,
    disp: d,
    size: undefined,
    seg: undefined,
    label,
  });
}

/** Where a sized helper's address comes from: a base register, fields, or an existing operand. */
export type MemSource = Reg | Omit<MemInit, "size"> | Mem;

function sized(size: MemSize, src: MemSource, disp?: number | bigint): Mem {
  if (isMem(src)) {
    if (disp !== undefined) throw invalid("pass the displacement inside the memory operand");
    return Object.freeze({ ...src, size });
  }
  if (isReg(src)) return mem({ base: src, disp: disp ?? 0, size });
  if (disp !== undefined) throw invalid("pass the displacement inside the fields object");
  return mem({ ...src, size });
}

/** A 1-byte memory operand: `byte(rax)`, `byte(rbx, 3)`, `byte({ base: rsi, index: rcx })`, `byte(rip("flag"))`. */
export function byte(src: MemSource, disp?: number | bigint): Mem {
  return sized(1, src, disp);
}
/** A 2-byte memory operand; arguments as for {@link byte}. */
export function word(src: MemSource, disp?: number | bigint): Mem {
  return sized(2, src, disp);
}
/** A 4-byte memory operand; arguments as for {@link byte}. */
export function dword(src: MemSource, disp?: number | bigint): Mem {
  return sized(4, src, disp);
}
/** An 8-byte memory operand; arguments as for {@link byte}. */
export function qword(src: MemSource, disp?: number | bigint): Mem {
  return sized(8, src, disp);
}
/** A 16-byte memory operand; arguments as for {@link byte}. */
export function xmmword(src: MemSource, disp?: number | bigint): Mem {
  return sized(16, src, disp);
}
