import * as iced from "iced-x86";
import { X86CoreError } from "../errors";
import { encodeThunk } from "../thunks";
import { checkEncodable, type Item, type RepKind, type StringOp, type StringWidth } from "./encode";
import type { FormName } from "./forms";
import { type Assembled, isCanonical, layout } from "./layout";
import { type BranchTarget, isMem, isReg, toBigInt } from "./operands";
import { type Resolved, resolve } from "./resolve";

/** Options of {@link AssemblerCore}. Only 64-bit code is supported. */
export interface AssemblerOptions {
  bitness?: 64;
}

/** Mnemonics that accept a LOCK prefix (with a memory destination), SDM Vol. 2 "LOCK". */
const LOCKABLE: ReadonlySet<string> = new Set([
  "add",
  "adc",
  "and",
  "btc",
  "btr",
  "bts",
  "cmpxchg",
  "cmpxchg8b",
  "cmpxchg16b",
  "dec",
  "inc",
  "neg",
  "not",
  "or",
  "sbb",
  "sub",
  "xor",
  "xadd",
  "xchg",
]);

function invalid(message: string, details: Record<string, unknown> = {}): X86CoreError {
  return new X86CoreError("INVALID_ARGUMENT", message, details);
}

/**
 * The state and non-instruction directives of the assembler: labels, data,
 * alignment, prefixes and {@link AssemblerCore.assemble}. The instruction
 * methods live in the subclasses, one file per family.
 */
export abstract class AssemblerCore {
  /** Everything added so far, in order. */
  protected readonly items: Item[] = [];
  private readonly defined = new Set<string>();
  private pendingLock = false;
  private pendingRep: RepKind = "none";

  /** Starts an empty program. `opts.bitness` may only be 64; anything else throws `UNSUPPORTED`. */
  constructor(opts: AssemblerOptions = {}) {
    const bitness = opts.bitness ?? 64;
    if (bitness !== 64) throw new X86CoreError("UNSUPPORTED", `only 64-bit code is supported, got ${String(bitness)}`);
  }

  /** Defines `name` at the current position. Each name may be defined once. */
  label(name: string): this {
    if (typeof name !== "string" || name === "") throw invalid("a label needs a non-empty name");
    if (this.defined.has(name)) throw invalid(`label "${name}" is already defined`, { label: name });
    this.defined.add(name);
    this.items.push({ kind: "label", name });
    return this;
  }

  /** Makes the next instruction LOCKed; it must be a read-modify-write with a memory destination. */
  lock(): this {
    this.pendingLock = true;
    return this;
  }

  /** Puts REP in front of the next instruction, which must be a string instruction. */
  rep(): this {
    this.pendingRep = "rep";
    return this;
  }

  /** Puts REPE/REPZ in front of the next instruction, which must be CMPS or SCAS. */
  repe(): this {
    this.pendingRep = "repe";
    return this;
  }

  /** Puts REPNE/REPNZ in front of the next instruction, which must be CMPS or SCAS. */
  repne(): this {
    this.pendingRep = "repne";
    return this;
  }

  /** Appends bytes (each 0–255, or -128–127). */
  db(bytes: Uint8Array | readonly number[]): this {
    return this.pushData(Uint8Array.from(bytes, (b) => this.fit(b, 1, "db")));
  }

  /** Appends little-endian 16-bit values. */
  dw(values: readonly (number | bigint)[]): this {
    return this.pushData(this.littleEndian(values, 2, "dw"));
  }

  /** Appends little-endian 32-bit values. */
  dd(values: readonly (number | bigint)[]): this {
    return this.pushData(this.littleEndian(values, 4, "dd"));
  }

  /** Appends little-endian 64-bit values. */
  dq(values: readonly (number | bigint)[]): this {
    return this.pushData(this.littleEndian(values, 8, "dq"));
  }

  /** Appends the characters of `text`, which must be 7-bit ASCII. */
  ascii(text: string): this {
    return this.pushData(this.asciiBytes(text, false));
  }

  /** Appends `text` (7-bit ASCII) and a terminating zero byte. */
  asciz(text: string): this {
    return this.pushData(this.asciiBytes(text, true));
  }

  /**
   * Pads with `fill` (default 0x90, NOP, so falling through is harmless) until
   * the address is a multiple of `boundary`, a power of two up to 4096.
   */
  align(boundary: number, fill = 0x90): this {
    if (!Number.isInteger(boundary) || boundary < 1 || boundary > 4096 || (boundary & (boundary - 1)) !== 0) {
      throw invalid(`align boundary must be a power of two from 1 to 4096, got ${boundary}`, { boundary });
    }
    this.checkNoPrefix("align");
    this.items.push({ kind: "align", boundary, fill: this.fit(fill, 1, "align fill") });
    return this;
  }

  /** Appends literal bytes, e.g. an encoding the assembler has no method for. */
  raw(bytes: Uint8Array | readonly number[]): this {
    return this.db(bytes);
  }

