import type { Cpu } from "../cpu";
import { DECODE_STATUS, type Handler, type Insn, PREFIX } from "../decode/insn";
import { VECTOR } from "../faults";
import { registerAlu } from "./alu";
import { registerAtomic } from "./atomic";
import { registerBitops } from "./bitops";
import { registerControl } from "./control";
import { registerData } from "./data";
import { registerMuldiv } from "./muldiv";
import { registerShift } from "./shift";
import { registerSse } from "./sse";
import { registerString } from "./string";
import { registerSystem } from "./system";

/** "Any" in a table key: any mandatory prefix, or any ModRM.reg. */
const ANY_MANDATORY = 4;
const ANY_REG = 8;

/**
 * The dispatch table families fill in: handlers keyed by `map << 8 | opcode`,
 * optionally narrowed by the SSE mandatory prefix and by ModRM.reg (group
 * opcodes). The most specific registration wins. Anything not registered
 * raises #UD, and {@link unimplementedOpcodes} lists it.
 */
export class OpcodeTable {
  private readonly handlers = new Map<number, Handler>();
  private readonly lockableKeys = new Set<number>();

  private static key(op: number, mandatory: number, reg: number): number {
    return op * 45 + mandatory * 9 + reg;
  }

  /** Registers a handler for every form of `op`. */
  op(op: number, h: Handler, opts: { lockable?: boolean } = {}): void {
    this.put(op, ANY_MANDATORY, ANY_REG, h, opts.lockable ?? false);
  }

  /** Registers a handler for `op` with ModRM.reg = `reg` (a group opcode's sub-opcode). */
  group(op: number, reg: number, h: Handler, opts: { lockable?: boolean } = {}): void {
    this.put(op, ANY_MANDATORY, reg, h, opts.lockable ?? false);
  }

  /** Registers a handler for `op` with a given mandatory prefix ({@link MANDATORY}). */
  sse(op: number, mandatory: number, h: Handler): void {
    this.put(op, mandatory, ANY_REG, h, false);
  }

  /** Registers a handler for `op` with a mandatory prefix and ModRM.reg (SSE shift groups). */
  sseGroup(op: number, mandatory: number, reg: number, h: Handler): void {
    this.put(op, mandatory, reg, h, false);
  }

  private put(op: number, m: number, reg: number, h: Handler, lockable: boolean): void {
    const k = OpcodeTable.key(op, m, reg);
    if (this.handlers.has(k)) throw new Error(`opcode 0x${op.toString(16)} registered twice`);
    this.handlers.set(k, h);
    if (lockable) this.lockableKeys.add(k);
  }

  /** Finds the handler for a decoded instruction, or null. Also reports whether LOCK is allowed. */
  resolve(insn: Insn): { h: Handler; lockable: boolean } | null {
    const op = insn.op;
    const reg = insn.hasModrm ? insn.reg & 7 : ANY_REG;
    const candidates = [
      OpcodeTable.key(op, insn.mandatory, reg),
      OpcodeTable.key(op, insn.mandatory, ANY_REG),
      OpcodeTable.key(op, ANY_MANDATORY, reg),
      OpcodeTable.key(op, ANY_MANDATORY, ANY_REG),
    ];
    for (const k of candidates) {
      const h = this.handlers.get(k);
      if (h !== undefined) return { h, lockable: this.lockableKeys.has(k) };
    }
    return null;
  }

  /** Every `op` (with mandatory prefix / reg where registered so) that has a handler. */
  registered(): { op: number; mandatory: number | null; reg: number | null }[] {
    return [...this.handlers.keys()].map((k) => {
      const op = Math.floor(k / 45);
      const m = Math.floor((k % 45) / 9);
      const r = k % 9;
      return { op, mandatory: m === ANY_MANDATORY ? null : m, reg: r === ANY_REG ? null : r };
    });
  }
}

/** Raises #UD. The handler of every undefined, unsupported or unregistered encoding. */
export const undefinedOpcode: Handler = (cpu: Cpu) => cpu.fault(VECTOR.UD);
/** Raises #GP(0): an instruction longer than 15 bytes. */
const tooLong: Handler = (cpu: Cpu) => cpu.fault(VECTOR.GP, 0);

let table: OpcodeTable | null = null;

/** The dispatch table, built once on first use from every instruction family. */
export function dispatchTable(): OpcodeTable {
  if (table === null) {
    const t = new OpcodeTable();
    registerAlu(t);
    registerData(t);
    registerControl(t);
    registerShift(t);
    registerMuldiv(t);
    registerBitops(t);
    registerAtomic(t);
    registerString(t);
    registerSystem(t);
    registerSse(t);
    table = t;
  }
  return table;
}

/** Sets `insn.exec` from the dispatch table (#UD / #GP handlers for bad encodings). */
export function bindHandler(insn: Insn): void {
  if (insn.status === DECODE_STATUS.TOO_LONG) {
    insn.exec = tooLong;
    return;
  }
  if (insn.status !== DECODE_STATUS.OK) {
    insn.exec = undefinedOpcode;
    return;
  }
  const r = dispatchTable().resolve(insn);
  if (r === null) {
    insn.exec = undefinedOpcode;
    return;
  }
  // LOCK is allowed only on lockable instructions with a memory destination.
  if (insn.prefixes & PREFIX.LOCK && (!r.lockable || insn.mod === 3 || !insn.hasModrm)) {
    insn.exec = undefinedOpcode;
    return;
  }
  insn.exec = r.h;
}

/**
 * Whether this processor executes `insn`: it decoded completely and validly, a
 * handler is registered for its form and LOCK (if present) is allowed — as
 * opposed to raising #UD (or #GP for an over-long instruction). Sets
 * `insn.exec` as {@link bindHandler} does. Handlers that dispatch further on
 * their own (group 7) may still raise #UD for some forms.
 */
export function isImplemented(insn: Insn): boolean {
  bindHandler(insn);
  return insn.exec !== undefinedOpcode && insn.exec !== tooLong;
}