  /**
   * Appends the thunk escape `0F FF 05 <id:u32 little-endian>`: UD0 on hardware,
   * a call into a registered TypeScript thunk on a visorlab processor.
   */
  thunk(id: number): this {
    if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) throw invalid(`thunk id must be a u32, got ${id}`, { id });
    return this.raw(encodeThunk(id));
  }

  /**
   * Encodes the program at `baseAddress` and returns the bytes and the address
   * of every label. May be called again at another address. Throws
   * `INVALID_ARGUMENT` for an undefined label and `OUT_OF_RANGE` when a branch
   * or RIP-relative operand cannot reach its target.
   */
  assemble(baseAddress: bigint): Assembled {
    if (this.pendingLock || this.pendingRep !== "none") {
      throw new X86CoreError("STATE", "a lock/rep prefix is not followed by an instruction");
    }
    return layout(this.items, toBigInt(baseAddress, "base address"));
  }

  /** Appends the form of `name` that fits `operands`; `mnemonic` is for messages. */
  protected emit(name: FormName, mnemonic: string, operands: readonly unknown[]): this {
    return this.append(mnemonic, resolve(name, mnemonic, operands));
  }

  /** Appends the form of `name` that fits `(a, b)`, or else `(b, a)`: for TEST and XCHG. */
  protected emitCommutative(name: FormName, a: unknown, b: unknown): this {
    let resolved: Resolved;
    try {
      resolved = resolve(name, name, [a, b]);
    } catch (e) {
      try {
        resolved = resolve(name, name, [b, a]);
      } catch {
        throw e;
      }
    }
    return this.append(name, resolved);
  }

  private append(mnemonic: string, { form, ops }: Resolved): this {
    const { lock, rep } = this.takePrefixes();
    if (lock && (!LOCKABLE.has(mnemonic) || ops[0]?.t !== "mem")) {
      throw invalid(`lock ${mnemonic}: LOCK needs a memory destination and one of ${[...LOCKABLE].join(", ")}`, {
        mnemonic,
      });
    }
    if (rep !== "none") throw invalid(`${rep} ${mnemonic}: REP prefixes only go on string instructions`);
    const item: Item = { kind: "insn", mnemonic, code: form.code, ops, lock };
    checkEncodable(item);
    this.items.push(item);
    return this;
  }

  /**
   * Appends a relative branch (`codeName` is the iced `Code` of its rel32 or
   * rel8 form; the block encoder picks the short form when it reaches).
   */
  protected emitBranch(codeName: string, mnemonic: string, target: BranchTarget): this {
    this.checkNoPrefix(mnemonic);
    const code = (iced.Code as unknown as Record<string, number | undefined>)[codeName];
    if (code === undefined) throw new X86CoreError("UNSUPPORTED", `iced-x86 has no Code.${codeName}`);
    if (typeof target === "string") {
      if (target === "") throw invalid(`${mnemonic}: empty label name`);
      this.items.push({ kind: "branch", mnemonic, code, target });
      return this;
    }
    if (isReg(target) || isMem(target))
      throw invalid(`${mnemonic} takes a label or an address, not a register or memory`);
    const address = toBigInt(target as number | bigint, `${mnemonic} target`);
    if (address < 0n || address >= 1n << 64n || !isCanonical(address)) {
      throw invalid(`${mnemonic} target 0x${address.toString(16)} is not a canonical address`, { target: address });
    }
    this.items.push({ kind: "branch", mnemonic, code, target: address });
    return this;
  }

  /** Appends a string instruction, taking a pending REP/REPE/REPNE. */
  protected emitString(op: StringOp, width: StringWidth): this {
    const { lock, rep } = this.takePrefixes();
    if (lock) throw invalid(`lock ${op}: LOCK does not apply to string instructions`);
    const compares = op === "cmps" || op === "scas";
    if (rep === "repne" && !compares) throw invalid(`repne ${op}: REPNE only goes on CMPS and SCAS`);
    const effective: RepKind = rep === "rep" && compares ? "repe" : rep;
    const suffix = width === 1 ? "b" : width === 2 ? "w" : width === 4 ? "d" : "q";
    const mnemonic = `${effective === "none" ? "" : `${effective} `}${op}${suffix}`;
    const item: Item = { kind: "string", mnemonic, op, width, rep: effective };
    checkEncodable(item);
    this.items.push(item);
    return this;
  }

  /** Consumes the pending prefixes: they apply to the next thing added, whether or not it is valid. */
  private takePrefixes(): { lock: boolean; rep: RepKind } {
    const taken = { lock: this.pendingLock, rep: this.pendingRep };
    this.pendingLock = false;
    this.pendingRep = "none";
    return taken;
  }

  private checkNoPrefix(what: string): void {
    const { lock, rep } = this.takePrefixes();
    if (lock) throw invalid(`lock ${what}: LOCK needs a read-modify-write instruction`);
    if (rep !== "none") throw invalid(`${rep} ${what}: REP prefixes only go on string instructions`);
  }

  private pushData(bytes: Uint8Array): this {
    this.checkNoPrefix("data");
    if (bytes.length > 0) this.items.push({ kind: "data", bytes });
    return this;
  }

  /** Checks that `value` fits `size` bytes (signed or unsigned) and returns its low byte for size 1. */
  private fit(value: number | bigint, size: number, what: string): number {
    const v = toBigInt(value, what);
    const bits = BigInt(size * 8);
    if (v < -(1n << (bits - 1n)) || v >= 1n << bits) {
      throw invalid(`${what}: ${v} does not fit in ${size} byte(s)`, { value: v });
    }
    return Number(BigInt.asUintN(8, v));
  }

  private littleEndian(values: readonly (number | bigint)[], size: number, what: string): Uint8Array {
    const out = new Uint8Array(values.length * size);
    values.forEach((value, i) => {
      this.fit(value, size, what);
      let v = BigInt.asUintN(size * 8, toBigInt(value, what));
      for (let k = 0; k < size; k++, v >>= 8n) out[i * size + k] = Number(v & 0xffn);
    });
    return out;
  }

  private asciiBytes(text: string, terminate: boolean): Uint8Array {
    const out = new Uint8Array(text.length + (terminate ? 1 : 0));
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0x7f) throw invalid(`ascii text has a non-ASCII character at index ${i}`, { index: i });
      out[i] = c;
    }
    return out;
  }
}
